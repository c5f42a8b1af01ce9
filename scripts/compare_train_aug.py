#!/usr/bin/env python3
"""Compares a whole epoch of kiln's augmented training images with timm's, in distribution.

kiln's side: the grids `kiln train ... --save-images --log-interval 1` writes into its run folder
(`train-batch-<i>.png`, every batch before normalization). timm's side: the primary and secondary
steps of train.py's default train transform (`transforms_imagenet_train`: RandomResizedCrop with
random bilinear/bicubic, horizontal flip, ColorJitter 0.4) applied once to every image of the same
ImageFolder's train split. For gray images (the first channel is used), it prints per side: the
per-image mean and standard deviation, the share of black and of saturated pixels, the mean
absolute horizontal and vertical differences (sharpness: the crop scale and the filter), a pixel
histogram and the left-right balance (the flip). The untouched source images come first.

    kiln train DATA --model resnet18 --num-classes 10 --img-size 28 --epochs 1 \\
        --save-images --log-interval 1 --output /tmp/aug --experiment a
    python3 scripts/compare_train_aug.py /tmp/aug/a DATA --img-size 28 --batch-size 128
"""
import argparse
import glob
import math
import random

import numpy as np
import torch
from PIL import Image
from timm.data import create_dataset
from timm.data.transforms_factory import transforms_imagenet_train

GAP = 2  # pixels between grid cells (train/src/loader/save.rs)


def kiln_images(run_dir, size, batch):
    """The cells of every saved grid, as float64 [N, size, size] (first channel)."""
    cols = math.ceil(math.sqrt(batch))
    out = []
    paths = sorted(glob.glob(f"{run_dir}/train-batch-*.png"))
    if not paths:
        raise SystemExit(f"{run_dir}: no train-batch-*.png (run kiln train with --save-images --log-interval 1)")
    for path in paths:
        grid = np.asarray(Image.open(path))
        grid = grid[..., 0] if grid.ndim == 3 else grid
        for i in range(batch):
            x0, y0 = GAP + (i % cols) * (size + GAP), GAP + (i // cols) * (size + GAP)
            out.append(grid[y0:y0 + size, x0:x0 + size].astype(np.float64))
    return np.stack(out)


def timm_images(ds, size, seed):
    primary, secondary, _ = transforms_imagenet_train(
        size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5, color_jitter=0.4,
        interpolation="random", separate=True)
    torch.manual_seed(seed)
    random.seed(seed)
    out = []
    for i in range(len(ds)):
        img = ds[i][0].convert("RGB")
        img = secondary(primary(img))
        out.append(np.asarray(img)[..., 0].astype(np.float64))
    return np.stack(out)


def report(name, a):
    mean, std = a.mean((1, 2)), a.std((1, 2))
    dx = np.abs(np.diff(a, axis=2)).mean((1, 2))
    dy = np.abs(np.diff(a, axis=1)).mean((1, 2))
    half = a.shape[2] // 2
    lr = a[:, :, :half].mean((1, 2)) - a[:, :, -half:].mean((1, 2))
    hist = np.histogram(a, bins=[0, 1, 32, 64, 128, 192, 255, 256])[0] / a.size
    se = lambda v: v.std() / math.sqrt(len(v))
    print(f"{name:6s} n={len(a):5d}  mean {mean.mean():6.2f}±{se(mean):.2f}  std {std.mean():6.2f}±{se(std):.2f}"
          f"  black {(a == 0).mean():.4f}  255 {(a >= 255).mean():.4f}"
          f"  |dx| {dx.mean():6.2f}±{se(dx):.2f}  |dy| {dy.mean():6.2f}±{se(dy):.2f}"
          f"  left-right {lr.mean():+.2f}±{se(lr):.2f}")
    print(f"{'':6s} histogram [0, 1, 32, 64, 128, 192, 255, 256): {hist.round(4).tolist()}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("data")
    p.add_argument("--img-size", type=int, default=28)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    ds = create_dataset("", root=a.data, split="train")
    source = np.stack([np.asarray(ds[i][0].convert("L")).astype(np.float64) for i in range(len(ds))])
    report("source", source)
    report("kiln", kiln_images(a.run_dir, a.img_size, a.batch_size))
    report("timm", timm_images(ds, a.img_size, a.seed))


if __name__ == "__main__":
    main()
