#!/usr/bin/env python3
"""Best and median of every GPU call BENCHMARKS.md records, computed, not copied by hand.

    python3 scripts/bench/gpu_history.py [BENCHMARKS.md] [--gpu H200]

Reads the ```gpu-calls``` block of BENCHMARKS.md (one line per side and row of each call: date,
gpu, commit, call, row, amp, side, img_s; scripts/bench/pairs.py prints the lines of a new call)
and prints, for each row and AMP dtype, every side's best and median figure over the calls and
kiln's latest figure over the best PyTorch figure of any call and over the median of PyTorch's.
"""
import argparse
import csv
import statistics
import sys
from collections import defaultdict

FIELDS = ["date", "gpu", "commit", "call", "row", "amp", "side", "img_s"]


def records(text):
    """The rows of the gpu-calls block, img_s as float, in the order written."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip() == "```gpu-calls":
            inside = True
        elif inside and line.strip() == "```":
            break
        elif inside and line.strip() and not line.startswith("date,"):
            lines.append(line)
    rows = []
    for r in csv.DictReader(lines, fieldnames=FIELDS):
        r["img_s"] = float(r["img_s"])
        rows.append(r)
    return rows


def history(rows):
    """{(row, amp): {side: [figures in call order]}}."""
    out = defaultdict(lambda: defaultdict(list))
    for r in rows:
        out[(r["row"], r["amp"])][r["side"]].append(r)
    return out


def report(rows):
    lines = ["| row | AMP | side | calls | best | median | latest |", "|---|---|---|---:|---:|---:|---:|"]
    ratios = []
    for (row, amp), sides in history(rows).items():
        torch_all = [r["img_s"] for side, rs in sides.items() if side.startswith("torch") for r in rs]
        for side, rs in sides.items():
            figs = [r["img_s"] for r in rs]
            lines.append(f"| {row} | {amp} | {side} | {len(figs)} | {max(figs):.0f} | "
                         f"{statistics.median(figs):.0f} | {figs[-1]:.0f} ({rs[-1]['gpu']} {rs[-1]['date']}) |")
            if side.startswith("kiln") and torch_all:
                ratios.append(f"{row} {amp} {side}: latest {figs[-1]:.0f} ÷ best PyTorch of any call "
                              f"{max(torch_all):.0f} = {figs[-1] / max(torch_all):.2f}×; ÷ median "
                              f"{statistics.median(torch_all):.0f} = {figs[-1] / statistics.median(torch_all):.2f}×")
    return "\n".join(lines + [""] + ratios)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("benchmarks", nargs="?", default="BENCHMARKS.md")
    p.add_argument("--gpu", help="only this GPU's calls (H100, H200)")
    a = p.parse_args(argv)
    rows = records(open(a.benchmarks).read())
    print(report([r for r in rows if a.gpu in (None, r["gpu"])]))


if __name__ == "__main__":
    main(sys.argv[1:])
