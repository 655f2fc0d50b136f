#!/usr/bin/env bash
# A CPU profile of the private nats-server during one driver run: where the broker's share of the
# CPU per decision goes (docs/high-frequency-history.md, "Inside nats-server"). nats-server serves Go's pprof
# on --profile PORT; the driver starts its servers from NATS_SERVER_BIN, so a wrapper adds the flag.
#   loadtest/scripts/nats-profile.sh OUT.pb.gz [--delay S] [--seconds S] -- DRIVER ARGS…
#   loadtest/scripts/nats-profile.sh /tmp/w.pb.gz -- --target worker --scenario steady --rate 500 --duration 60 --warmup 3 --seed 7
#   node loadtest/scripts/pprof-summary.mjs /tmp/w.pb.gz
# The profile starts --delay seconds (default 8) after nats-server answers and lasts --seconds
# (default 20): keep both inside the run's measured window. The driver's result file is OUT.json.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
usage() { echo "usage: $0 OUT.pb.gz [--delay S] [--seconds S] -- DRIVER ARGS…" >&2; exit 2; }
[ $# -ge 1 ] || usage
out="$1"; shift
delay=8; seconds=20
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --delay) delay="${2:?}"; shift 2 ;;
    --seconds) seconds="${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done
[ "${1:-}" = "--" ] || usage
shift
bin="$(command -v nats-server || true)"
[ -n "$bin" ] || { echo "nats-server is not on PATH" >&2; exit 2; }
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexec %q --profile %s "$@"\n' "$bin" "$port" > "$work/nats-server"
chmod +x "$work/nats-server"

(cd "$here" && NATS_SERVER_BIN="$work/nats-server" node --conditions=source --import tsx src/cli.ts --no-progress --out "${out%.pb.gz}.json" "$@") &
driver=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/debug/pprof/" && break
  sleep 0.3
done
sleep "$delay"
curl -sf -o "$out" "http://127.0.0.1:$port/debug/pprof/profile?seconds=$seconds" || echo "no profile: nats-server did not answer on :$port" >&2
wait "$driver"
echo "profile: $out (node loadtest/scripts/pprof-summary.mjs $out)"
