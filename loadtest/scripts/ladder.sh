#!/usr/bin/env bash
# Our decision protocol's cost, step by step, beside the seed and the worker: each round runs the seed
# baseline, the ladder (the seed's code with our protocol's steps added one at a time: js, then lua,
# then pull; loadtest/micro/protocol-ladder.ts) and the worker, back to back with the same seed, and
# prints compare.sh's table for the round. What the full ladder costs is the protocol's own floor; what
# the worker costs above it is ours. docs/high-frequency.md, "The protocol's floor".
#
#   loadtest/scripts/ladder.sh --scenario steady --rate 500 --duration 20 --warmup 3 --seed 7
#   ROUNDS=3 LADDER_OUT=/tmp/ladder loadtest/scripts/ladder.sh --scenario steady --rate 500 --duration 20
#
# Every argument goes to the driver unchanged (never --target, --ladder or --out). ROUNDS (default 1),
# LADDER_OUT (default loadtest/results, git-ignored) and LADDER_STEPS (default "js js,lua js,lua,pull":
# the ladder runs, in order) override. Exit code: 1 when any run failed its correctness checks.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${LADDER_OUT:-$here/results}"
rounds="${ROUNDS:-1}"
steps="${LADDER_STEPS:-js js,lua js,lua,pull}"
mkdir -p "$out"
if [ "${1:-}" = "--" ]; then shift; fi
for a in "$@"; do
  case "$a" in --target|--target=*|-t|--out|--out=*|-o|--ladder|--ladder=*) echo "ladder.sh sets --target, --ladder and --out itself" >&2; exit 2 ;; esac
done
status=0
for r in $(seq 1 "$rounds"); do
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  files=()
  run() { # name, driver args…
    local f="$out/ladder-$stamp-$1.json"; shift
    echo "[ladder] round $r: $* $EXTRA" >&2
    (cd "$here" && node --conditions=source --import tsx src/cli.ts --no-progress --out "$f" "$@") || status=1
    files+=("$f")
  }
  EXTRA="$*"
  run baseline --target baseline "$@"
  for s in $steps; do run "ladder-${s//,/-}" --target ladder --ladder "$s" "$@"; done
  run worker --target worker "$@"
  (cd "$here" && node --import tsx scripts/compare-results.ts "${files[@]}")
done
exit $status
