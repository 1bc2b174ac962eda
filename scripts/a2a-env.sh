#!/usr/bin/env bash
# Installs the official A2A JavaScript SDK (`@a2a-js/sdk`, pinned) the A2A end-to-end tests
# use as a client of clawlinkd's endpoint and as a server clawlink sends to, and prints where.
#
# Why: interoperability is proved against an implementation nobody here wrote. The SDK runs on
# the Node that scripts/gateway-env.sh installs (Node 24), so this calls that script first.
# Only the npm registry is used, through the machine's `npm`.
#
# Usage:   scripts/a2a-env.sh              # installs if needed, prints NODE=... A2A_SDK_DIR=...
# Cache:   $CLAWLINK_A2A_ENV (default: <repo>/target/a2a-env)
# Pins:    $A2A_SDK_VERSION (default 1.3.0), plus express (the SDK's server side runs on it)
# Output:  lines `NODE=<path>`, `A2A_SDK_DIR=<dir holding node_modules>`, `A2A_SDK_VERSION=`;
#          kept in $CACHE/env. A second run with everything present is instant.
set -euo pipefail

A2A_SDK_VERSION="${A2A_SDK_VERSION:-1.3.0}"
EXPRESS_VERSION="${EXPRESS_VERSION:-5.1.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CLAWLINK_A2A_ENV:-$ROOT/target/a2a-env}"
SDK_DIR="$CACHE/sdk-$A2A_SDK_VERSION"

log() { echo "a2a-env: $*" >&2; }

NODE="$("$ROOT/scripts/gateway-env.sh" | sed -n 's/^NODE=//p')"
[ -x "$NODE" ] || { log "no Node from scripts/gateway-env.sh"; exit 1; }

sdk_ok() {
    local pj="$SDK_DIR/node_modules/@a2a-js/sdk/package.json"
    [ -f "$pj" ] && [ -f "$SDK_DIR/node_modules/express/package.json" ] || return 1
    [ "$("$NODE" -p "require('$pj').version" 2>/dev/null)" = "$A2A_SDK_VERSION" ]
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

if ! sdk_ok; then
    log "installing @a2a-js/sdk@$A2A_SDK_VERSION and express@$EXPRESS_VERSION into $SDK_DIR"
    rm -rf "$SDK_DIR"
    mkdir -p "$SDK_DIR"
    PATH="$(dirname "$NODE"):$PATH" npm install --prefix "$SDK_DIR" --no-audit --no-fund --loglevel=error \
        "@a2a-js/sdk@$A2A_SDK_VERSION" "express@$EXPRESS_VERSION" >&2
    sdk_ok || { log "@a2a-js/sdk@$A2A_SDK_VERSION is not in $SDK_DIR after npm install"; exit 1; }
fi

{
    echo "NODE=$NODE"
    echo "A2A_SDK_DIR=$SDK_DIR"
    echo "A2A_SDK_VERSION=$A2A_SDK_VERSION"
} >"$CACHE/env.tmp"
mv "$CACHE/env.tmp" "$CACHE/env"
cat "$CACHE/env"
