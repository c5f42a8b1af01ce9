#!/usr/bin/env bash
# kiln's GPU acceptance in one command that cannot quietly pass (issue 35).
#
#   scripts/gpu-accept.sh build                 here (cargo): every CUDA test binary, `kiln`,
#                                               examples/train_step and nccl_gpu, stripped and
#                                               packed into .gpu/bundle.tar.xz (git-ignored)
#   scripts/gpu-accept.sh run [--budget S]      there (no cargo): unpacks the bundle, times the
#        [--bench-budget S] [--rows R] [--quick]  training steps first (scripts/bench/pairs.py),
#                                               then runs every test step; prints one table; exits
#                                               1 on any failure, timeout, unasked skip or fallback
#                                               (--quick: the step table alone, in 4 minutes)
#        [--only REGEX]                         only the steps whose names match
#   scripts/gpu-accept.sh shell 'COMMAND'       there: unpacks and sets the library paths as
#                                               `run` does, then runs COMMAND (ncu, ad hoc runs)
#   scripts/gpu-accept.sh dry-run [--plant-failure]
#                                               here, on kiln-cuda-emu (CI): every step, each
#                                               test binary with its first test, the kiln benches
#                                               one tiny step each (no PyTorch, no vendor
#                                               libraries); --plant-failure adds a failing and a
#                                               skipping step, which must fail the run
#
# The bundle plus the tracked tree must fit the 64 MiB a GPU machine is sent (`build` checks).
# On the GPU machine the libraries come from the PyTorch environment's NVIDIA wheels wherever pip
# put them (nvidia/*/lib, the cu13 layout included); NVRTC 12 or 13, whichever is there.
#
# Steps, the benches first, alone on an idle GPU (pairs.py logs any other process on it), then the
# tests (several processes at once: they check results, not speed):
#   * the training-step table (scripts/bench/pairs.py): kiln eager and --cuda-graph against
#     PyTorch eager (fused SGD), torch.compile and a CUDA-graphed step, each side a warm server
#     asked for rounds of >= 3 s in shuffled order, 4 pairs after a dropped first pass, for
#     resnet50, efficientnet_b0, mobilenetv3_large_100, convnext_tiny (batch 128), vit_base and
#     swin_tiny (batch 64), a batch-2 host probe, AMP bf16 then f16, as far as --bench-budget
#     goes (the rest is said not run; --rows picks rows for a later call); resnet50 batch 64 on
#     kiln's built-in kernels alone and on cuDNN's legacy API;
#   * every CUDA test binary with cuBLAS/cuDNN on, then again with them off (KILN_CUBLAS=0
#     KILN_CUDNN=0; skips that the switch causes are asked for), the SIMT kernels alone
#     (KILN_TENSOR_CORES=0) on the conformance suite, cuDNN's legacy API alone (KILN_CUDNN_GRAPH=0)
#     on the conformance, vendor and CUDA-graph suites; with the vendor libraries on, any "cuDNN
#     graph API not used" or "conv+genstats not used" line is a fallback and fails the step;
#   * the CUDA-graph tests must report "libraries serve: true" (vendor calls inside captures);
#   * NCCL at world size 1 (two ranks on one GPU: NCCL refuses one GPU twice in a communicator,
#     said in the table); the two-device tests where two GPUs exist, else said.
# Logs go to $OUT (or /tmp/gpu-accept): summary.txt and logs.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-}
shift || true

die() {
  echo "gpu-accept: $*" >&2
  exit 2
}

# --- build (here) ---------------------------------------------------------------------------
# Test binaries that exercise CUDA; cuda_traffic and cuda_amp_launches read the emulator's
# counters only and nccl_fallback checks the machines without NCCL, so they stay here.
gpu_tests="checkpoint cuda_conformance cuda_conv_bn_prologue cuda_conv_bn_stats cuda_devices
  cuda_graph cuda_memory cuda_tensor_cores cuda_vendor cuda_builder_layers cuda_rope_swiglu cuda_resnet drop_block
  model_dtype amp_optim clip_timm loss_timm optim_timm train_cuda nccl_gpu"

build() {
  rm -rf .gpu/bin .gpu/bundle.tar.xz
  mkdir -p .gpu/bin
  {
    # The workspace's test build also links `kiln` (for the CLI tests) and the examples, with
    # the same features: a separate `cargo build -p kiln` would compile every crate again.
    cargo test --release --no-run --workspace --message-format=json
    cargo test --release --no-run -p kiln-train --features nccl --test nccl_gpu --message-format=json
  } | GPU_TESTS="$gpu_tests" python3 -c '
import json, os, shutil, sys
wanted = set(os.environ["GPU_TESTS"].split())
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    t, pkg = m["target"], m["package_id"]
    name = t["name"]
    crate = "kernels" if "kiln-kernels" in pkg else "train" if "kiln-train" in pkg else \
        "nn" if "kiln-nn" in pkg else "engine" if "kiln-engine" in pkg else "kiln"
    if t["kind"] == ["test"] and (crate == "kernels" or name in wanted):
        shutil.copy(m["executable"], f".gpu/bin/test-{crate}-{name}")
    elif not m["profile"]["test"] and name in ("kiln", "train_step"):
        shutil.copy(m["executable"], ".gpu/bin/" + name)
' || die "cargo build failed"
  for exe in kiln train_step test-nn-cuda_resnet; do
    [ -x ".gpu/bin/$exe" ] || die "the build made no $exe"
  done
  strip .gpu/bin/*
  pwd >.gpu/bin/build-root
  git describe --always --dirty >.gpu/bin/commit
  # -9: its 64 MiB dictionary spans whole binaries, which share most of their code (engine, nn,
  # train): 24.6 MB where -6 gave 37.6 MB on 2026-11-29, about four minutes on two cores.
  tar -C .gpu -cf - bin | xz -T0 -9 >.gpu/bundle.tar.xz
  rm -rf .gpu/bin
  local bundle tree limit=$((64 * 1024 * 1024))
  bundle=$(stat -c %s .gpu/bundle.tar.xz)
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null |
    awk '{s += $1} END {print s + 0}')
  echo "bundle $((bundle / 1024)) KiB + tree $((tree / 1024)) KiB of $((limit / 1024)) KiB"
  [ $((bundle + tree)) -le $limit ] || die "the bundle and the tree exceed 64 MiB"
}

# --- run (there) ----------------------------------------------------------------------------
out=${OUT:-/tmp/gpu-accept}
budget=570
bench_budget=300
rows=""
quick=0
dry=0
plant=0
only=.*
parse_run_flags() {
  while [ $# -gt 0 ]; do
    case $1 in
    --budget) budget=$2 && shift ;;
    --bench-budget) bench_budget=$2 && shift ;;
    --rows) rows=$2 && shift ;;
    --quick) quick=1 && budget=240 && bench_budget=230 ;;
    --plant-failure) plant=1 ;;
    --only) only=$2 && shift ;;
    *) die "unknown flag $1" ;;
    esac
    shift
  done
}

# Library folders of the NVIDIA wheels next to the machine's PyTorch (or any python3).
wheel_libs() {
  python3 - <<'EOF'
import glob, os, site, sys
roots = set(site.getsitepackages() + [site.getusersitepackages()])
try:
    import torch
    roots.add(os.path.dirname(os.path.dirname(torch.__file__)))
except Exception:
    pass
dirs = sorted({d for r in roots for d in glob.glob(os.path.join(r, "nvidia", "*", "lib"))})
print(":".join(dirs))
EOF
}

setup_gpu_env() {
  local libs links
  libs=$(wheel_libs)
  [ -n "$libs" ] || echo "gpu-accept: no NVIDIA wheels next to python3's packages" >&2
  # cudarc opens unversioned names (libcudnn.so) first: link them to the wheels' libraries so
  # that a system-wide install of another version cannot shadow them.
  links=$(mktemp -d)
  local d f b
  for d in ${libs//:/ }; do
    for f in "$d"/lib*.so.[0-9]*; do
      [ -e "$f" ] || continue
      b=$(basename "$f")
      ln -sfn "$f" "$links/${b%%.so.*}.so"
    done
  done
  export LD_LIBRARY_PATH="$links:$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

unpack() {
  [ -f .gpu/bundle.tar.xz ] || die "no .gpu/bundle.tar.xz: run scripts/gpu-accept.sh build first"
  rm -rf .gpu/bin && xz -dc .gpu/bundle.tar.xz | tar -C .gpu -xf - || die "bundle unpack failed"
  # Compile-time paths in the binaries (fixtures, data/) point into the build checkout.
  local build_root
  build_root=$(cat .gpu/bin/build-root)
  if [ "$build_root" != "$PWD" ] && [ ! -e "$build_root" ]; then
    mkdir -p "$(dirname "$build_root")" && ln -s "$PWD" "$build_root"
  fi
  # tests/train_cuda.rs runs the `kiln` binary where cargo built it.
  mkdir -p target/release && cp .gpu/bin/kiln target/release/kiln
}

# Each step leaves $out/<name>.row, a line of the table; a row without " ok " is a failure.
deadline=0
failures() { grep -L ' ok ' "$out"/*.row 2>/dev/null | wc -l; }

# Judges a finished step from its log: $1 name, $2 rc, $3 seconds, $4 skips allowed (0/1).
judge() {
  local name=$1 rc=$2 secs=$3 skips_ok=$4 log="$out/$1.log" verdict=ok
  local passed failed skips fallbacks
  passed=$(awk '/^test result:/ {p += $4} END {print p + 0}' "$log")
  failed=$(awk '/^test result:/ {f += $6} END {print f + 0}' "$log")
  skips=$(grep -c '^skipped' "$log")
  fallbacks=$(grep -c 'cuDNN graph API not used\|conv+genstats not used' "$log")
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    verdict=TIMEOUT
  elif [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
    verdict=FAILED
  elif [ "$passed" -eq 0 ]; then
    verdict=NO-TESTS-RAN
  elif [ "$skips" -ne 0 ] && [ "$skips_ok" -eq 0 ]; then
    verdict=SKIPPED
  elif [ "$fallbacks" -ne 0 ] && [[ $name != *_legacy && $name != *_off ]] && [ $dry -eq 0 ]; then
    verdict=FALLBACK
  elif [[ $name == cuda_graph* ]] && [ $dry -eq 0 ] && [[ $name != *off ]] &&
    { ! grep -q 'libraries serve: true' "$log" || grep -q 'libraries serve: false' "$log"; }; then
    verdict=NO-VENDOR-IN-CAPTURE
  fi
  printf '%-34s %-22s %5ss %4s passed %3s failed %3s skipped\n' "$name" "$verdict" "$secs" \
    "$passed" "$failed" "$skips" >"$out/$name.row"
}

# The test steps: "name|skips-allowed|env ...|binary [args]" (binary relative to .gpu/bin).
test_steps() {
  local off="KILN_CUBLAS=0 KILN_CUDNN=0" legacy="KILN_CUDNN_GRAPH=0" vendor_skips=0 t
  # On the emulator the vendor libraries cannot load: their skips are the expected ones there.
  [ $dry -eq 1 ] && vendor_skips=1
  local serial="--test-threads 1 --nocapture"
  # The slowest steps first, so that a tight --budget cuts short ones (kernels_compile: NVRTC of
  # every .cu for two architectures, about a minute on an H200).
  echo "kernels_compile|0||test-kernels-compile --nocapture"
  echo "cuda_vendor|$vendor_skips||test-engine-cuda_vendor $serial"
  echo "cuda_vendor_legacy|$vendor_skips|$legacy|test-engine-cuda_vendor $serial"
  echo "cuda_conformance_legacy|$vendor_skips|$legacy|test-engine-cuda_conformance"
  echo "cuda_graph_engine|$vendor_skips||test-engine-cuda_graph $serial"
  echo "cuda_graph_train|$vendor_skips||test-train-cuda_graph $serial"
  echo "cuda_graph_train_legacy|$vendor_skips|$legacy|test-train-cuda_graph $serial"
  echo "cuda_graph_engine_off|1|$off|test-engine-cuda_graph $serial"
  echo "cuda_graph_train_off|1|$off|test-train-cuda_graph $serial"
  echo "cuda_conformance_simt|1|$off KILN_TENSOR_CORES=0|test-engine-cuda_conformance"
  echo "nccl_gpu|$vendor_skips||test-train-nccl_gpu $serial"
  # Two devices: on a one-GPU machine (and the emulator) the test says "skipped".
  echo "cuda_devices|1||test-engine-cuda_devices"
  echo "cuda_memory|$vendor_skips||test-engine-cuda_memory"
  # Each suite with the vendor libraries (their fallback lines need --nocapture to reach the
  # log), then on kiln's own kernels (the skips that switch causes are asked for).
  for t in engine-cuda_conformance engine-cuda_conv_bn_prologue engine-cuda_conv_bn_stats \
    engine-cuda_tensor_cores engine-checkpoint nn-cuda_builder_layers nn-cuda_rope_swiglu nn-cuda_resnet \
    nn-drop_block nn-model_dtype train-amp_optim train-clip_timm train-loss_timm \
    train-optim_timm kiln-train_cuda; do
    echo "${t#*-}|$vendor_skips||test-$t --nocapture"
    echo "${t#*-}_off|1|$off|test-$t"
  done
  for t in .gpu/bin/test-kernels-*; do
    t=$(basename "$t")
    [ "$t" != test-kernels-compile ] || continue
    echo "kernels_${t#test-kernels-}|0||$t --nocapture"
  done
  # The dry run proves a failing test fails the whole run.
  if [ $plant -eq 1 ]; then
    echo "planted_failure|0||planted:fail"
    echo "planted_skip|0||planted:skip"
  fi
  return 0
}

# Runs one test step (a line of test_steps) under the deadline.
run_test_step() {
  local line=$1 name skips_ok envs cmd limit start rc
  IFS='|' read -r name skips_ok envs cmd <<<"$line"
  # A hung test holds its slot for at most 200 s.
  limit=$((deadline - $(date +%s)))
  [ $limit -le 200 ] || limit=200
  if [ $limit -le 5 ]; then
    echo "not started: the run's budget was spent" >"$out/$name.log"
    judge "$name" 124 0 "$skips_ok"
    return
  fi
  start=$(date +%s)
  local argv
  read -ra argv <<<"$cmd"
  if [ "$cmd" = planted:fail ]; then
    # The dry run's planted failures: a step whose test fails, and one whose test skips.
    echo "test result: FAILED. 0 passed; 1 failed;" && false
  elif [ "$cmd" = planted:skip ]; then
    printf 'skipped: planted\ntest result: ok. 1 passed; 0 failed;\n'
  else
    local listed=""
    if [ "$dry" -eq 1 ]; then
      # On the emulator each binary runs its first test only (the suite runs them all): the dry
      # run proves the bundle, the environment and the verdicts, not the kernels again. The
      # whole-model binaries and those whose first test takes minutes there only list their tests.
      listed=$(".gpu/bin/${argv[0]}" --list 2>/dev/null | sed -n 's/: test$//p')
      if [[ $name =~ ^(cuda_resnet|train_cuda|kernels_attention|cuda_conv_bn_prologue|cuda_graph) ]]; then
        argv=("${argv[0]}" --list)
      else
        argv+=(--exact "$(head -1 <<<"$listed")")
        listed=""
      fi
    fi
    # shellcheck disable=SC2086
    timeout -k 5 "$limit" env $envs ".gpu/bin/${argv[0]}" "${argv[@]:1}"
    rc=$?
    [ -z "$listed" ] || echo "test result: ok. $(wc -l <<<"$listed") passed; 0 failed; (listed only)"
    (exit $rc)
  fi >"$out/$name.log" 2>&1
  rc=$?
  judge "$name" "$rc" $(($(date +%s) - start)) "$skips_ok"
}

# A training-step bench: $1 name, $2 timeout, then the command. Prints the median img/s.
bench() {
  local name=$1 limit=$2 start rc rate
  shift 2
  if ! [[ $name =~ ^($only)$ ]]; then
    echo 0
    return
  fi
  local left=$((deadline - $(date +%s)))
  [ "$limit" -le $left ] || limit=$left
  if [ "$limit" -le 5 ]; then
    echo "not started: the run's budget was spent" >"$out/$name.log"
    printf '%-34s %-22s\n' "$name" "TIMEOUT" >"$out/$name.row"
    echo 0
    return
  fi
  start=$(date +%s)
  timeout -k 5 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  rate=$(awk '/^img\/s:/ {print $2}' "$out/$name.log" | tail -1)
  local secs=$(($(date +%s) - start))
  if [ $rc -ne 0 ] || [ -z "$rate" ]; then
    printf '%-34s %-22s %5ss\n' "$name" "$([ $rc -eq 124 ] && echo TIMEOUT || echo FAILED)" \
      $secs >"$out/$name.row"
    rate=0
  elif grep -q 'cuDNN graph API not used\|conv+genstats not used' "$out/$name.log" &&
    [[ $name != *_legacy && $name != *builtin* ]] && [ $dry -eq 0 ]; then
    printf '%-34s %-22s %5ss %10s img/s\n' "$name" FALLBACK $secs "$rate" >"$out/$name.row"
  else
    printf '%-34s %-22s %5ss %10s img/s\n' "$name" ok $secs "$rate" >"$out/$name.row"
  fi
  echo "$rate"
}


# The training-step table: pairs.py's servers on the GPU (kiln alone on the emulator, one tiny
# row, to prove the plumbing: no PyTorch on CI).
pairs_table() {
  local name=bench_pairs start rc
  [[ $name =~ ^($only)$ ]] || return 0
  start=$(date +%s)
  local args=(--kiln .gpu/bin/train_step --out "$out/pairs" --commit "$(cat .gpu/bin/commit)")
  if [ $dry -eq 1 ]; then
    args+=(--rows lcnet_050:2 --amp float16 --img-size 32 --pairs 1 --seconds 0 --warmup 0)
  else
    args+=(--torch "python3 scripts/bench/torch_train_step.py" --budget "$bench_budget")
    [ -z "$rows" ] || args+=(--rows "$rows")
  fi
  timeout -k 10 $((bench_budget + 120)) python3 scripts/bench/pairs.py "${args[@]}" >"$out/$name.log" 2>&1
  rc=$?
  local verdict=ok
  [ $rc -eq 0 ] || verdict=$([ $rc -eq 124 ] && echo TIMEOUT || echo FAILED)
  printf '%-34s %-22s %5ss\n' "$name" "$verdict" $(($(date +%s) - start)) >"$out/$name.row"
}

run() {
  mkdir -p "$out"
  rm -rf "$out"/*.row "$out"/*.log "$out/pairs"
  local end=$(($(date +%s) + budget))
  local gpus=0
  if [ $dry -eq 0 ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader |
      tee "$out/gpu.txt" || die "nvidia-smi failed: no GPU here"
    gpus=$(wc -l <"$out/gpu.txt")
    setup_gpu_env
  fi
  unpack
  export KILN_CACHE_DIR=${KILN_CACHE_DIR:-$(mktemp -d)}

  # Benches first: alone on the device, one after the other.
  deadline=$end
  pairs_table
  declare -A rate
  local bb=(--model resnet50 --batch 64 --amp-dtype float16 --img-size 224 --rounds 3 --steps 20 --warmup 5)
  if [ $dry -eq 0 ] && [ $quick -eq 0 ]; then
    rate[kiln_builtin]=$(bench bench_kiln_builtin_resnet50_b64 150 env KILN_CUBLAS=0 KILN_CUDNN=0 \
      .gpu/bin/train_step "${bb[@]}")
    rate[kiln_legacy]=$(bench bench_kiln_cudnn_legacy_resnet50_b64 150 env KILN_CUDNN_GRAPH=0 \
      .gpu/bin/train_step "${bb[@]}")
  fi

  if [ $quick -eq 0 ]; then
    export -f run_test_step judge
    export out deadline dry plant
    local jobs=6
    [ $dry -eq 1 ] && jobs=2
    test_steps | grep -E "^($only)\|" | tr '\n' '\0' | xargs -0 -P $jobs -I{} bash -c 'run_test_step "$1"' _ {}
  fi
  local failed
  failed=$(failures)

  {
    echo "kiln GPU acceptance, $(date -u +%F) commit $(cat .gpu/bin/commit)"
    [ $dry -eq 0 ] && echo "GPU: $(head -1 "$out/gpu.txt") ($gpus device(s))" || echo "dry run on kiln-cuda-emu"
    echo
    cat "$out"/*.row | sort
    echo
    [ -f "$out/pairs/pairs.md" ] && cat "$out/pairs/pairs.md" && echo
    if [ $dry -eq 0 ] && [ $quick -eq 0 ]; then
      echo "resnet50 batch 64, AMP f16, one kiln process each (no PyTorch pair):"
      echo "  kiln built-in kernels alone ${rate[kiln_builtin]} img/s; cuDNN legacy API ${rate[kiln_legacy]} img/s"
      [ "$gpus" -ge 2 ] || echo "  two devices: one GPU here, the two-device tests said skipped"
      echo "  NCCL: world size 1 (NCCL refuses two ranks on one GPU)"
    fi
    echo
    echo "failures: $failed"
  } | tee "$out/summary.txt"
  (cd "$out" && tar czf logs.tar.gz ./*.log ./*.row pairs 2>/dev/null && rm -rf ./*.log ./*.row pairs)
  [ "$failed" -eq 0 ]
}

case $mode in
build) build ;;
run)
  parse_run_flags "$@"
  run
  ;;
shell)
  setup_gpu_env
  unpack
  export KILN_CACHE_DIR=${KILN_CACHE_DIR:-$(mktemp -d)}
  bash -c "$1"
  ;;
dry-run)
  dry=1
  parse_run_flags "$@"
  run
  ;;
*) die "usage: scripts/gpu-accept.sh build | run [--budget S] [--bench-budget S] [--rows R] [--quick] | dry-run [--plant-failure]" ;;
esac
