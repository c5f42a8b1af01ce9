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
# tests/dist_elastic.rs runs 2 "nodes" as network namespaces (as root, with iproute2's ip).
if [ "$(id -u)" = 0 ] && ! command -v ip >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends iproute2
fi
cargo test --workspace --release

echo "== NCCL feature (without a GPU: builds, and falls back on the emulator with the reason logged)"
cargo clippy -p kiln-train -p kiln --features nccl --all-targets --release -- -D warnings
cargo test --release -p kiln-train --features nccl --test nccl_fallback

echo "== GPU acceptance: the bundle fits 64 MiB; its dry run on the emulator passes, and fails on a planted failure"
scripts/gpu-accept.sh build
OUT="$target_dir/gpu-accept" scripts/gpu-accept.sh dry-run
planted="$target_dir/gpu-accept-planted"
if OUT="$planted" scripts/gpu-accept.sh dry-run --plant-failure --only 'planted_.*|kernels_rng'; then
    echo "gpu-accept: the dry run passed with a planted failure" >&2
    exit 1
fi
grep -q '^planted_failure  *FAILED' "$planted/summary.txt"
grep -q '^planted_skip  *SKIPPED' "$planted/summary.txt"

echo "== MPI (data-parallel training over 2 CPU ranks)"
# The mpi feature needs OpenMPI and libclang (for the mpi crate's bindgen); install them when missing.
if ! command -v mpirun >/dev/null || ! dpkg -s libopenmpi-dev libclang-dev >/dev/null 2>&1; then
    sudo_cmd=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends libopenmpi-dev openmpi-bin libclang-dev
fi
cargo clippy -p kiln-train -p kiln --features mpi --all-targets --release -- -D warnings
cargo test --release -p kiln --features mpi --test dist_mpi -- --test-threads 1
# Two "nodes" (network namespaces, as root; iproute2 is installed above): mpirun across them.
cargo test --release -p kiln --features mpi --test dist_mpi_nodes -- --test-threads 1
