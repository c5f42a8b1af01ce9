#!/usr/bin/env python3
"""Saves timm's models as TorchScript for the libtorch twins of benches/ops.rs's `models` group.

    python3 scripts/bench/torchscript_models.py OUT_DIR [model ...]
Writes OUT_DIR/<model>.pt for each model (default: all the bench runs), skipping files that
exist. Each is `torch.jit.script` of `timm.create_model(name, scriptable=True)` with no dropout
or drop-path and 1000 classes, the arguments kiln's side uses; the transformers are built for the
bench's input side (64, EVA-02 56).
Scripted modules keep train()/eval(), so the bench trains them with BN in training mode.
"""
import sys
from pathlib import Path

import timm
import torch

MODELS = [
    "efficientnet_b0", "mobilenetv3_large_100", "convnext_atto", "vit_tiny_patch16_224",
    "resnest14d", "regnety_002", "repvgg_a0", "densenet121", "efficientnetv2_rw_t",
    "mobilenetv4_conv_small", "swin_tiny_patch4_window7_224", "eva02_tiny_patch14_224",
    "deit_tiny_patch16_224", "vgg11_bn",
]
# Per-model arguments beyond the defaults, matching ModelArgs on kiln's side (benches/ops.rs
# MODELS): the transformers are built for the bench's input side.
EXTRA = {
    "vit_tiny_patch16_224": {"img_size": 64},
    "deit_tiny_patch16_224": {"img_size": 64},
    "swin_tiny_patch4_window7_224": {"img_size": 64},
    "eva02_tiny_patch14_224": {"img_size": 56},
}
# Models whose constructor has no drop_path_rate (no stochastic depth to turn off).
NO_DROP_PATH = {"densenet121", "vgg11_bn"}


def main(out_dir, names):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = out / f"{name}.pt"
        if path.exists():
            continue
        drop_path = {} if name in NO_DROP_PATH else {"drop_path_rate": 0.0}
        model = timm.create_model(
            name, num_classes=1000, drop_rate=0.0, scriptable=True, **drop_path,
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
