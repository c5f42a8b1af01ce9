"""torchvision's DataLoader + PIL on the bench JPEGs: the reference for `cargo bench --bench data`.

Usage: python scripts/bench/torchvision-loader.py [DIR] [WORKERS]  (default .cache/bench-images, 0)
Prints images/s per core for decode + RandomResizedCrop(224) + hflip + ToTensor + Normalize, and the same
with timm's RandAugment `rand-m9-mstd0.5`. WORKERS=0 runs in the main process on one core; with
WORKERS=N the figure is divided by N.
"""
import sys
import time

import torch
from timm.data.auto_augment import rand_augment_transform
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def pipeline(randaug):
    steps = [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()]
    if randaug:
        hparams = dict(translate_const=int(224 * 0.45), img_mean=tuple(round(255 * m) for m in MEAN))
        steps.append(rand_augment_transform("rand-m9-mstd0.5", hparams))
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def images_per_s_per_core(root, workers, randaug, epochs=3):
    ds = datasets.ImageFolder(root, transform=pipeline(randaug))
    dl = DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    for _ in dl:  # warm-up epoch
        pass
    start, n = time.perf_counter(), 0
    for _ in range(epochs):
        for x, _ in dl:
            n += x.shape[0]
    return n / (time.perf_counter() - start) / max(workers, 1)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else ".cache/bench-images"
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    torch.set_num_threads(1)
    for name, ra in [("decode+rrc224+flip+normalize", False), ("... + rand-m9-mstd0.5", True)]:
        print(f"torchvision {name}: {images_per_s_per_core(root, workers, ra):.0f} img/s/core")


if __name__ == "__main__":
    main()
