#!/usr/bin/env bash
# Runs benches/ops.rs with its libtorch twins in the same process and prints kiln/libtorch ratios.
#   [PASSES=N] scripts/bench/libtorch.sh [criterion filter]
# With PASSES=N (default 1) the whole bench runs N times and each row keeps its lowest median.
# Needs PyTorch 2.13.0 (what tch 0.26 binds) in a Python environment: $TORCH_VENV (default
# .venvs/torch), made here if missing (a ~3 GB pip install), with timm for the `models` group's
# twins: timm's models as TorchScript in $KILN_TORCHSCRIPT_DIR (default
# $CARGO_TARGET_DIR/torchscript), written here when missing by scripts/bench/torchscript_models.py.
# On a host shared with other work, OMP_WAIT_POLICY=PASSIVE keeps libtorch's threads from
# spinning at every barrier while a neighbour holds a core (BENCHMARKS.md, `models`).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=$(realpath -m "${TORCH_VENV:-.venvs/torch}")
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch==2.13.0
fi
if ! "$venv/bin/python" -c "import timm" 2>/dev/null; then
    # torchvision 0.28 is the one built for torch 2.13; a newer one would pull a newer torch.
    "$venv/bin/pip" install --quiet torchvision==0.28.0 timm==1.0.31
fi
export PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
target=${CARGO_TARGET_DIR:-target}
export KILN_TORCHSCRIPT_DIR=${KILN_TORCHSCRIPT_DIR:-$target/torchscript}
python3 scripts/bench/torchscript_models.py "$KILN_TORCHSCRIPT_DIR"
passes=()
for pass in $(seq "${PASSES:-1}"); do
    rm -rf "$target/criterion"
    cargo bench --features libtorch --bench ops -- --noplot "$@"
    rm -rf "$target/criterion-pass$pass"
    cp -r "$target/criterion" "$target/criterion-pass$pass"
    passes+=("$target/criterion-pass$pass")
done
python3 scripts/bench/ratios.py "${passes[@]}"
