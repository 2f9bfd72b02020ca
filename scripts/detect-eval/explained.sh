#!/usr/bin/env bash
# The fast loop of detector work: the fifteen hospitals of the generators written apart from the
# model (independent, network, academic; seeds 1-5), replayed with explanations and judged from
# those scores, in well under a minute on two cores once the logs exist.
#
#   scripts/detect-eval/explained.sh NAME          replay and judge into var/detect-eval/explained/NAME
#
# Settings (env): BIN (default target/release/anomaly, not built here), THRESHOLD (judge the same
# scores at another alert threshold: `anomaly evaluate --threshold`), BASE (an earlier NAME: the
# incidents found or missed since, per log), JOBS (default the number of cores). The logs are
# those of `scripts/detect-eval.sh` (var/detect-eval/data), generated here when missing.
# Besides the totals it prints where the false alerts come from: raised on time, or late (for a
# note that never came, or taken into a late alert's incident). `inspect.py` reads the same
# explained scores (`var/detect-eval/explained/NAME/<log>.jsonl`) for one log at a time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
NAME="${1:?usage: scripts/detect-eval/explained.sh NAME}"
BIN="${BIN:-target/release/anomaly}"
[ -x "$BIN" ] || { echo "explained: no anomaly binary at $BIN (cargo build --release -p anomaly)" >&2; exit 2; }
JOBS="${JOBS:-$(nproc)}"
OUT="var/detect-eval/explained/$NAME"
mkdir -p "$OUT"

declare -A GENERATOR=(
  [independent]=scripts/detect-eval/independent_hospital.py
  [network]=scripts/detect-eval/regional_network.py
  [academic]=scripts/detect-eval/academic_center.py
)
jobs_file="$(mktemp)"
trap 'rm -f "$jobs_file"' EXIT
for name in independent network academic; do
  script="${GENERATOR[$name]}"
  dir="var/detect-eval/data/$name-$(sha1sum < "$script" | cut -c1-12)"
  mkdir -p "$dir"
  for seed in 1 2 3 4 5; do
    if [ ! -s "$dir/s$seed.labels.jsonl" ]; then
      python3 "$script" --seed "$seed" \
        --out-events "$dir/s$seed.events.jsonl.part" --out-labels "$dir/s$seed.labels.jsonl.part" 2> /dev/null
      mv "$dir/s$seed.events.jsonl.part" "$dir/s$seed.events.jsonl"
      mv "$dir/s$seed.labels.jsonl.part" "$dir/s$seed.labels.jsonl"
    fi
    echo "${name:0:1}$seed $dir/s$seed" >> "$jobs_file"
  done
done

judge_one() {
  local tag="$1" log="$2"
  "$BIN" replay --explain --events "$log.events.jsonl" > "$OUT/$tag.jsonl" 2> /dev/null
  "$BIN" evaluate --json --events "$log.events.jsonl" --labels "$log.labels.jsonl" \
    --scores "$OUT/$tag.jsonl" ${THRESHOLD:+--threshold "$THRESHOLD"} > "$OUT/$tag.json"
  python3 - "$OUT/$tag.jsonl" "$log.labels.jsonl" "$log.events.jsonl" > "$OUT/$tag.paths.json" <<'PY'
import json, sys
from datetime import datetime

def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

scores, labels, events = sys.argv[1:4]
attack = {json.loads(line)["id"] for line in open(labels) if line.strip()}
times = {}
for line in open(events):
    if line.strip():
        e = json.loads(line)
        times[e["id"]] = e["time"]
paths = {"on_time": [0, 0], "late": [0, 0]}
for line in open(scores):
    s = json.loads(line)
    if not s["alert"]:
        continue
    late = "alerted_at" in s and instant(s["alerted_at"]) - instant(times[s["id"]]) > 1
    paths["late" if late else "on_time"][s["id"] in attack] += 1
json.dump(paths, sys.stdout)
PY
}
export -f judge_one
export BIN OUT THRESHOLD
xargs -P "$JOBS" -L 1 bash -c 'judge_one "$0" "$1"' < "$jobs_file"

python3 - "$OUT" "${BASE:+var/detect-eval/explained/$BASE}" <<'PY'
import json, sys
out, base = sys.argv[1], sys.argv[2]
tags = [g + str(s) for g in "ina" for s in range(1, 6)]
total = {"fp": 0, "tp": 0, "found": 0, "incidents": 0, "fast": 0}
paths = {"on_time": [0, 0], "late": [0, 0]}
print("| log | false alerts | attack events alerted | incidents | precision | recall | FPR | median delay s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for tag in tags:
    r = json.load(open(f"{out}/{tag}.json"))
    p = json.load(open(f"{out}/{tag}.paths.json"))
    for k in paths:
        paths[k][0] += p[k][0]
        paths[k][1] += p[k][1]
    delay = r["delay_median_seconds"]
    total["fp"] += r["false_positives"]
    total["tp"] += r["true_positives"]
    total["found"] += r["incidents_found"]
    total["incidents"] += r["incidents"]
    total["fast"] += delay is not None and delay <= 60
    fmt = lambda x: "-" if x is None else f"{x:.3f}"
    print(f"| {tag} | {r['false_positives']:,} | {r['true_positives']:,} | {r['incidents_found']} / {r['incidents']} "
          f"| {fmt(r['precision'])} | {fmt(r['recall'])} | {(r['false_positive_rate'] or 0) * 100:.2f}% "
          f"| {'-' if delay is None else round(delay, 1)} |")
print(f"\nFifteen logs: {total['fp']:,} false alerts, {total['tp']:,} attack events alerted, incidents "
      f"{total['found']} / {total['incidents']}, median delay ≤ 60 s on {total['fast']}.")
print(f"On time: {paths['on_time'][0]:,} false alerts, {paths['on_time'][1]:,} attack events; late: "
      f"{paths['late'][0]:,} false alerts, {paths['late'][1]:,} attack events.")
if base:
    changes = []
    for tag in tags:
        now = {i["incident"]: i for i in json.load(open(f"{out}/{tag}.json"))["per_incident"]}
        then = json.load(open(f"{base}/{tag}.json"))
        for i in then["per_incident"]:
            was, is_ = i["alerted"] > 0, now[i["incident"]]["alerted"] > 0
            if was != is_:
                changes.append(f"{tag} {i['incident']} ({i['kind']}) {'found' if is_ else 'missed'}")
        fp = json.load(open(f"{out}/{tag}.json"))["false_positives"]
        changes.append(f"{tag} false alerts {then['false_positives']} → {fp}")
    print("\nAgainst " + base + ":\n" + "\n".join(changes))
PY
