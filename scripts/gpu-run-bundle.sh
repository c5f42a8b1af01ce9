#!/usr/bin/env bash
# Runs what scripts/gpu-bundle.sh built (.gpu/bin) on a GPU machine that has no Rust toolchain but
# has python3 with NVIDIA's wheels (nvidia-cuda-nvrtc, nvidia-cublas, nvidia-cudnn, nvidia-nccl-cu13; a PyTorch
# environment has them, and timm for the bench's PyTorch side).
#   scripts/gpu-run-bundle.sh [STEP...]   steps: kernels conf conf_builtin conf_simt conf_graph tc
#                                         conv_bn vendor vendor_graph memory resnet amp train
#                                         cuda_graph nccl bench bench_graph bench_cuda_graph
#                                         criterion (default: all); logs go to $OUT (/tmp/gpu-logs)
# The *_graph steps run with cuDNN's graph API on (KILN_CUDNN_GRAPH=1); the summary counts the
# lines where it fell back to the legacy API ("cuDNN graph API not used") or where its conv+genstats
# graph did not serve ("conv+genstats not used"), which should be none.
# cuda_graph runs the CUDA-graph tests with cuBLAS/cuDNN on (they assert vendor calls in the
# captured graphs and eager's bits from the replays; "libraries serve: false" in a log means the
# libraries did not load, a failure here). bench_cuda_graph trains resnet18 on the embedded
# Fashion-MNIST subset for 2 epochs with --cuda-graph on and off and prints epoch 2's img/s.
# criterion runs benches/cuda.rs, kiln's side only (no libtorch twins here: scripts/gpu-check.sh
# bench has them), and prints criterion's times.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-logs}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || exit 1
# Compile-time paths in the binaries (the kiln binary, data/) point into the build checkout.
build_root=$(cat .gpu/build-root)
if [ "$build_root" != "$PWD" ] && [ ! -e "$build_root" ]; then
  mkdir -p "$(dirname "$build_root")" && ln -s "$PWD" "$build_root"
fi
mkdir -p target/release && cp .gpu/bin/kiln target/release/kiln

# cudarc opens unversioned names (libcudnn.so) first: link them to the wheels' libraries so that a
# system-wide install of another version cannot shadow them.
site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
links=$(mktemp -d)
for f in "$site"/nvidia/*/lib/lib*.so.[0-9]*; do
  b=$(basename "$f")
  ln -sfn "$f" "$links/${b%%.so.*}.so"
done
export LD_LIBRARY_PATH="$links:$(printf '%s\n' "$site"/nvidia/*/lib | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KILN_CACHE_DIR=${KILN_CACHE_DIR:-/tmp/kiln-cache}

bin=.gpu/bin
summary=()
step() { # name timeout command...
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  local tests skips fallbacks
  tests=$(awk '/^test result:/ {p += $4; f += $6} END {print p + 0 " passed, " f + 0 " failed"}' "$out/$name.log")
  skips=$(grep -c 'skipped:' "$out/$name.log")
  fallbacks=$(grep -c 'cuDNN graph API not used\|conv+genstats not used' "$out/$name.log")
  summary+=("$(printf '%-24s rc=%-4s %4ss  %s, %s skipped, %s graph fallbacks' "$name" "$rc" $((SECONDS - start)) "$tests" "$skips" "$fallbacks")")
  [ "$rc" -eq 0 ] || grep -E 'panicked|FAILED' -A2 "$out/$name.log" | head -20
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(kernels conf conf_builtin conf_simt conf_graph tc conv_bn vendor vendor_graph memory resnet amp train cuda_graph nccl bench bench_graph bench_cuda_graph criterion)
bench_args=(--model resnet50 --batch 64 --img-size 224 --amp-dtype float16)
for s in "${steps[@]}"; do
  case $s in
  kernels)
    for t in amp bn_relu conv elementwise gemm gemm_tc layout optim pool reduce rng softmax_xent compile; do
      step "kernels_$t" 300 "$bin/$t"
    done
    ;;
  conf) step conf 300 "$bin/cuda_conformance" ;;
  conf_builtin) step conf_builtin 300 env KILN_CUBLAS=0 KILN_CUDNN=0 "$bin/cuda_conformance" ;;
  conf_simt) step conf_simt 300 env KILN_CUBLAS=0 KILN_CUDNN=0 KILN_TENSOR_CORES=0 "$bin/cuda_conformance" ;;
  conf_graph) step conf_graph 300 env KILN_CUDNN_GRAPH=1 "$bin/cuda_conformance" --nocapture ;;
  tc) step tensor_cores 120 "$bin/cuda_tensor_cores" --nocapture ;;
  conv_bn)
    step conv_bn_stats 120 "$bin/cuda_conv_bn_stats" --nocapture
    step conv_bn_prologue 120 "$bin/cuda_conv_bn_prologue" --nocapture
    ;;
  vendor) step vendor 300 "$bin/cuda_vendor" --nocapture --test-threads 1 ;;
  vendor_graph) step vendor_graph 300 env KILN_CUDNN_GRAPH=1 "$bin/cuda_vendor" --nocapture --test-threads 1 ;;
  memory) step memory 120 "$bin/cuda_memory" ;;
  resnet) step resnet 300 "$bin/cuda_resnet" ;;
  amp) step amp_optim 120 "$bin/amp_optim" ;;
  train) step train_cuda 300 "$bin/train_cuda" ;;
  cuda_graph)
    step graph_engine 300 "$bin/engine_cuda_graph" --nocapture --test-threads 1
    step graph_train 300 "$bin/train_cuda_graph" --nocapture --test-threads 1
    step graph_train_cudnn_graph 300 env KILN_CUDNN_GRAPH=1 "$bin/train_cuda_graph" --nocapture --test-threads 1
    for log in "$out"/graph_engine.log "$out"/graph_train.log "$out"/graph_train_cudnn_graph.log; do
      if ! grep -q 'libraries serve: true' "$log" || grep -q 'libraries serve: false' "$log"; then
        summary+=("$(basename "$log" .log): cuBLAS/cuDNN did NOT serve inside the captures")
      fi
    done
    grep -H 'cuBLAS/cuDNN calls' "$out"/graph_*.log
    ;;
  nccl) step nccl 300 "$bin/nccl_gpu" --nocapture --test-threads 1 ;;
  bench)
    step bench_kiln 240 "$bin/train_step" "${bench_args[@]}"
    step bench_kiln_builtin 240 env KILN_CUBLAS=0 KILN_CUDNN=0 "$bin/train_step" "${bench_args[@]}"
    # The BN fusions of the built-in path (statistics in the conv's epilogue, BN apply + ReLU in
    # the next conv's prologue) switched off, to tell whether they pay on this GPU.
    step bench_kiln_builtin_unfused 240 env KILN_CUBLAS=0 KILN_CUDNN=0 KILN_CONV_BN_STATS=0 \
      KILN_CONV_BN_PROLOGUE=0 "$bin/train_step" "${bench_args[@]}"
    step bench_torch 240 python3 scripts/bench/torch_train_step.py "${bench_args[@]}"
    grep -H 'img/s' "$out"/bench_*.log
    ;;
  bench_graph)
    # A fresh plan cache: the first run times every plan and records the fastest, the second
    # reloads them.
    plans=$(mktemp -d)
    for run in timed cached; do
      step "bench_kiln_graph_$run" 600 env KILN_CUDNN_GRAPH=1 KILN_CACHE_DIR="$plans" \
        "$bin/train_step" "${bench_args[@]}"
    done
    ls -l "$plans"
    grep -H 'img/s' "$out"/bench_kiln_graph_*.log
    ;;
  bench_cuda_graph)
    # Epoch 1 holds the warm-up and the capture; epoch 2 is the rate. The `on` log must show a
    # capture with cuBLAS/cuDNN calls and no "eager updates" fallback.
    for mode in on off; do
      runs=$(mktemp -d)
      step "bench_cuda_graph_$mode" 600 target/release/kiln train --device cuda --cuda-graph "$mode" \
        --epochs 2 -j 8 --output "$runs"
      rm -rf "$runs"
    done
    grep -H 'CUDA graph: captured\|cuda-graph: eager updates' "$out"/bench_cuda_graph_on.log
    grep -H 'Epoch [0-9]*: train_loss' "$out"/bench_cuda_graph_*.log
    ;;
  criterion)
    step bench_criterion 600 "$bin/bench_cuda" --bench --noplot
    grep -H -A1 '^cuda_' "$out"/bench_criterion.log
    ;;
  *) echo "unknown step $s" >&2 ;;
  esac
done
printf '%s\n' "${summary[@]}"
