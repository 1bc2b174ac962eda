#!/usr/bin/env bash
# The whole test suite, from nothing: installs what the tests need, builds, and runs every test.
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh --test daemon   # extra arguments go to `cargo test`
#
# The real-gateway tests need Node 24 and the pinned `openclaw` npm package; gateway-env.sh
# installs both under target/openclaw-env once (about a minute), later runs reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/gateway-env.sh >/dev/null
./scripts/a2a-env.sh >/dev/null
cargo build --workspace --all-targets
cargo test --workspace "$@"
