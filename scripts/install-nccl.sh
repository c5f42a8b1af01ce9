#!/usr/bin/env bash
# Installs NCCL for CUDA 13 (the nvidia-nccl-cu13 wheel, pinned; override with NCCL_SPEC) into
# .cache/nvidia-nccl, once, for kiln's `nccl` feature. Prints the folder to put on LD_LIBRARY_PATH.
# cudarc opens libnccl.so (unversioned) first: the wheel ships libnccl.so.2, so it is linked here.
set -euo pipefail
cd "$(dirname "$0")/.."
dst=.cache/nvidia-nccl
spec=${NCCL_SPEC:-nvidia-nccl-cu13==2.32.3}
stamp="$dst/.installed-$spec"
if [ ! -f "$stamp" ]; then
  rm -rf "$dst"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dst" "$spec" >&2
  touch "$stamp"
fi
for f in "$PWD/$dst"/nvidia/nccl/lib/libnccl.so.[0-9]*; do
  ln -sfn "$f" "${f%%.so.*}.so"
done
find "$PWD/$dst" -name 'libnccl.so*' -printf '%h\n' | sort -u | paste -sd:
