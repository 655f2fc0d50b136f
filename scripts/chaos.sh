#!/usr/bin/env bash
# The chaos scenario N times in a row (default 10): a worker joining, a worker killed -9, a worker
# SIGSTOPped past its lease and the coordinator leader killed, under steady load, each run on fresh
# private servers. It is test/chaos.int.test.ts, which `pnpm test` runs once with the other integration
# tests; this runs that file alone, N times. Prints each run's [chaos] line and a last line with the
# runs that failed. Exit code 1 when any run failed.
#   bash scripts/chaos.sh 10
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_node
ensure_pnpm
ensure_servers
runs="${1:-10}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "expected a number of runs, got '$runs'"
pnpm run build >/dev/null
failed=0
for i in $(seq 1 "$runs"); do
  if out=$(npx vitest run --project integration test/chaos.int.test.ts 2>&1); then status=ok; else status=FAILED; failed=$((failed + 1)); fi
  line=$(grep -o '\[chaos\].*' <<<"$out" | head -1 || true)
  echo "run $i/$runs $status ${line:-(no [chaos] line: the run stopped before counting)}"
  [ "$status" = ok ] || grep -E 'Error|expected|timed out' <<<"$out" | head -5 | sed 's/^/    /'
done
echo "chaos: $((runs - failed)) of $runs runs passed"
[ "$failed" -eq 0 ]
