#!/usr/bin/env python3
"""Writes webdataset shards and their `_info.json` from an ImageFolder, for
`kiln train --dataset wds/NAME --data-dir OUT` (and timm's train.py with the same flags).

Usage (Python 3 standard library only):
    python3 scripts/make-wds.py FOLDER OUT [--name NAME] [--shard-size 1000]

FOLDER holds split folders (`train`, `validation`, ... as `kiln train` finds them) of class
folders of images (.jpg, .jpeg, .png). Classes are the train split's folders in natural order
(timm's and kiln's ImageFolder order); each split is written as
`OUT/NAME-<split>-{000000..}.tar` with `--shard-size` samples a shard, each sample `<key>.<ext>`
(the image's bytes, unchanged; `.jpeg` stored as `.jpg`) and `<key>.cls` (the class index), the
samples in the folder's natural order. `OUT/_info.json` lists each split's shards and sample
counts as timm's `reader_wds` reads them, and `num_classes`.
"""
import argparse
import io
import json
import re
import sys
import tarfile
from pathlib import Path

IMAGE_EXTS = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png"}


def natural_key(s):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s.lower())]


def images(split_dir, classes):
    out = []
    for cls_dir in split_dir.iterdir():
        if not cls_dir.is_dir() or cls_dir.name not in classes:
            continue
        for f in cls_dir.rglob("*"):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                out.append((f, classes[cls_dir.name]))
    out.sort(key=lambda p: natural_key(str(p[0])))
    return out


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_split(name, split, samples, out, shard_size):
    filenames, lengths = [], []
    for start in range(0, len(samples), shard_size):
        fname = f"{name}-{split}-{len(filenames):06d}.tar"
        chunk = samples[start:start + shard_size]
        with tarfile.open(out / fname, "w", format=tarfile.USTAR_FORMAT) as tar:
            for k, (path, label) in enumerate(chunk):
                key = f"{split}_{start + k:08d}"
                add(tar, f"{key}.{IMAGE_EXTS[path.suffix.lower()]}", path.read_bytes())
                add(tar, f"{key}.cls", str(label).encode())
        filenames.append(fname)
        lengths.append(len(chunk))
    return dict(name=split, num_samples=len(samples), filenames=filenames, shard_lengths=lengths)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--name", default="data")
    p.add_argument("--shard-size", type=int, default=1000)
    a = p.parse_args()
    splits = sorted(d.name for d in a.folder.iterdir() if d.is_dir())
    train = next((s for s in ("train", "training") if s in splits), None)
    if train is None:
        sys.exit(f"{a.folder} has no train split folder")
    names = sorted((d.name for d in (a.folder / train).iterdir() if d.is_dir()), key=natural_key)
    classes = {n: i for i, n in enumerate(names)}
    a.out.mkdir(parents=True, exist_ok=True)
    info = dict(name=a.name, num_classes=len(classes), splits={})
    for split in splits:
        samples = images(a.folder / split, classes)
        if samples:
            info["splits"][split] = write_split(a.name, split, samples, a.out, a.shard_size)
            print(f"{split}: {len(samples)} samples in {len(info['splits'][split]['filenames'])} shards")
    (a.out / "_info.json").write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main()
