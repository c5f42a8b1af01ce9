#!/usr/bin/env python3
"""Pairs each kiln bench in criterion's output with its `libtorch/` twin and prints a Markdown table.

    python3 scripts/bench/ratios.py target/criterion [more criterion folders ...]
Given the folders of several passes, each bench keeps its lowest median: on a shared machine a
neighbour's load only ever adds time, so the minimum is the least disturbed figure.
The last column is libtorch time / kiln time: above 1 means kiln is faster.
"""
import json
import sys
from pathlib import Path


def median_ms(bench_dir):
    est = json.loads((bench_dir / "new" / "estimates.json").read_text())
    return est["median"]["point_estimate"] / 1e6


def main(roots):
    runs = {}
    for root in map(Path, roots):
        for est in root.glob("**/new/estimates.json"):
            bench_dir = est.parent.parent
            meta = json.loads((est.parent / "benchmark.json").read_text())
            ms = median_ms(bench_dir)
            runs[meta["full_id"]] = min(ms, runs.get(meta["full_id"], ms))
    print("| bench | kiln ms | libtorch ms | kiln speed vs libtorch |")
    print("|---|---:|---:|---:|")
    for full_id in sorted(runs):
        group, _, rest = full_id.partition("/")
        if rest.startswith("libtorch/"):
            continue
        twin = rest.removeprefix("fused_").removeprefix("unfused_")
        torch = runs.get(f"{group}/libtorch/{twin}")
        if torch is None:
            continue
        kiln = runs[full_id]
        print(f"| {full_id} | {kiln:.2f} | {torch:.2f} | {torch / kiln:.2f}× |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["target/criterion"])
