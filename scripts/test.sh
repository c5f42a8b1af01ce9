#!/usr/bin/env bash
# The one test command (README, .ci/run): formatting, lints, docs, then every test in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

nvrtc_dirs=$(scripts/install-nvrtc.sh)
export LD_LIBRARY_PATH="${nvrtc_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --release --quiet
echo "== cargo test"
cargo test --workspace --release
