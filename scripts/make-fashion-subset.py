#!/usr/bin/env python3
"""Writes the Fashion-MNIST subset embedded in data/ (first N train / M test samples, IDX .gz).

Usage: scripts/make-fashion-subset.py SRC_DIR DST_DIR [N_TRAIN] [N_TEST]
SRC_DIR holds the four official *-ubyte.gz files (scripts/get-data.sh fashion-mnist fetches them).
"""
import gzip
import struct
import sys


def subset(src, dst, count):
    with gzip.open(src, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * (ndim - 1), data[8 : 4 + 4 * ndim])
    item = 1
    for d in dims:
        item *= d
    head = 4 + 4 * ndim
    count = min(count, n)
    out = struct.pack(">II", magic, count) + data[8:head] + data[head : head + count * item]
    with gzip.GzipFile(dst, "wb", mtime=0) as f:
        f.write(out)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n_train = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    n_test = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    for split, count in (("train", n_train), ("t10k", n_test)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{split}-{kind}-ubyte.gz"
            subset(f"{src}/{name}", f"{dst}/{name}", count)


if __name__ == "__main__":
    main()
