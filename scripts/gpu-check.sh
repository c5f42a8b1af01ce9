#!/usr/bin/env bash
# What a person with an NVIDIA GPU runs to validate what CI (no GPU, kiln-cuda-emu) cannot:
#   1. the CUDA conformance suite on the real device with cuBLAS/cuDNN, then with the built-in
#      kernels only (KILN_CUBLAS=0 KILN_CUDNN=0: tensor cores for f16/bf16 on sm_80+), then with
#      their SIMT paths only (also KILN_TENSOR_CORES=0), and which kernels ran
#      (engine/tests/cuda_tensor_cores.rs), and the BN statistics that conv's epilogue produces
#      (engine/tests/cuda_conv_bn_stats.rs);
#   2. cuBLAS and cuDNN against the built-in kernels (engine/tests/cuda_vendor.rs);
#   1b/2b. both again with cuDNN's graph API on (KILN_CUDNN_GRAPH=1), failing where it fell back
#      to the legacy API ("cuDNN graph API not used" on stderr) or where its conv+genstats graph
#      (a training BN's statistics from the convolution, cudnn_graph_genstats_match_kiln_bn
#      against kiln's own BN kernels) did ("conv+genstats not used");
#   2c. CUDA graphs with cuBLAS and cuDNN serving (engine/tests/cuda_graph.rs,
#      train/tests/cuda_graph.rs; also with the graph API): the tests require vendor calls in the
#      captured graphs where the libraries serve and eager's bits from every replay; this script
#      requires that the libraries did serve ("libraries serve: true", never false);
#   3. NCCL (feature `nccl`, library from scripts/install-nccl.sh): all-reduce, broadcast,
#      all-gather and reduce-scatter against host references, the unique id over the TCP
#      rendezvous, and one DDP step through NCCL against one GPU with the whole batch
#      (train/tests/nccl_gpu.rs: one rank per GPU, world size 1 on a one-GPU machine); on 2+ GPUs
#      also tests/dist_devices.rs with NCCL;
#   3b. `kiln train` (resnet18 on the embedded Fashion-MNIST subset, batch 64, 2 epochs) with
#      --cuda-graph on against off, cuBLAS/cuDNN on: epoch 2's img/s of each; the `on` run must
#      log a capture with cuBLAS/cuDNN calls in it and no eager fallback;
#   4. training-step throughput of resnet50 (batch 64, 224x224, channels-last, AMP float16),
#      kiln (examples/train_step.rs) against PyTorch (scripts/bench/torch_train_step.py); kiln
#      also with the graph API, twice: the first run times every plan and records the choices
#      in a fresh KILN_CACHE_DIR, the second reloads them.
# `scripts/gpu-check.sh bench [criterion filter]` runs none of that: only benches/cuda.rs (AMP
# training steps, resnet50's conv shapes, fused BN+ReLU, f16 GEMM) with its in-process libtorch
# twins, PASSES times (default 3), then the kiln/libtorch ratios of each row's lowest median
# (scripts/bench/ratios.py). tch 0.26 binds PyTorch 2.13.0: a venv of its own,
# .cache/torch-bench-venv (TORCH_BENCH_VENV).
# Installs nothing system-wide: NVRTC, cuBLAS and cuDNN wheels go to .cache/nvidia*, PyTorch and
# timm to the venv .cache/torch-venv. Needs an NVIDIA driver for CUDA 13.0 or newer, a Rust
# toolchain, and python3 with venv and pip. Override the pins with CUBLAS_SPEC, CUDNN_SPEC,
# TORCH_SPEC, TIMM_SPEC, NCCL_SPEC; skip the PyTorch side with NO_TORCH=1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

if ! nvidia-smi -L; then
  echo "gpu-check: nvidia-smi found no NVIDIA GPU or driver" >&2
  exit 1
fi

orig_library_path=${LD_LIBRARY_PATH:-}
nvrtc_dirs=$(scripts/install-nvrtc.sh) || exit 1

vendor=.cache/nvidia-vendor
cublas_spec=${CUBLAS_SPEC:-nvidia-cublas==13.10.0.20}
cudnn_spec=${CUDNN_SPEC:-nvidia-cudnn-cu13==9.28.0.42}
stamp="$vendor/.installed-$cublas_spec-$cudnn_spec"
if [ ! -f "$stamp" ]; then
  rm -rf "$vendor"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$vendor" \
    "$cublas_spec" "$cudnn_spec" >&2 || exit 1
  touch "$stamp"
fi
# cudarc opens the unversioned names first (libcudnn.so before libcudnn.so.9): link them here, so
# that a system-wide cuDNN or cuBLAS of another version cannot shadow the pinned one.
for f in "$PWD/$vendor"/nvidia/*/lib/lib*.so.[0-9]*; do
  ln -sfn "$f" "${f%%.so.*}.so"
done
vendor_dirs=$(find "$PWD/$vendor" \( -name 'libcublas.so*' -o -name 'libcudnn.so*' \) -printf '%h\n' | sort -u | paste -sd:)
nccl_dirs=$(scripts/install-nccl.sh) || exit 1

# A target folder of its own: cargo puts its target folder first on the library path, and the
# one scripts/test.sh builds holds the emulator's libcuda.so, which would shadow the driver.
export CARGO_TARGET_DIR=${GPU_CHECK_TARGET_DIR:-$PWD/target/gpu-check}
export LD_LIBRARY_PATH="${nvrtc_dirs}:${vendor_dirs}:${nccl_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if find "$CARGO_TARGET_DIR" -maxdepth 2 -name 'libcuda.so*' 2>/dev/null | grep -q .; then
  echo "gpu-check: $CARGO_TARGET_DIR holds an emulator libcuda.so; set GPU_CHECK_TARGET_DIR elsewhere" >&2
  exit 1
fi

if [ "${1:-}" = bench ]; then
  shift
  bench_venv=${TORCH_BENCH_VENV:-.cache/torch-bench-venv}
  if [ ! -f "$bench_venv/.installed-torch-2.13.0" ]; then
    rm -rf "$bench_venv"
    python3 -m venv "$bench_venv" &&
      "$bench_venv/bin/pip" install --quiet --disable-pip-version-check torch==2.13.0 &&
      touch "$bench_venv/.installed-torch-2.13.0" || exit 1
  fi
  # torch-sys links the venv's libtorch (LIBTORCH_USE_PYTORCH); kiln's side keeps the pinned
  # cuBLAS/cuDNN on LD_LIBRARY_PATH.
  export PATH="$PWD/$bench_venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
  passes=()
  for pass in $(seq "${PASSES:-3}"); do
    rm -rf "$CARGO_TARGET_DIR/criterion"
    cargo bench --features libtorch --bench cuda -- --noplot "$@" || exit 1
    rm -rf "$CARGO_TARGET_DIR/criterion-pass$pass"
    cp -r "$CARGO_TARGET_DIR/criterion" "$CARGO_TARGET_DIR/criterion-pass$pass"
    passes+=("$CARGO_TARGET_DIR/criterion-pass$pass")
  done
  python3 scripts/bench/ratios.py "${passes[@]}"
  exit
fi

failed=()
run() {
  local name=$1
  shift
  echo
  echo "== $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

# A test run must not have been skipped for want of a device or a library.
no_skips() {
  local log
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  if grep -q '^skipped:' "$log"; then
    echo "gpu-check: tests were skipped (see 'skipped:' above)" >&2
    rc=1
  fi
  rm -f "$log"
  return "$rc"
}

# A run with cuDNN's graph API on must not have fallen back from it (nor skipped tests).
graph_served() {
  local log
  log=$(mktemp)
  no_skips env KILN_CUDNN_GRAPH=1 "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  if grep -q 'cuDNN graph API not used' "$log"; then
    echo "gpu-check: cuDNN's graph API fell back (see 'cuDNN graph API not used' above)" >&2
    rc=1
  fi
  # The conv+genstats graph (BN statistics from the convolution) must have served too.
  if grep -q 'conv+genstats not used' "$log"; then
    echo "gpu-check: cuDNN's conv+genstats graph fell back (see 'conv+genstats not used' above)" >&2
    rc=1
  fi
  rm -f "$log"
  return "$rc"
}

conformance=(cargo test -p kiln-engine --release --test cuda_conformance)
run "conformance, cuBLAS/cuDNN on" no_skips "${conformance[@]}"
run "conformance, built-in kernels (KILN_CUBLAS=0 KILN_CUDNN=0)" \
  no_skips env KILN_CUBLAS=0 KILN_CUDNN=0 "${conformance[@]}"
run "conformance, built-in SIMT kernels (KILN_CUBLAS=0 KILN_CUDNN=0 KILN_TENSOR_CORES=0)" \
  no_skips env KILN_CUBLAS=0 KILN_CUDNN=0 KILN_TENSOR_CORES=0 "${conformance[@]}"
run "tensor cores for f16/bf16 where the built-in kernels serve" \
  no_skips cargo test -p kiln-engine --release --test cuda_tensor_cores -- --nocapture
run "BN statistics from the tensor-core conv's epilogue against BN's own pass and the CPU" \
  no_skips cargo test -p kiln-engine --release --test cuda_conv_bn_stats -- --nocapture
run "BN apply + ReLU in the next tensor-core conv's prologue against BN then conv and the CPU" \
  no_skips cargo test -p kiln-engine --release --test cuda_conv_bn_prologue -- --nocapture
run "cuBLAS/cuDNN against the built-in kernels" \
  no_skips cargo test -p kiln-engine --release --test cuda_vendor -- --nocapture --test-threads 1
run "conformance, cuDNN graph API (KILN_CUDNN_GRAPH=1)" \
  graph_served "${conformance[@]}" -- --nocapture
run "cuDNN graph API against its legacy API and the built-in kernels (KILN_CUDNN_GRAPH=1)" \
  graph_served cargo test -p kiln-engine --release --test cuda_vendor -- --nocapture --test-threads 1

# A cuda_graph test run in which cuBLAS/cuDNN served inside the captures (the tests print
# "libraries serve: true|false" next to the vendor calls they counted and asserted).
vendor_graphs() {
  local log
  log=$(mktemp)
  no_skips "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  if ! grep -q 'libraries serve: true' "$log" || grep -q 'libraries serve: false' "$log"; then
    echo "gpu-check: cuBLAS/cuDNN did not serve inside the captured graphs (see 'libraries serve' above)" >&2
    rc=1
  fi
  rm -f "$log"
  return "$rc"
}

graph_tests=(--release --test cuda_graph -- --nocapture --test-threads 1)
run "CUDA graphs with cuBLAS/cuDNN calls replay eager's bits (engine)" \
  vendor_graphs cargo test -p kiln-engine "${graph_tests[@]}"
run "--cuda-graph with cuBLAS/cuDNN trains to eager's bits (trainer)" \
  vendor_graphs cargo test -p kiln-train "${graph_tests[@]}"
run "--cuda-graph with cuDNN's graph API (KILN_CUDNN_GRAPH=1)" \
  vendor_graphs graph_served cargo test -p kiln-train "${graph_tests[@]}"

gpus=$(nvidia-smi -L | grep -c '^GPU')
echo
echo "== NCCL over this machine's $gpus GPU(s)$([ "$gpus" = 1 ] && echo ' (world size 1: one GPU)')"
run "NCCL collectives and a DDP step (train/tests/nccl_gpu.rs)" \
  no_skips cargo test -p kiln-train --features nccl --release --test nccl_gpu -- --nocapture --test-threads 1
if [ "$gpus" -ge 2 ]; then
  run "2 GPUs through NCCL match 1 of twice the batch (tests/dist_devices.rs)" \
    no_skips cargo test -p kiln --features nccl --release --test dist_devices -- --nocapture
fi

# `kiln train` with --cuda-graph $1 (on|off), cuBLAS/cuDNN on: epoch 2's img/s (epoch 1 holds the
# warm-up and the capture). With `on`, empty unless the update was captured with vendor calls in
# it and nothing fell back to eager updates.
cuda_graph_rate() {
  local log rate runs
  log=$(mktemp)
  runs=$(mktemp -d)
  cargo run --release --bin kiln -- train --device cuda --cuda-graph "$1" --epochs 2 -j 8 \
    --output "$runs" >"$log" 2>&1
  cat "$log" >&2
  rate=$(sed -n 's/.*Epoch [0-9]*: train_loss [^,]*, \([0-9.]*\) img\/s.*/\1/p' "$log" | tail -1)
  if [ "$1" = on ] && { ! grep -Eq 'CUDA graph: captured .* [1-9][0-9]* cuBLAS/cuDNN calls' "$log" ||
    grep -q 'cuda-graph: eager updates' "$log"; }; then
    echo "gpu-check: --cuda-graph on did not capture cuBLAS/cuDNN calls (or fell back)" >&2
    rate=""
  fi
  rm -rf "$log" "$runs"
  echo "$rate"
}

echo
echo "== kiln train resnet18 (Fashion-MNIST subset, batch 64): --cuda-graph on vs off, cuBLAS/cuDNN on"
graph_on=$(cuda_graph_rate on)
graph_off=$(cuda_graph_rate off)
[ -n "$graph_on" ] && [ -n "$graph_off" ] || failed+=("kiln train --cuda-graph on/off")

kiln_rate() {
  cargo run --release --example train_step -- "$@" | tee /dev/stderr | sed -n 's/^img\/s: //p'
}

echo
echo "== resnet50 training step, batch 64, 224x224, channels-last, AMP float16"
kiln=$(kiln_rate --model resnet50 --batch 64 --img-size 224 --amp-dtype float16)
kiln_builtin=$(KILN_CUBLAS=0 KILN_CUDNN=0 kiln_rate --model resnet50 --batch 64 --img-size 224 --amp-dtype float16)
# The built-in path's BN fusions (epilogue statistics, prologue apply + ReLU) off: do they pay here?
kiln_unfused=$(KILN_CUBLAS=0 KILN_CUDNN=0 KILN_CONV_BN_STATS=0 KILN_CONV_BN_PROLOGUE=0 \
  kiln_rate --model resnet50 --batch 64 --img-size 224 --amp-dtype float16)
[ -n "$kiln" ] && [ -n "$kiln_builtin" ] || failed+=("kiln train_step")

# The graph API's rate, with the plans of a fresh cache folder: timed on the first run, reloaded
# on the second; a fallback to the legacy API fails the check.
plan_cache=$(mktemp -d)
graph_rate() {
  local log rate
  log=$(mktemp)
  rate=$(KILN_CUDNN_GRAPH=1 KILN_CACHE_DIR="$plan_cache" kiln_rate \
    --model resnet50 --batch 64 --img-size 224 --amp-dtype float16 2>"$log")
  cat "$log" >&2
  if grep -q 'cuDNN graph API not used' "$log"; then
    rate=""
  fi
  rm -f "$log"
  echo "$rate"
}
kiln_graph=$(graph_rate)
kiln_graph_cached=$(graph_rate)
ls -l "$plan_cache" >&2
[ -n "$kiln_graph" ] && [ -n "$kiln_graph_cached" ] || failed+=("kiln train_step, cuDNN graph API")

torch=""
if [ -z "${NO_TORCH:-}" ]; then
  venv=.cache/torch-venv
  torch_spec=${TORCH_SPEC:-torch==2.15.0}
  timm_spec=${TIMM_SPEC:-timm==1.0.31}
  if [ ! -f "$venv/.installed-$torch_spec-$timm_spec" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" &&
      "$venv/bin/pip" install --quiet --disable-pip-version-check "$torch_spec" "$timm_spec" &&
      touch "$venv/.installed-$torch_spec-$timm_spec" || failed+=("PyTorch venv")
  fi
  if [ -f "$venv/.installed-$torch_spec-$timm_spec" ]; then
    # PyTorch brings its own CUDA libraries: run it on the caller's library path.
    torch=$(env LD_LIBRARY_PATH="$orig_library_path" "$venv/bin/python" scripts/bench/torch_train_step.py \
      --model resnet50 --batch 64 --img-size 224 --amp-dtype float16 | tee /dev/stderr |
      sed -n 's/^img\/s: //p')
    [ -n "$torch" ] || failed+=("PyTorch train step")
  fi
fi

echo
echo "== summary"
printf '%-44s %10s img/s\n' "kiln (cuBLAS/cuDNN)" "${kiln:-n/a}" \
  "kiln (cuDNN graph API, timing run)" "${kiln_graph:-n/a}" \
  "kiln (cuDNN graph API, cached plans)" "${kiln_graph_cached:-n/a}" \
  "kiln (built-in kernels)" "${kiln_builtin:-n/a}" "PyTorch (libtorch CUDA)" "${torch:-n/a}" \
  "kiln train resnet18 28x28, --cuda-graph on" "${graph_on:-n/a}" \
  "kiln train resnet18 28x28, --cuda-graph off" "${graph_off:-n/a}"
if [ -n "$graph_on" ] && [ -n "$graph_off" ]; then
  awk -v a="$graph_on" -v b="$graph_off" 'BEGIN { printf "--cuda-graph on / off: %.2fx\n", a / b }'
fi
if [ -n "$kiln" ] && [ -n "$torch" ]; then
  awk -v k="$kiln" -v t="$torch" 'BEGIN { printf "kiln / PyTorch: %.2fx\n", k / t }'
fi
if [ -n "$kiln_graph_cached" ] && [ -n "$torch" ]; then
  awk -v k="$kiln_graph_cached" -v t="$torch" 'BEGIN { printf "kiln graph API / PyTorch: %.2fx\n", k / t }'
fi
if [ -n "$kiln_builtin" ] && [ -n "$kiln_unfused" ]; then
  awk -v f="$kiln_builtin" -v u="$kiln_unfused" 'BEGIN { printf "built-in BN fusions on / off: %.2fx\n", f / u }'
fi
if [ -n "$kiln_builtin" ] && [ -n "$torch" ]; then
  awk -v k="$kiln_builtin" -v t="$torch" 'BEGIN { printf "kiln built-in / PyTorch: %.2fx\n", k / t }'
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all GPU checks passed"
