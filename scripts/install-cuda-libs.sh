#!/usr/bin/env bash
# Installs cuBLAS and cuDNN (the versions kiln last passed scripts/gpu-accept.sh with on a GPU:
# docs/gpu.md) from NVIDIA's PyPI wheels into .cache/nvidia-libs, once, for a GPU machine that
# lacks them (kiln says so at the start of a run: its own kernels are several times slower).
# Prints the folders to put on LD_LIBRARY_PATH:
#   export LD_LIBRARY_PATH=$(scripts/install-cuda-libs.sh):$LD_LIBRARY_PATH
set -euo pipefail
cd "$(dirname "$0")/.."
dst=.cache/nvidia-libs
stamp=$dst/.installed-cublas-13.1.0.3-cudnn-9.19.0.56
if [ ! -f "$stamp" ]; then
  rm -rf "$dst"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dst" \
    nvidia-cublas==13.1.0.3 nvidia-cudnn-cu13==9.19.0.56 >&2
  touch "$stamp"
fi
find "$PWD/$dst" \( -name 'libcublas.so*' -o -name 'libcudnn.so*' \) -printf '%h\n' | sort -u | paste -sd:
