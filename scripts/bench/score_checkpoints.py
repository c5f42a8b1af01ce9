#!/usr/bin/env python3
"""Scores kiln's and timm's training checkpoints with the same timm model, data and code.

Each checkpoint (kiln's `.safetensors`, whose tensors sit under `state_dict.`, or timm's
`.pth.tar`) is loaded into `timm.create_model(MODEL, num_classes=...)` and scored four ways:
- on the validation split through timm's eval transform, in eval mode (what train.py reports);
- on a fixed set of augmented training batches (timm's default train transform, one seed for
  every checkpoint), in eval mode (running statistics) and in train mode (batch statistics,
  the running statistics restored afterwards).

Train mode on augmented batches asks how well the weights fit the training task, the way the
training loss does but with one loader and one set of batches for both programs; the gap between
the two modes on the same batches shows how far a checkpoint's running statistics lag its
weights, which is what makes an early BatchNorm evaluation swing from seed to seed.

    python3 scripts/bench/score_checkpoints.py DATA --model efficientnet_b0 --num-classes 10 \\
        --img-size 28 runs/k-*/checkpoint-1.safetensors runs/t-*/checkpoint-1.pth.tar
"""
import argparse

import torch
import torch.nn.functional as F
import timm
from timm.data import create_dataset, create_loader, resolve_data_config
from timm.models import load_checkpoint


def load(model, path):
    """Loads a kiln `.safetensors` training checkpoint or any checkpoint timm loads."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        prefix = "state_dict."
        tensors = load_file(path)
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        model.load_state_dict(state or tensors)
    else:
        load_checkpoint(model, path)


def score(model, batches, train_mode):
    """(mean cross-entropy, top-1 %) over `batches`; the model's buffers are left as found."""
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    model.train(train_mode)
    loss = correct = seen = 0
    with torch.no_grad():
        for x, y in batches:
            out = model(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
    model.load_state_dict(saved)
    return loss / seen, 100.0 * correct / seen


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="ImageFolder root with train/ and validation/ splits")
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--num-classes", type=int, required=True)
    ap.add_argument("--img-size", type=int, required=True)
    ap.add_argument("--train-batches", type=int, default=16, help="augmented batches of 128")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model = timm.create_model(args.model, num_classes=args.num_classes)
    size = (3, args.img_size, args.img_size)
    cfg = resolve_data_config({"input_size": size}, model=model)
    common = dict(input_size=size, use_prefetcher=False, mean=cfg["mean"], std=cfg["std"],
                  num_workers=1)
    val = create_loader(create_dataset("", root=args.data, split="validation"), batch_size=250,
                        interpolation=cfg["interpolation"], crop_pct=cfg["crop_pct"], **common)
    train = create_loader(create_dataset("", root=args.data, split="train", is_training=True),
                          batch_size=128, is_training=True, **common)
    train_batches = [b for _, b in zip(range(args.train_batches), train)]
    print("| checkpoint | val, eval mode | augmented train, eval mode | augmented train, train mode |")
    print("|---|---|---|---|")
    for path in args.checkpoints:
        load(model, path)
        cells = [score(model, val, False), score(model, train_batches, False),
                 score(model, train_batches, True)]
        row = " | ".join(f"{loss:.3f} / {top1:.1f} %" for loss, top1 in cells)
        print(f"| {path} | {row} |", flush=True)


if __name__ == "__main__":
    main()
