#!/usr/bin/env python3
"""Sum up `anomaly evaluate --json` reports of many simulated hospitals (scripts/detect-eval.sh).

Prints, for each mode (care facts, events alone), a row per hospital, the totals against the
issue's targets (precision >= 0.80, recall >= 0.95, false-positive rate <= 0.5%, every incident
alerted, median delay <= 60 s), per kind the incidents found and their delays, and the
incidents missed; with --base, what changed since.
"""
import argparse
import json
import os
import statistics
import sys

MODES = (("care", "with care facts"), ("events", "from events alone"))
TARGET = {"precision": 0.80, "recall": 0.95, "fpr": 0.005, "median": 60.0}


def load(directory, mode, seed):
    path = os.path.join(directory, f"{mode}-{seed}.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def missed(report):
    return [i for i in report["per_incident"] if i["alerted"] == 0]


def totals(reports):
    medians = [r["delay_median_seconds"] for r in reports if r["delay_median_seconds"] is not None]
    precisions = [r["precision"] for r in reports if r["precision"] is not None]
    recalls = [r["recall"] for r in reports if r["recall"] is not None]
    fprs = [r["false_positive_rate"] for r in reports if r["false_positive_rate"] is not None]
    return {
        "false_alerts": sum(r["false_positives"] for r in reports),
        "found": sum(r["incidents_found"] for r in reports),
        "incidents": sum(r["incidents"] for r in reports),
        "complete": sum(1 for r in reports if r["incidents_found"] == r["incidents"]),
        "precision_min": min(precisions, default=None),
        "precision_ok": sum(1 for p in precisions if p >= TARGET["precision"]),
        "recall_min": min(recalls, default=None),
        "recall_ok": sum(1 for r in recalls if r >= TARGET["recall"]),
        "fpr_max": max(fprs, default=None),
        "fpr_ok": sum(1 for f in fprs if f <= TARGET["fpr"]),
        "median_ok": sum(1 for m in medians if m <= TARGET["median"]),
        "median_mean": statistics.mean(medians) if medians else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory")
    parser.add_argument("--seeds", required=True, help="comma-separated seeds, in table order")
    parser.add_argument("--base", help="an earlier results directory to compare with")
    args = parser.parse_args()
    seeds = [s for s in args.seeds.split(",") if s]
    failed = False

    for mode, title in MODES:
        rows = [(s, load(args.directory, mode, s)) for s in seeds]
        absent = [s for s, r in rows if r is None]
        rows = [(s, r) for s, r in rows if r is not None]
        if not rows:
            continue
        print(f"## {title} ({len(rows)} hospitals)\n")
        if absent:
            print(f"No report for seeds {', '.join(absent)}.\n")
        compare = args.base is not None
        head = "| seed | false alerts | incidents | precision | recall | FPR | median delay s | max delay s |"
        print(head + (" Δ false alerts | Δ incidents |" if compare else ""))
        print("|---" * (8 + (2 if compare else 0)) + "|")
        gained, lost = [], []
        for seed, r in rows:
            line = (
                f"| {seed} | {r['false_positives']} | {r['incidents_found']} / {r['incidents']} "
                f"| {fmt(r['precision'], '.3f')} | {fmt(r['recall'], '.3f')} "
                f"| {fmt(r['false_positive_rate'] and r['false_positive_rate'] * 100, '.2f')}% "
                f"| {fmt(r['delay_median_seconds'], '.1f')} | {fmt(r['delay_max_seconds'], '.0f')} |"
            )
            if compare:
                b = load(args.base, mode, seed)
                if b is None:
                    line += " - | - |"
                else:
                    line += (
                        f" {r['false_positives'] - b['false_positives']:+d} "
                        f"| {r['incidents_found'] - b['incidents_found']:+d} |"
                    )
                    before = {i["incident"] for i in missed(b)}
                    now = {i["incident"] for i in missed(r)}
                    gained += [(seed, i) for i in sorted(before - now)]
                    lost += [(seed, i) for i in sorted(now - before)]
            print(line)
        t = totals([r for _, r in rows])
        n = len(rows)
        print(
            f"\n**Totals**: {t['false_alerts']:,} false alerts; incidents found "
            f"{t['found']} / {t['incidents']} ({t['complete']} of {n} hospitals complete); "
            f"precision ≥ 0.80 on {t['precision_ok']} (min {fmt(t['precision_min'], '.3f')}); "
            f"recall ≥ 0.95 on {t['recall_ok']} (min {fmt(t['recall_min'], '.3f')}); "
            f"FPR ≤ 0.5% on {t['fpr_ok']} (max {fmt(t['fpr_max'] and t['fpr_max'] * 100, '.2f')}%); "
            f"median delay ≤ 60 s on {t['median_ok']} (mean of medians "
            f"{fmt(t['median_mean'], '.1f')} s).\n"
        )
        if compare:
            base_rows = [load(args.base, mode, s) for s, _ in rows]
            if all(b is not None for b in base_rows):
                bt = totals(base_rows)
                print(
                    f"Against {args.base}: false alerts {bt['false_alerts']:,} → {t['false_alerts']:,}, "
                    f"incidents {bt['found']} → {t['found']}; newly found: "
                    f"{', '.join(f'{s}/{i}' for s, i in gained) or 'none'}; newly missed: "
                    f"{', '.join(f'{s}/{i}' for s, i in lost) or 'none'}.\n"
                )
        print("| kind | incidents found | median delay s | found after 60 s | after 30 min |")
        print("|---|---:|---:|---:|---:|")
        kinds = {}
        for _, r in rows:
            for i in r["per_incident"]:
                kinds.setdefault(i["kind"], []).append(i["delay_seconds"])
        for kind, delays in sorted(kinds.items()):
            found = sorted(d for d in delays if d is not None)
            print(
                f"| {kind} | {len(found)} / {len(delays)} "
                f"| {fmt(statistics.median(found) if found else None, '.0f')} "
                f"| {sum(1 for d in found if d > 60)} | {sum(1 for d in found if d >= 1790)} |"
            )
        print()
        misses = [(s, i) for s, r in rows for i in missed(r)]
        if misses:
            print("Missed incidents: " + ", ".join(
                f"{s}/{i['incident']} ({i['kind']}, max score {i['max_score']:.2f})" for s, i in misses
            ) + ".\n")
        failed |= (
            t["precision_ok"] < n or t["recall_ok"] < n or t["fpr_ok"] < n or t["median_ok"] < n
            or t["complete"] < n
        )
    print("All targets met on every hospital." if not failed else "Some targets missed (above).")


if __name__ == "__main__":
    sys.exit(main())
