# Sourced by scripts/bench.sh: what the access pipeline and the services' memory do while the
# load runs. Needs SUITE_PIDS, SUITE_DB_BASE, SUITE_DB_PREFIX, SUITE_STREAM_PREFIX and a
# `bench_redis` function (redis-cli with the suite's credentials).
#
# watch_pipeline FILE PHASE_FILE: one line a second until killed:
#   <epoch> <phase> <unpublished> <ledger behind> <anomaly behind> <lag s> <rss KiB per service...>
# where "behind" is a consumer group's pending plus not yet delivered entries of the access
# stream, and the lag is the age of the oldest event not yet handled by both groups (the
# oldest unpublished outbox row, or the stream entry a group is waiting on).

WATCH_SERVICES=(gateway identity consent records ledger anomaly)
WATCH_PRODUCERS=(identity consent records anomaly)

# Age in ms of the oldest entry group $2 of stream $1 has not finished with (0: none).
watch_group_age() {
  local key="$1" group="$2" now_ms="$3" info pending last lag id
  info="$(bench_redis XINFO GROUPS "$key" 2>/dev/null | awk -v g="$group" '
    prev == "name" { cur = $0 }
    cur == g && prev == "pending" { p = $0 }
    cur == g && prev == "last-delivered-id" { l = $0 }
    cur == g && prev == "lag" { lag = $0 }
    { prev = $0 }
    END { printf "%s %s %s\n", p + 0, l, (lag == "" ? 0 : lag) }')"
  read -r pending last lag <<<"$info"
  id=""
  if [ "${pending:-0}" -gt 0 ]; then
    id="$(bench_redis XPENDING "$key" "$group" 2>/dev/null | sed -n 2p)"
  elif [ "${lag:-0}" -gt 0 ] && [ -n "$last" ]; then
    id="$(bench_redis XRANGE "$key" "($last" + COUNT 1 2>/dev/null | head -1)"
  fi
  if [ -z "$id" ]; then echo "0 $((pending + lag))"; return; fi
  echo "$((now_ms - ${id%%-*})) $((pending + lag))"
}

watch_pipeline() {
  local file="$1" phase_file="$2" key="${SUITE_STREAM_PREFIX}:access"
  local now_ms unpublished oldest_ms ledger_age ledger_behind anomaly_age anomaly_behind lag svc pid rss
  local -a row
  while :; do
    now_ms="$(date +%s%3N)"
    # One psql for the four outboxes (\c between them): the watcher must not be the load.
    read -r unpublished oldest_ms < <(
      for svc in "${WATCH_PRODUCERS[@]}"; do
        echo "\\c ${SUITE_DB_PREFIX}_$svc"
        echo "SELECT count(*), coalesce(floor(extract(epoch FROM now() - min(created_at)) * 1000), 0)::bigint FROM event_outbox WHERE published_at IS NULL;"
      done | psql -w -tAq -F ' ' "$SUITE_DB_BASE/postgres" 2>/dev/null |
        awk '{ n += $1; if ($2 > m) m = $2 } END { print n + 0, m + 0 }')
    read -r ledger_age ledger_behind < <(watch_group_age "$key" ledger "$now_ms")
    read -r anomaly_age anomaly_behind < <(watch_group_age "$key" anomaly "$now_ms")
    lag="$oldest_ms"
    [ "$ledger_age" -gt "$lag" ] && lag="$ledger_age"
    [ "$anomaly_age" -gt "$lag" ] && lag="$anomaly_age"
    row=("$((now_ms / 1000))" "$(cat "$phase_file" 2>/dev/null || echo -)" "$unpublished" \
      "$ledger_behind" "$anomaly_behind" "$(awk -v ms="$lag" 'BEGIN { printf "%.1f", ms / 1000 }')")
    for svc in "${WATCH_SERVICES[@]}"; do
      pid="${SUITE_PIDS[$svc]:-}"
      rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)"
      row+=("${rss:-0}")
    done
    echo "${row[*]}" >>"$file"
    sleep 1
  done
}

# watch_summary FILE PHASE: "<max unpublished> <max ledger behind> <max anomaly behind> <max lag s>
# <max RSS MiB per service...>" over the samples of PHASE.
watch_summary() {
  awk -v phase="$2" '
    $2 == phase {
      for (i = 3; i <= NF; i++) if ($i + 0 > m[i] + 0) m[i] = $i
      nf = NF; seen = 1
    }
    END {
      if (!seen) { print "n/a"; exit }
      printf "%d %d %d %.1f", m[3], m[4], m[5], m[6]
      for (i = 7; i <= nf; i++) printf " %.0f", m[i] / 1024
      printf "\n"
    }' "$1"
}

# The whole pipeline is empty: nothing unpublished, nothing pending or undelivered.
watch_drained() {
  local line
  line="$(tail -1 "$1" 2>/dev/null)" || return 1
  [ -n "$line" ] && awk '{ exit !($3 == 0 && $4 == 0 && $5 == 0) }' <<<"$line"
}
