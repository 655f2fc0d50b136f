# Shared by scripts/demo.sh, scripts/test.sh and .ci/run: make sure Node 20+, pnpm (through
# corepack) and the nats-server / redis-server binaries are there, installing Debian's packages
# when we are root and they are missing.

export COREPACK_ENABLE_DOWNLOAD_PROMPT=0
# corepack 0.2x on Node 20 ships outdated npm signing keys; pnpm comes from the npm registry either way.
export COREPACK_INTEGRITY_KEYS=0

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_node() {
  command -v node >/dev/null 2>&1 || die "Node.js 20 or newer is required (https://nodejs.org, or: apt-get install nodejs)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js 20 or newer is required; this is $(node --version)"
}

ensure_pnpm() {
  if command -v pnpm >/dev/null 2>&1 && pnpm --version >/dev/null 2>&1; then return; fi
  command -v corepack >/dev/null 2>&1 || die "corepack is missing (it ships with Node.js 20); install pnpm 10: npm install -g pnpm@10"
  say "enabling pnpm through corepack"
  if ! corepack enable >/dev/null 2>&1; then
    mkdir -p "$HOME/.local/bin"
    corepack enable --install-directory "$HOME/.local/bin"
    export PATH="$HOME/.local/bin:$PATH"
  fi
  pnpm --version >/dev/null || die "pnpm could not be enabled through corepack"
}

find_server() {
  local name=$1
  command -v "$name" 2>/dev/null && return
  for dir in /usr/sbin /usr/local/sbin /usr/bin; do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return; }
  done
  return 1
}

ensure_servers() {
  local missing=()
  find_server nats-server >/dev/null || missing+=(nats-server)
  find_server redis-server >/dev/null || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    # Package scripts may try to start the services; we run our own instances on free ports instead.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}: install them with: sudo apt-get install -y ${missing[*]}"
  fi
}

# The tests need more than the servers: openssl makes their certificates (a private CA, server and
# client certificates), chromium runs the console's browser tests (driven by playwright-core, no
# downloaded browser) and prometheus ships promtool (the alert rules' unit tests) and the server the
# dashboard test scrapes the cluster with.
ensure_test_tools() {
  local missing=()
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  { command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } || missing+=(prometheus)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages for the tests: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]} (the tests need them): install them with: sudo apt-get install -y ${missing[*]}"
  fi
}

install_deps() {
  say "installing dependencies (pnpm install)"
  pnpm install --frozen-lockfile --reporter=append-only >/dev/null
}
