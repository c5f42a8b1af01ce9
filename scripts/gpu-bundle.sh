#!/usr/bin/env bash
# Builds the CUDA test binaries, `kiln`, examples/train_step and benches/cuda.rs (kiln's side only:
# its libtorch twins need PyTorch 2.13 where it runs, so scripts/gpu-check.sh bench) here and copies them, stripped,
# into .gpu/bin (git-ignored), for a GPU machine without a Rust toolchain: copy the checkout with
# .gpu/ there and run scripts/gpu-run-bundle.sh. Machines with cargo run scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu/bin
mkdir -p .gpu/bin
{
  cargo test --release --no-run --workspace --message-format=json
  cargo build --release --message-format=json -p kiln --bin kiln --example train_step
  cargo bench --no-run -p kiln --bench cuda --message-format=json
  # NCCL's GPU test (feature `nccl`; libnccl.so comes from the GPU machine's nvidia-nccl-cu13).
  cargo test --release --no-run -p kiln-train --features nccl --test nccl_gpu --message-format=json
} | python3 -c '
import json, shutil, sys
# Every kernel test (each compares a CUDA kernel with its CPU twin) and the CUDA tests elsewhere.
cuda_tests = {"cuda_conformance", "cuda_memory", "cuda_vendor", "cuda_resnet", "amp_optim",
              "train_cuda", "nccl_gpu", "cuda_tensor_cores", "cuda_graph", "cuda_conv_bn_stats",
              "cuda_conv_bn_prologue"}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    t = m["target"]
    test = t["kind"] == ["test"] and ("kiln-kernels" in m["package_id"] or t["name"] in cuda_tests)
    name = t["name"]
    # kiln-engine and kiln-train both have a cuda_graph test: engine_cuda_graph, train_cuda_graph.
    if test and name == "cuda_graph":
        name = ("train_" if "kiln-train" in m["package_id"] else "engine_") + name
    if test or not m["profile"]["test"] and name in ("kiln", "train_step"):
        shutil.copy(m["executable"], ".gpu/bin/" + name)
    if t["kind"] == ["bench"] and name == "cuda":
        shutil.copy(m["executable"], ".gpu/bin/bench_cuda")
'
strip .gpu/bin/*
pwd >.gpu/build-root
ls .gpu/bin
du -sh .gpu/bin
