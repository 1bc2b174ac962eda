#!/usr/bin/env bash
# The whole test suite, from nothing: installs what the tests need, builds, and runs every test.
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh --test daemon   # extra arguments go to `cargo test`
#
# The real-gateway tests need Node 24 and the pinned `openclaw` npm package; gateway-env.sh
# installs both under target/openclaw-env once (about a minute), later runs reuse them.
# The relay's JetStream tests need nats-server; nats-env.sh installs it under target/nats-env.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/gateway-env.sh >/dev/null
./scripts/nats-env.sh >/dev/null
./scripts/a2a-env.sh >/dev/null
cargo build --workspace --all-targets
cargo test --workspace "$@"
# The relay's own suites once more on the JetStream backend (a 3-node R3 cluster per relay).
if [ $# -eq 0 ]; then
    CLAWLINK_RELAY_BACKEND=nats cargo test -p clawlink-tests --test relay_server --test relay_client
    CLAWLINK_RELAY_BACKEND=nats CLAWLINK_KILL9_MESSAGES=1000 CLAWLINK_KILL9_SEEDS=1 \
        cargo test -p clawlink-tests --test kill9 relay_
fi
