#!/usr/bin/env bash
# Runs every test: lint, type check, unit tests, then integration tests against private
# nats-server / redis-server instances the tests start themselves on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_node
ensure_pnpm
ensure_servers
ensure_test_tools
install_deps
pnpm test
