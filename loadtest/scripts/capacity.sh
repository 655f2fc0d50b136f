#!/usr/bin/env bash
# The capacity model's inputs (docs/capacity.md): with 1, 2 and 3 workers (and an embedded
# coordinator), CPU ms per decision of the workers, nats-server and redis-server at a fixed rate, then
# the same worker count as fast as it goes (max), which checks the throughput those costs predict on
# this machine. Private servers, one run after the other.
#
#   loadtest/scripts/capacity.sh                      # 1 2 3 workers, 1000/s, 20 s each
#   CAPACITY_WORKERS="1 2" CAPACITY_RATE=500 loadtest/scripts/capacity.sh
#
# Result files: $CAPACITY_OUT/capacity-<stamp>-<scenario>-w<N>.json (default loadtest/results,
# git-ignored). Prints one markdown table. Exit code 1 when a run lost or doubled a decision.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${CAPACITY_OUT:-$here/results}"
rate="${CAPACITY_RATE:-1000}"
duration="${CAPACITY_DURATION:-20}"
workers="${CAPACITY_WORKERS:-1 2 3}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
files=()
status=0
for n in $workers; do
  for scenario in steady max; do
    f="$out/capacity-$stamp-$scenario-w$n.json"
    args=(--scenario "$scenario" --duration "$duration" --warmup 3 --target worker --workers "$n" --no-progress --label "capacity-$scenario-w$n" --out "$f")
    [ "$scenario" = steady ] && args+=(--rate "$rate")
    echo "[capacity] $n worker(s), $scenario" >&2
    (cd "$here" && node --conditions=source --import tsx src/cli.ts "${args[@]}" >/dev/null) || status=1
    files+=("$f")
  done
done
(cd "$here" && node --import tsx scripts/capacity-results.ts "${files[@]}") || status=1
exit $status
