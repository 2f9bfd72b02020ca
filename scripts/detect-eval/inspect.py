#!/usr/bin/env python3
"""Read one hospital's log against its labels and the detector's explained scores: where the
false alerts are, what was missed, and what an incident (or anyone's day) looked like to it.

    anomaly replay --explain --events E.jsonl > S.jsonl
    scripts/detect-eval/inspect.py E.jsonl L.jsonl S.jsonl false [--by actor|department|day|feature]
    scripts/detect-eval/inspect.py E.jsonl L.jsonl S.jsonl missed
    scripts/detect-eval/inspect.py E.jsonl L.jsonl S.jsonl incident ID [--around MINUTES]
    scripts/detect-eval/inspect.py E.jsonl L.jsonl S.jsonl actor ID [--day 2025-03-11] [--alerts]

E and L are a log and its labels (`var/detect-eval/data/...`: labels list attack events only,
`{"id", "incident", "kind"}`); S is `anomaly replay --explain` over E (one line per event, in
order, with its explanation and the features' contributions). Standard library only.
"""
import argparse
import collections
import json
import sys
from datetime import datetime


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def seconds(event):
    return instant(event["time"])


def load(args):
    labels = {x["id"]: (x["incident"], x["kind"]) for x in read_jsonl(args.labels)}
    scores = {x["id"]: x for x in read_jsonl(args.scores)}
    events = list(read_jsonl(args.events))
    missing = [e["id"] for e in events if e["id"] not in scores]
    if missing:
        sys.exit(f"inspect: {len(missing)} events have no score (replay another log?)")
    return events, labels, scores


def top_feature(score):
    contributions = score.get("contributions") or []
    return contributions[0]["feature"] if contributions else "-"


def line(event, score, mark=" "):
    actor = event["actor"]
    source = event.get("source") or {}
    return " ".join(
        str(x)
        for x in (
            mark,
            event["time"][5:19],
            actor["id"][:18],
            actor.get("role"),
            actor.get("department"),
            event.get("patient"),
            event["action"],
            event.get("resource_type"),
            event.get("count"),
            event.get("purpose"),
            event["outcome"],
            event.get("confidentiality"),
            source.get("ip"),
            (source.get("user_agent") or "")[:20],
            f"{score['score']:.2f}",
            "A" if score["alert"] else " ",
            score.get("explanation", "")[:160],
        )
    )


def false_alerts(args):
    events, labels, scores = load(args)
    start = seconds(events[0]) if events else 0
    groups = collections.Counter()
    for event in events:
        score = scores[event["id"]]
        if not score["alert"] or event["id"] in labels:
            continue
        actor = event["actor"]
        key = {
            "actor": (actor["id"], actor.get("role"), actor.get("department")),
            "department": (actor.get("role"), actor.get("department")),
            "day": (f"day {int((seconds(event) - start) // 86400)}", event["time"][:10]),
            "feature": (top_feature(score),),
        }[args.by]
        groups[key] += 1
    print(f"{sum(groups.values())} false alerts, by {args.by}:")
    for key, n in groups.most_common(args.top):
        print(f"  {n:6} {' '.join(str(k) for k in key)}")


def missed(args):
    events, labels, scores = load(args)
    found, lost = collections.Counter(), collections.Counter()
    first, alerted, peak = {}, {}, collections.defaultdict(float)
    for event in events:
        label = labels.get(event["id"])
        if not label:
            continue
        incident, kind = label
        score = scores[event["id"]]
        first.setdefault(incident, (seconds(event), kind))
        peak[incident] = max(peak[incident], score["score"])
        if score["alert"]:
            found[kind] += 1
            # A look that waited for its note alerts when the wait ran out (`alerted_at`).
            at = instant(score["alerted_at"]) if score.get("alerted_at") else seconds(event)
            alerted[incident] = min(alerted.get(incident, at), at)
        else:
            lost[kind] += 1
    print("attack events alerted / missed, by kind:")
    for kind in sorted(set(found) | set(lost)):
        print(f"  {kind:28} {found[kind]:6} {lost[kind]:6}")
    print("incidents:")
    for incident, (t, kind) in sorted(first.items(), key=lambda x: x[1][0]):
        state = (
            f"found after {alerted[incident] - t:.0f} s"
            if incident in alerted
            else f"MISSED (highest score {peak[incident]:.2f})"
        )
        print(f"  {incident:14} {kind:28} {state}")


def incident(args):
    events, labels, scores = load(args)
    own = [e for e in events if labels.get(e["id"], ("",))[0] == args.id]
    if not own:
        sys.exit(f"inspect: no incident {args.id}")
    actors = {e["actor"]["id"] for e in own}
    low = min(seconds(e) for e in own) - args.around * 60
    high = max(seconds(e) for e in own) + args.around * 60
    for event in events:
        if event["actor"]["id"] in actors and low <= seconds(event) <= high:
            mark = "*" if event["id"] in labels else " "
            print(line(event, scores[event["id"]], mark))


def actor(args):
    events, labels, scores = load(args)
    for event in events:
        if event["actor"]["id"] != args.id or not event["time"].startswith(args.day):
            continue
        score = scores[event["id"]]
        if args.alerts and not score["alert"]:
            continue
        print(line(event, score, "*" if event["id"] in labels else " "))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("events")
    parser.add_argument("labels")
    parser.add_argument("scores")
    views = parser.add_subparsers(dest="view", required=True)
    view = views.add_parser("false", help="false alerts, grouped")
    view.add_argument("--by", choices=("actor", "department", "day", "feature"), default="actor")
    view.add_argument("--top", type=int, default=25)
    view.set_defaults(run=false_alerts)
    view = views.add_parser("missed", help="attack events missed by kind, incidents found or not")
    view.set_defaults(run=missed)
    view = views.add_parser("incident", help="an incident's events, with its actors' around them")
    view.add_argument("id")
    view.add_argument("--around", type=float, default=0.0, help="minutes before and after")
    view.set_defaults(run=incident)
    view = views.add_parser("actor", help="an actor's events (a day's, or only the alerts)")
    view.add_argument("id")
    view.add_argument("--day", default="", help="a prefix of the event time, e.g. 2025-03-11")
    view.add_argument("--alerts", action="store_true")
    view.set_defaults(run=actor)
    args = parser.parse_args()
    try:
        args.run(args)
    except BrokenPipeError:
        sys.stderr.close()


if __name__ == "__main__":
    main()
