#!/usr/bin/env python3
"""Writes an IDX dataset (MNIST's format: Fashion-MNIST, MNIST) as a PNG ImageFolder, the layout
both `kiln train` and timm's train.py read: OUT/train/<class>/<k>.png and OUT/validation/<class>/<k>.png.

Usage: python3 scripts/bench/make-png-folder.py [IDX_DIR] [OUT_DIR]
    IDX_DIR: a folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (default: the
             Fashion-MNIST subset shipped in data/fashion-mnist; scripts/get-data.sh fetches the
             full 70,000 images into data/full/fashion-mnist)
    OUT_DIR: default .cache/bench-png/<name of IDX_DIR>
Needs numpy and Pillow. Writes nothing when OUT_DIR already holds both splits.
"""
import gzip
import os
import sys

import numpy as np
from PIL import Image


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(idx_dir, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(idx_dir, name)
        if os.path.exists(path):
            return path
    sys.exit(f"make-png-folder: {idx_dir} has no {stem}[.gz]")


def write_split(idx_dir, prefix, out):
    images = read_idx(find(idx_dir, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(idx_dir, f"{prefix}-labels-idx1-ubyte"))
    for c in np.unique(labels):
        os.makedirs(os.path.join(out, str(c)), exist_ok=True)
    for k, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image, mode="L").save(os.path.join(out, str(label), f"{k}.png"))
    return len(labels)


def main():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    idx_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "data", "fashion-mnist")
    name = os.path.basename(os.path.normpath(idx_dir))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, ".cache", "bench-png", name)
    splits = {"train": "train", "validation": "t10k"}
    if all(os.path.isdir(os.path.join(out, s)) for s in splits):
        print(out)
        return
    for split, prefix in splits.items():
        n = write_split(idx_dir, prefix, os.path.join(out, split))
        print(f"{split}: {n} images", file=sys.stderr)
    print(out)


if __name__ == "__main__":
    main()
