#!/usr/bin/env bash
# `make detect-eval`: the anomaly detector over many simulated hospitals, both ways it runs (with
# the records service's care facts, and from access events alone), summed up as in the README.
#
#   scripts/detect-eval.sh [SET ...]     SET: quick (3 seeds), seeds (the README's 37), shapes
#                                        (eight hospitals of other shapes), short (2-5 days),
#                                        independent (five hospitals of a generator written
#                                        apart from the model), network (five regional care
#                                        networks of a third generator, written apart from
#                                        both), academic (five academic medical centres of a
#                                        fourth, apart from all three) or a file of lines
#                                        "seed [anomaly simulate arguments]",
#                                        "independent seed [its arguments]" or
#                                        "network seed [its arguments]",
#                                        "academic seed [its arguments]"; default: seeds
#
# Settings (env): BIN (the anomaly binary; default target/release/anomaly, built if missing or
# SKIP_BUILD unset), OUT (var/detect-eval/<name>, default "latest"), BASE (an earlier OUT name to
# compare with), JOBS (parallel evaluations, default the number of cores).
# The simulated logs are cached in var/detect-eval/data, keyed by the simulator's sources.
# An independent hospital (scripts/detect-eval/independent_hospital.py, designed from how
# hospitals work without reading the detector) has no care facts: it is evaluated from its
# events alone, reported as i<seed>; so is a regional care network
# (scripts/detect-eval/regional_network.py, by another hand, reading neither), as n<seed>; and
# an academic medical centre (scripts/detect-eval/academic_center.py, by a fourth hand reading
# none of them), as a<seed>.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

BIN="${BIN:-target/release/anomaly}"
if [ -z "${SKIP_BUILD:-}" ] && [ "$BIN" = target/release/anomaly ]; then
  cargo build --release -p anomaly
fi
[ -x "$BIN" ] || { echo "detect-eval: no anomaly binary at $BIN" >&2; exit 2; }

OUT_NAME="${OUT:-latest}"
OUT_DIR="var/detect-eval/$OUT_NAME"
JOBS="${JOBS:-$(nproc)}"
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(seeds)

# The simulation is deterministic per seed and arguments; its logs change only with its sources.
SIM_KEY="$(cat services/anomaly/src/simulate/*.rs | sha1sum | cut -c1-12)"
DATA_DIR="var/detect-eval/data/$SIM_KEY"
# The generators written apart from the model: name, script, data directory (by its hash).
declare -A GENERATOR GEN_DIR
GENERATOR[independent]=scripts/detect-eval/independent_hospital.py
GENERATOR[network]=scripts/detect-eval/regional_network.py
GENERATOR[academic]=scripts/detect-eval/academic_center.py
for name in "${!GENERATOR[@]}"; do
  GEN_DIR[$name]="var/detect-eval/data/$name-$(sha1sum < "${GENERATOR[$name]}" | cut -c1-12)"
  mkdir -p "${GEN_DIR[$name]}"
done
mkdir -p "$DATA_DIR" "$OUT_DIR"

lines=()
for set in "${sets[@]}"; do
  file="$set"
  [ -f "$file" ] || file="scripts/detect-eval/$set.txt"
  [ -f "$file" ] || { echo "detect-eval: no set $set (scripts/detect-eval/*.txt or a file)" >&2; exit 2; }
  while IFS= read -r line; do
    line="${line%%#*}"
    [ -n "${line// /}" ] && lines+=("$line")
  done < "$file"
done

# A hospital's logs are named by its seed and, when it has any, a digest of its arguments.
tag_of() {
  local seed="$1"; shift
  if [ $# -eq 0 ]; then echo "s$seed"; else echo "s$seed-$(echo "$*" | sha1sum | cut -c1-8)"; fi
}

generate() {
  local tag
  tag="$(tag_of "$@")"
  local seed="$1"; shift
  if [ -n "${GENERATOR[$seed]:-}" ]; then
    generate_apart "$seed" "$@"
    return
  fi
  if [ ! -s "$DATA_DIR/$tag.labels.jsonl" ]; then
    "$BIN" simulate --seed "$seed" "$@" \
      --out-events "$DATA_DIR/$tag.events.jsonl.part" \
      --out-labels "$DATA_DIR/$tag.labels.jsonl.part" \
      --out-care "$DATA_DIR/$tag.care.jsonl.part" > /dev/null
    for f in events care labels; do
      mv "$DATA_DIR/$tag.$f.jsonl.part" "$DATA_DIR/$tag.$f.jsonl"
    done
  fi
}

# generate_apart NAME SEED [ARGS]: a log of the generator NAME (events and labels, no care facts).
generate_apart() {
  local name="$1"; shift
  local tag dir="${GEN_DIR[$name]}"
  tag="$(tag_of "$@")"
  local seed="$1"; shift
  if [ ! -s "$dir/$tag.labels.jsonl" ]; then
    python3 "${GENERATOR[$name]}" --seed "$seed" "$@" \
      --out-events "$dir/$tag.events.jsonl.part" \
      --out-labels "$dir/$tag.labels.jsonl.part" 2> /dev/null
    for f in events labels; do
      mv "$dir/$tag.$f.jsonl.part" "$dir/$tag.$f.jsonl"
    done
  fi
}

echo "detect-eval: ${#lines[@]} hospitals, $BIN, results in $OUT_DIR"
jobs_file="$(mktemp)"
trap 'rm -f "$jobs_file"' EXIT
for line in "${lines[@]}"; do
  # shellcheck disable=SC2086
  set -- $line
  seed="$1"
  generate "$@" &
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  if [ -n "${GENERATOR[$seed]:-}" ]; then
    shift
    echo "${seed:0:1}$1 $(tag_of "$@") events ${GEN_DIR[$seed]}" >> "$jobs_file"
    continue
  fi
  tag="$(tag_of "$@")"
  echo "$seed $tag care $DATA_DIR" >> "$jobs_file"
  echo "$seed $tag events $DATA_DIR" >> "$jobs_file"
done
wait

evaluate_one() {
  local seed="$1" tag="$2" mode="$3" data="$4" care=()
  [ "$mode" = care ] && care=(--care-facts "$data/$tag.care.jsonl")
  "$BIN" evaluate --json --events "$data/$tag.events.jsonl" \
    --labels "$data/$tag.labels.jsonl" "${care[@]}" > "$OUT_DIR/$mode-$seed.json.part"
  mv "$OUT_DIR/$mode-$seed.json.part" "$OUT_DIR/$mode-$seed.json"
}
export -f evaluate_one
export BIN OUT_DIR
xargs -P "$JOBS" -L 1 bash -c 'evaluate_one "$0" "$1" "$2" "$3"' < "$jobs_file"

seeds_arg="$(printf '%s\n' "${lines[@]}" \
  | awk '{print ($1 == "independent" || $1 == "network" || $1 == "academic") ? substr($1, 1, 1) $2 : $1}' | paste -sd, -)"
python3 scripts/detect-eval-summary.py "$OUT_DIR" --seeds "$seeds_arg" \
  ${BASE:+--base "var/detect-eval/$BASE"} | tee "$OUT_DIR/results.md"
