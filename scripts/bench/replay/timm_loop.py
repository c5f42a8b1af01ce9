#!/usr/bin/env python3
"""timm's training step in a plain loop over batches saved by dump_timm_batches.py, then timm's eval.

    python3 scripts/bench/replay/timm_loop.py BATCHES_DIR [--layout nchw|cl] [--model M] [--data D]

Starts from BATCHES_DIR/init.safetensors and trains on BATCHES_DIR/images.u8 and labels.u8 in
their order, batch 128, with what train.py's defaults give: SGD with Nesterov momentum 0.9,
lr 0.05 (0.1 × 128/256), weight decay 2e-5 off biases and norms, label smoothing 0.1, inputs
normalized by ImageNet's mean and std. Then it scores the model in eval mode on DATA's
`validation` split with timm's eval transform for the model. It prints the first steps' losses
and one `RESULT` line: the epoch's average training loss, the validation loss and top-1.

`--layout cl` hands the model channels-last inputs, as `train.py --channels-last` does. This is
the step train.py takes, over the same data from the same weights; only the floating-point
rounding can differ from train.py's own run (and PyTorch's threads change that too).
"""
import argparse
import os
import sys

import numpy as np
import timm
import torch
from safetensors.torch import load_file
from timm.data import create_dataset, create_loader, resolve_data_config
from timm.loss import LabelSmoothingCrossEntropy
from timm.optim import create_optimizer_v2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from score_checkpoints import score  # noqa: E402  (scripts/bench/score_checkpoints.py)

BATCH = 128
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def batches(folder, layout):
    """(normalized input, target) per saved batch, in training order."""
    labels = np.fromfile(f"{folder}/labels.u8", dtype=np.uint8)
    pixels = np.fromfile(f"{folder}/images.u8", dtype=np.uint8)
    side = int(round((pixels.size // labels.size // 3) ** 0.5))
    images = pixels.reshape(-1, side, side, 3)
    fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
    for s in range(len(labels) // BATCH):
        x = torch.from_numpy(images[s * BATCH:(s + 1) * BATCH]).permute(0, 3, 1, 2).float()
        x = ((x - MEAN) / STD).contiguous(memory_format=fmt)
        yield x, torch.from_numpy(labels[s * BATCH:(s + 1) * BATCH].astype(np.int64)), side


def evaluate(model, data, side):
    """Validation loss and top-1 (%) with timm's eval transform for `model` at `side` pixels."""
    cfg = resolve_data_config({"input_size": (3, side, side)}, model=model)
    loader = create_loader(
        create_dataset("", root=data, split="validation", is_training=False),
        input_size=cfg["input_size"], batch_size=BATCH, is_training=False, use_prefetcher=False,
        interpolation=cfg["interpolation"], mean=cfg["mean"], std=cfg["std"],
        crop_pct=cfg["crop_pct"], num_workers=2)
    return score(model, loader, train_mode=False)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("batches")
    p.add_argument("--layout", choices=["nchw", "cl"], default="nchw")
    p.add_argument("--model", default="efficientnet_b0")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--data", default=".cache/bench-png/fashion-mnist")
    a = p.parse_args()
    model = timm.create_model(a.model, num_classes=a.num_classes)
    model.load_state_dict(load_file(f"{a.batches}/init.safetensors"))
    model.train()
    opt = create_optimizer_v2(model, "sgd", lr=0.05, weight_decay=2e-5, momentum=0.9)
    criterion = LabelSmoothingCrossEntropy(0.1)
    total, steps, side = 0.0, 0, 0
    for x, y, side in batches(a.batches, a.layout):
        loss = criterion(model(x), y)
        if steps < 3:
            print(f"STEP {steps + 1} loss {loss.item():.9f}")
        total, steps = total + loss.item(), steps + 1
        opt.zero_grad()
        loss.backward()
        opt.step()
    val_loss, top1 = evaluate(model, a.data, side)
    print(f"RESULT train_loss {total / steps:.4f} eval_loss {val_loss:.4f} top1 {top1:.2f}")


if __name__ == "__main__":
    main()
