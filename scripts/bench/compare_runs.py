#!/usr/bin/env python3
"""Compares seeded training runs of kiln with timm's train.py, epoch by epoch, from their logs.

Both programs print the same log lines (`Train: E [ i/N ...] Loss: last (average)` and
`Test: [ i/N] ... Loss: last (average) Acc@1: last (average)`). For every epoch this reads each
run's epoch-average training loss (from the epoch's last `Train:` line), its validation loss and
its top-1 (from the epoch's last `Test:` line), and prints per side the mean and standard
deviation over the runs, the difference of the means, and an exact two-sided permutation test of
that difference (every split of the pooled runs into two groups of the original sizes; no
assumption of normality, which a handful of seeds cannot support).

The training loss averages every sample of an epoch through the model as it trains, so it varies
far less from seed to seed than a top-1 that depends on one set of BatchNorm running statistics
at the end of a short run; it is the statistic to judge "trains as timm trains" by.

    python3 scripts/bench/compare_runs.py --kiln runs/k-resnet50-*.log --timm runs/t-resnet50-*.log
"""
import argparse
import itertools
import math
import re
import statistics
import sys

TRAIN = re.compile(r"^Train: (\d+) \[.*?Loss: +([0-9.naif]+) \( *([0-9.naif]+)\)")
TEST = re.compile(r"^Test: \[ *(\d+)/(\d+)\].*?Loss: +[0-9.naif]+ \( *([0-9.naif]+)\)"
                  r".*?Acc@1: +[0-9.]+ \( *([0-9.]+)\)")


def epochs_of(path):
    """[(train loss average, validation loss, top-1)] per epoch of one log."""
    train, out = {}, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = TRAIN.match(line)
            if m:
                train[int(m.group(1))] = float(m.group(3))
                continue
            m = TEST.match(line)
            if m and m.group(1) == m.group(2):
                epoch = len(out)
                if epoch not in train:
                    sys.exit(f"{path}: a final Test line of epoch {epoch} without its Train lines")
                out.append((train[epoch], float(m.group(3)), float(m.group(4))))
    if not out:
        sys.exit(f"{path}: no finished epoch (no final `Test: [ N/N]` line)")
    return out


def permutation_p(a, b):
    """Exact two-sided p of mean(a) - mean(b) over every regrouping of the pooled values."""
    pooled, n = a + b, len(a)
    observed = abs(statistics.fmean(a) - statistics.fmean(b))
    total = sum(pooled)
    hits = count = 0
    for group in itertools.combinations(range(len(pooled)), n):
        sa = sum(pooled[i] for i in group)
        diff = abs(sa / n - (total - sa) / len(b))
        hits += diff >= observed - 1e-12
        count += 1
    return hits / count


def spread(xs):
    return statistics.stdev(xs) if len(xs) > 1 else math.nan


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", nargs="+", required=True, help="kiln train logs, one per seed")
    ap.add_argument("--timm", nargs="+", required=True, help="train.py logs, one per seed")
    args = ap.parse_args()
    runs = {side: [epochs_of(p) for p in getattr(args, side)] for side in ("kiln", "timm")}
    n_epochs = min(len(r) for side in runs.values() for r in side)
    print(f"{len(runs['kiln'])} kiln runs, {len(runs['timm'])} timm runs, {n_epochs} epochs")
    print("| epoch | statistic | kiln mean ± sd | timm mean ± sd | kiln − timm | permutation p |")
    print("|---:|---|---:|---:|---:|---:|")
    names = ("train loss", "val loss", "top-1 %")
    for e in range(n_epochs):
        for k, name in enumerate(names):
            a = [r[e][k] for r in runs["kiln"]]
            b = [r[e][k] for r in runs["timm"]]
            ma, mb = statistics.fmean(a), statistics.fmean(b)
            print(f"| {e} | {name} | {ma:.3f} ± {spread(a):.3f} | {mb:.3f} ± {spread(b):.3f} "
                  f"| {ma - mb:+.3f} | {permutation_p(a, b):.2f} |")


if __name__ == "__main__":
    main()
