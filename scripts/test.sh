#!/usr/bin/env bash
# The one test command (README, .ci/run): formatting, lints, docs, then every test in release mode.
# CUDA code runs on kiln-cuda-emu (a CPU libcuda.so) with NVRTC from pinned wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase's header says how long the run has taken so far (CI's time budget is watched).
phase() { echo "== $1 (at ${SECONDS}s)"; }
trap 'echo "== ended after ${SECONDS}s"' EXIT

nvrtc_dirs=$(scripts/install-nvrtc.sh)

phase "cuda-emu (libcuda.so on the CPU)"
cargo build -p kiln-cuda-emu --release
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
emu_dir="$target_dir/release"
ln -sf libcuda.so "$emu_dir/libcuda.so.1"
export LD_LIBRARY_PATH="${emu_dir}:${nvrtc_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

phase "cargo fmt"
cargo fmt --all -- --check
phase "cargo clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
phase "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --release --quiet
phase "cargo test"
# tests/dist_elastic.rs runs 2 "nodes" as network namespaces (as root, with iproute2's ip).
if [ "$(id -u)" = 0 ] && ! command -v ip >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends iproute2
fi
cargo test --workspace --release

# The nccl and mpi features change kiln-train's dependencies (cudarc's features, the mpi crate):
# each feature build compiles the crates again, once.
phase "NCCL feature (without a GPU: builds, and falls back on the emulator with the reason logged)"
cargo clippy -p kiln-train -p kiln --features nccl --all-targets --release -- -D warnings
cargo test --release -p kiln-train --features nccl --test nccl_fallback

phase "GPU table harness: pairs.py against stand-in servers (python3's standard library only)"
python3 -m unittest discover -s scripts/bench -p 'test_*.py'

phase "GPU acceptance: the bundle fits 64 MiB; its dry run on the emulator passes, and fails on a planted failure"
scripts/gpu-accept.sh build
OUT="$target_dir/gpu-accept" scripts/gpu-accept.sh dry-run
planted="$target_dir/gpu-accept-planted"
if OUT="$planted" scripts/gpu-accept.sh dry-run --plant-failure --only 'planted_.*|kernels_rng'; then
    echo "gpu-accept: the dry run passed with a planted failure" >&2
    exit 1
fi
grep -q '^planted_failure  *FAILED' "$planted/summary.txt"
grep -q '^planted_skip  *SKIPPED' "$planted/summary.txt"

phase "MPI (data-parallel training over 2 CPU ranks)"
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
