#!/usr/bin/env bash
# The seed baseline and our worker under the same load, back to back in one invocation, on the same
# machine and private servers, with the same seed: the ratio is measured, not quoted.
#
#   loadtest/scripts/compare.sh --scenario max --duration 20 --warmup 3
#   TARGETS="baseline worker" COMPARE_OUT=/tmp/cmp loadtest/scripts/compare.sh --scenario steady --rate 2000 --duration 20
#
# Every argument goes to the driver unchanged for each target (never --target or --out: the script
# sets them). Result files: $COMPARE_OUT/compare-<stamp>-<target>.json (default loadtest/results,
# git-ignored). TARGETS (default "baseline worker") and COMPARE_SEED (default random) override.
# Prints one markdown table (decided/s, latency, lost/duplicates/mismatches, CPU) with worker ÷
# baseline ratios. Exit code: 1 when any run failed its correctness checks.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${COMPARE_OUT:-$here/results}"
targets="${TARGETS:-baseline worker}"
seed="${COMPARE_SEED:-$RANDOM$RANDOM}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
# `pnpm run compare -- …` hands the "--" through.
if [ "${1:-}" = "--" ]; then shift; fi
for a in "$@"; do
  case "$a" in --target|--target=*|-t|--out|--out=*|-o) echo "compare.sh sets --target and --out itself" >&2; exit 2 ;; esac
done
status=0
files=()
for t in $targets; do
  f="$out/compare-$stamp-$t.json"
  echo "[compare] $t: $*" >&2
  (cd "$here" && node --conditions=source --import tsx src/cli.ts --target "$t" --seed "$seed" --no-progress --label "compare-$t" --out "$f" "$@") || status=1
  files+=("$f")
done
(cd "$here" && node --import tsx scripts/compare-results.ts "${files[@]}")
exit $status
