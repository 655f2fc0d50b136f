#!/usr/bin/env bash
# Runs the demo: a local cluster deciding on synthetic signals. Ctrl-C stops and cleans up.
# Usage: bash scripts/demo.sh [--rate N] [--duration S]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_node
ensure_pnpm
ensure_servers
install_deps
say "building"
pnpm -s build >/dev/null
exec node packages/cli/dist/main.js demo "$@"
