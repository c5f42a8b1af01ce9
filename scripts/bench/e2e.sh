#!/usr/bin/env bash
# End to end: `kiln train` against timm's train.py on the same PNG ImageFolder, the same flags,
# alternating runs. Prints per model the median wall time and training img/s of each side and
# kiln's speed ratio (above 1 means kiln is faster).
#
# Usage: scripts/bench/e2e.sh TRAIN_PY [options] [-- FLAGS FOR BOTH]
#   TRAIN_PY          timm's train.py (it is in timm's repository, not in its wheel)
#   --python PY       a Python with torch and timm (default: python3)
#   --data DIR        an ImageFolder with train/ and validation/ (default: the Fashion-MNIST subset
#                     of data/ written as PNGs by scripts/bench/make-png-folder.py; for the full
#                     70,000 images: scripts/get-data.sh fashion-mnist, then
#                     scripts/bench/make-png-folder.py data/full/fashion-mnist)
#   --models "A B"    default: resnet18 resnet50 efficientnet_b0 mobilenetv3_large_100
#                     convnext_atto vit_tiny_patch16_224
#   --pairs N         alternating kiln/timm pairs per model (default 2)
#   FLAGS             train.py flags given to both (default: --epochs 1 -b 128 -j 2 --img-size 28
#                     --num-classes 10; timm's models otherwise keep 1000 classes)
# Training img/s is the batch size over the average update time of the last `Train:` log line,
# which both programs print in the same format; wall time covers start-up and validation too.
# Top-1 is the validation Acc@1 after the run (the last `Test:` line's average). Pair p runs
# both sides with --seed 42+p (a --seed in FLAGS wins), so several pairs give the seed-to-seed
# spread of each side's accuracy, printed after the table.
# Needs a release build of kiln (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/../.."
train_py=${1:?usage: scripts/bench/e2e.sh TRAIN_PY [--python PY] [--data DIR] [--models "A B"] [--pairs N] [-- FLAGS]}
shift
python=python3
data=
models="resnet18 resnet50 efficientnet_b0 mobilenetv3_large_100 convnext_atto vit_tiny_patch16_224"
pairs=2
flags=(--epochs 1 -b 128 -j 2 --img-size 28 --num-classes 10)
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --) shift; flags=("$@"); break ;;
    *) echo "e2e.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -f "$train_py" ] || { echo "e2e.sh: $train_py is not a file (fetch timm's repository for train.py)" >&2; exit 2; }
kiln=${CARGO_TARGET_DIR:-target}/release/kiln
[ -x "$kiln" ] || { echo "e2e.sh: $kiln is missing: cargo build --release" >&2; exit 2; }
[ -n "$data" ] || data=$("$python" scripts/bench/make-png-folder.py)
batch=128
for ((i = 0; i < ${#flags[@]}; i++)); do
  case "${flags[$i]}" in -b|--batch-size) batch=${flags[$((i + 1))]} ;; esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# One run: prints "<wall seconds> <train img/s> <top-1 %>"; the log goes to $out/<name>.log.
run() {
  local name=$1; shift
  local start end avg
  start=$(date +%s.%N)
  if ! "$@" > "$out/$name.log" 2>&1; then
    echo "e2e.sh: $name failed; its log:" >&2
    tail -20 "$out/$name.log" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  avg=$(grep '^Train:' "$out/$name.log" | tail -1 | sed -E 's/.*Time: +[0-9.]+s, +[0-9.]+\/s +\(([0-9.]+)s,.*/\1/')
  top1=$(grep '^Test:' "$out/$name.log" | tail -1 | sed -E 's/.*Acc@1: +[0-9.]+ +\( *([0-9.]+)\).*/\1/')
  echo "$(echo "$end - $start" | bc) $(echo "scale=1; $batch / $avg" | bc) $top1"
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

printf '%-24s %10s %10s %12s %12s %8s %8s %10s %10s\n' model kiln_s timm_s kiln_img/s timm_img/s \
  wall× img/s× kiln_top1 timm_top1
spread=()
for model in $models; do
  : > "$out/kiln.txt"; : > "$out/timm.txt"
  for ((p = 0; p < pairs; p++)); do
    seed=(--seed $((42 + p)))
    k=(run "kiln-$model-$p" "$kiln" train "$data" --model "$model" --output "$out/runs" --experiment "kiln-$model-$p" "${seed[@]}" "${flags[@]}")
    t=(run "timm-$model-$p" "$python" "$train_py" "$data" --model "$model" --device cpu --output "$out/runs" --experiment "timm-$model-$p" "${seed[@]}" "${flags[@]}")
    if ((p % 2 == 0)); then
      "${k[@]}" >> "$out/kiln.txt"; "${t[@]}" >> "$out/timm.txt"
    else
      "${t[@]}" >> "$out/timm.txt"; "${k[@]}" >> "$out/kiln.txt"
    fi
  done
  kw=$(cut -d' ' -f1 "$out/kiln.txt" | median); tw=$(cut -d' ' -f1 "$out/timm.txt" | median)
  kr=$(cut -d' ' -f2 "$out/kiln.txt" | median); tr=$(cut -d' ' -f2 "$out/timm.txt" | median)
  ka=$(cut -d' ' -f3 "$out/kiln.txt" | median); ta=$(cut -d' ' -f3 "$out/timm.txt" | median)
  printf '%-24s %10.1f %10.1f %12.1f %12.1f %7.2fx %7.2fx %10.2f %10.2f\n' "$model" "$kw" "$tw" "$kr" "$tr" \
    "$(echo "$tw / $kw" | bc -l)" "$(echo "$kr / $tr" | bc -l)" "$ka" "$ta"
  spread+=("$model top-1 by seed 42..$((41 + pairs)): kiln $(cut -d' ' -f3 "$out/kiln.txt" | tr '\n' ' ')| timm $(cut -d' ' -f3 "$out/timm.txt" | tr '\n' ' ')")
done
printf '%s\n' "${spread[@]}"
echo "flags for both: ${flags[*]}; data: $data; $pairs alternating pairs per model, medians"
