#!/usr/bin/env python3
"""f32 rounding error of Winograd F(4x4, 3x3), as kiln's CPU path computes it, against float64.

Prints, for random N(0, 1) inputs and kernels with 64 and 256 input channels, the largest and the
RMS error of the 4x4 outputs relative to the outputs' RMS, for the direct f32 sum and for the
transforms with kiln's matrices (interpolation points 0, 1, -1, 2, -2 and infinity). The
tolerance of engine/tests/reference.rs's Winograd cases comes from these figures.

    python3 scripts/winograd_error.py   # needs numpy
"""
import numpy as np

BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float32)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], np.float32)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float32)


def windows(d, dtype):
    """The 4x4 outputs of each tile's 6x6 window `d` [tile, c, 6, 6] convolved with `g`."""
    return lambda g: np.stack(
        [np.stack([np.einsum("tcab,cab->t", d[:, :, i:i + 3, j:j + 3].astype(dtype),
                             g.astype(dtype), dtype=dtype) for j in range(4)], -1)
         for i in range(4)], -2)


def winograd(d, g):
    f32 = np.float32
    u = np.einsum("pk,ckl,ql->cpq", G, g, G, dtype=f32)
    v = np.einsum("pa,tcab,qb->tcpq", BT, d, BT, dtype=f32)
    m = np.einsum("tcpq,cpq->tpq", v, u, dtype=f32)
    return np.einsum("ip,tpq,jq->tij", AT, m, AT, dtype=f32)


def main():
    rng = np.random.default_rng(0)
    for c in (64, 256):
        d = rng.standard_normal((2000, c, 6, 6)).astype(np.float32)
        g = rng.standard_normal((c, 3, 3)).astype(np.float32)
        exact = windows(d, np.float64)(g)
        scale = np.sqrt((exact ** 2).mean())
        for name, y in (("direct f32", windows(d, np.float32)(g)), ("F(4x4, 3x3)", winograd(d, g))):
            err = np.abs(y - exact) / scale
            print(f"{c} channels, {name}: max {err.max():.2e}, RMS {np.sqrt((err ** 2).mean()):.2e} "
                  f"of the outputs' RMS ({scale:.1f})")


if __name__ == "__main__":
    main()
