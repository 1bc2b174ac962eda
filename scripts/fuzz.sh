#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30) with cargo-fuzz (libFuzzer).
#   ./scripts/fuzz.sh          # 30 s per target (what CI runs)
#   ./scripts/fuzz.sh 3600     # an hour per target
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on the stable toolchain,
# for this command only. New inputs found go to fuzz/corpus/<target>/ (commit the useful ones).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in control_request webhook_body gateway_frame nexus_body relay_request a2a_request envelope invite receipt; do
  echo "== fuzz $t for ${secs}s"
  mkdir -p "fuzz/corpus/$t"   # a target with no committed inputs yet starts from nothing
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len=65536 -print_final_stats=1 2>&1 | tail -n 8
done
