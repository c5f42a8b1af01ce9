#!/usr/bin/env python3
"""Saves timm's models as TorchScript for the libtorch twins of benches/ops.rs's `models` group.

    python3 scripts/bench/torchscript_models.py OUT_DIR [model ...]
Writes OUT_DIR/<model>.pt for each model (default: the four the bench runs), skipping files that
exist. Each is `torch.jit.script` of `timm.create_model(name, scriptable=True)` with no dropout
or drop-path and 1000 classes, the arguments kiln's side uses; the ViT is built for 64×64 inputs.
Scripted modules keep train()/eval(), so the bench trains them with BN in training mode.
"""
import sys
from pathlib import Path

import timm
import torch

MODELS = ["efficientnet_b0", "mobilenetv3_large_100", "convnext_atto", "vit_tiny_patch16_224"]
# Per-model arguments beyond the defaults, matching ModelArgs on kiln's side.
EXTRA = {"vit_tiny_patch16_224": {"img_size": 64}}


def main(out_dir, names):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = out / f"{name}.pt"
        if path.exists():
            continue
        model = timm.create_model(
            name, num_classes=1000, drop_rate=0.0, drop_path_rate=0.0, scriptable=True,
            **EXTRA.get(name, {}),
        )
        model.train()
        scripted = torch.jit.script(model)
        tmp = path.with_suffix(".tmp")
        scripted.save(str(tmp))
        tmp.rename(path)
        print(f"{path}: torch.jit.script of timm {timm.__version__} {name}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:] or MODELS)
