#!/usr/bin/env bash
# Installs NVRTC 13.0 (pinned: docs/architecture.md §7) from PyPI wheels into .cache/nvidia, once.
# Prints the folders to put on LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
dst=.cache/nvidia
stamp=$dst/.installed-13.0.88
if [ ! -f "$stamp" ]; then
  rm -rf "$dst"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dst" \
    nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88 >&2
  touch "$stamp"
fi
find "$PWD/$dst" -name 'libnvrtc.so*' -printf '%h\n' | sort -u | paste -sd:
