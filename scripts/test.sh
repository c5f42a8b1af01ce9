#!/usr/bin/env bash
# The one test command (README, .ci/run): formatting, lints, docs, then every test in release mode.
# CUDA code runs on kiln-cuda-emu (a CPU libcuda.so) with NVRTC from pinned wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

nvrtc_dirs=$(scripts/install-nvrtc.sh)

echo "== cuda-emu (libcuda.so on the CPU)"
cargo build -p kiln-cuda-emu --release
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
emu_dir="$target_dir/release"
ln -sf libcuda.so "$emu_dir/libcuda.so.1"
export LD_LIBRARY_PATH="${emu_dir}:${nvrtc_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --release --quiet
echo "== cargo test"
cargo test --workspace --release
