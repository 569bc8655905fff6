#!/bin/bash
# The whole suite as CI runs it, in a fresh clone of this repository's HEAD, with
# `stress-ng --cpu 2` keeping both cores busy beside it (issue "Hardening", item 7).
# Usage: scripts/test-under-load.sh [RUNS]   (default 1; prints one line per run)
set -u
runs=${1:-1}
repo=$(git rev-parse --show-toplevel)
command -v stress-ng >/dev/null || { echo "needs stress-ng (apt-get install stress-ng)" >&2; exit 2; }
for n in $(seq 1 "$runs"); do
  clone=$(mktemp -d /tmp/teleconsult-load.XXXXXX)
  git clone -q "$repo" "$clone"
  log="$clone.log"
  stress-ng --cpu 2 --timeout 3600s --quiet &
  stress=$!
  start=$(date +%s)
  (cd "$clone" && CI=true timeout 3600 bash .ci/run) >"$log" 2>&1
  rc=$?
  kill "$stress" 2>/dev/null; wait "$stress" 2>/dev/null
  echo "run $n: exit $rc in $(( $(date +%s) - start )) s; $(grep -E '^=+ .*(passed|failed).* =+$' "$log" | tail -1 | tr -d '=')  (log: $log)"
  rm -rf "$clone"
done
