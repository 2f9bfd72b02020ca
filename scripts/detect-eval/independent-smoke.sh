#!/usr/bin/env bash
# `make test`'s short version of `make detect-eval SETS=independent`: one small hospital of the
# generator written apart from the model (4 days, 40 staff, 6 incidents, every event checked
# against the schema), replayed and scored by the anomaly binary. Fails when the generator's
# log is not read whole (a line refused, an event or a label not joined), when the detector
# finds none of its incidents, or when `inspect.py` (reading the replay's explanations) sees
# other incidents found than the evaluator does; the figures themselves are reported, not
# asserted (the README's table of five hospitals is the measure).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BIN="${BIN:-target/debug/anomaly}"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
python3 scripts/detect-eval/independent_hospital.py --seed 7 --days 4 --staff 40 --patients 800 \
  --incidents 6 --out-events "$DIR/events.jsonl" --out-labels "$DIR/labels.jsonl" --check
"$BIN" evaluate --json --events "$DIR/events.jsonl" --labels "$DIR/labels.jsonl" > "$DIR/report.json"
# The inspection tool over the same log: its view of the incidents must be the evaluator's.
"$BIN" replay --explain --events "$DIR/events.jsonl" > "$DIR/scores.jsonl" 2> /dev/null
python3 scripts/detect-eval/inspect.py "$DIR/events.jsonl" "$DIR/labels.jsonl" "$DIR/scores.jsonl" \
  missed > "$DIR/missed.txt"
python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
events = sum(1 for line in open(f"{d}/events.jsonl") if line.strip())
labels = sum(1 for line in open(f"{d}/labels.jsonl") if line.strip())
r = json.load(open(f"{d}/report.json"))
print(f"independent hospital (seed 7, 4 days): {r['events']} events, precision {r['precision']:.3f}, "
      f"recall {r['recall']:.3f}, FPR {r['false_positive_rate'] * 100:.2f}%, "
      f"incidents {r['incidents_found']} / {r['incidents']}, AUC {r['auc']:.3f}")
problems = []
if r["events"] != events:
    problems.append(f"scored {r['events']} events of {events}")
if r["attack_events"] != labels:
    problems.append(f"joined {r['attack_events']} labels of {labels}")
if r["incidents_found"] == 0:
    problems.append("no incident found")
inspected = open(f"{d}/missed.txt").read()
if inspected.count("found after") != r["incidents_found"] or inspected.count("MISSED") != r["incidents"] - r["incidents_found"]:
    problems.append("scripts/detect-eval/inspect.py sees other incidents than the evaluator")
if problems:
    sys.exit("independent hospital: " + "; ".join(problems))
PY
