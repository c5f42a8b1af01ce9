#!/usr/bin/env python3
"""PyTorch (libtorch) side of benches/ops.rs: the same shapes on the same cores.

    /work/.venvs/torch/bin/python scripts/bench/torch_ops.py   # any Python with torch and timm
Prints one line per bench: name, median seconds, and the derived rate.
"""
import time

import timm
import torch

torch.set_num_threads(2)


def median_time(fn, min_time=3.0, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 5:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def report(name, secs, rate=None, unit=""):
    extra = f"  {rate:.1f} {unit}" if rate else ""
    print(f"{name:<32} {secs * 1e3:10.3f} ms{extra}", flush=True)


def main():
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        s = median_time(lambda: a @ b)
        report(f"matmul/{n}", s, 2 * n**3 / s / 1e9, "GFLOP/s")
    shapes = [("stem7x7s2", 64, 224, 7, 2, 3, 3), ("64ch56", 64, 56, 3, 1, 1, 64), ("128ch28", 128, 28, 3, 1, 1, 128),
              ("256ch14", 256, 14, 3, 1, 1, 256), ("512ch7", 512, 7, 3, 1, 1, 512)]
    for name, oc, hw, k, s_, p, ic in shapes:
        for fmt, tag in ((torch.contiguous_format, "nchw"), (torch.channels_last, "nhwc")):
            x = torch.randn(32, ic, hw, hw).to(memory_format=fmt)
            w = torch.randn(oc, ic, k, k).to(memory_format=fmt)
            with torch.no_grad():
                report(f"conv2d/fwd/{name}/{tag}", median_time(lambda: torch.nn.functional.conv2d(x, w, None, s_, p)))
            xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
            report(f"conv2d/fwd_bwd/{name}/{tag}", median_time(lambda: torch.nn.functional.conv2d(xg, wg, None, s_, p).sum().backward()))
    x = torch.randn(32, 64, 56, 56).to(memory_format=torch.channels_last).requires_grad_()
    bn = torch.nn.BatchNorm2d(64)
    report("bn_relu/fwd_bwd", median_time(lambda: torch.relu(bn(x)).sum().backward()))
    for name in ("resnet18", "resnet50"):
        model = timm.create_model(name).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=2e-5)
        x = torch.randn(32, 3, 64, 64).to(memory_format=torch.channels_last)
        y = torch.arange(32) % 1000
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        s = median_time(step, min_time=8.0)
        report(f"resnet/{name}/train_step", s, 32 / s, "img/s")
        model.eval()
        with torch.no_grad():
            s = median_time(lambda: model(x))
        report(f"resnet/{name}/forward", s, 32 / s, "img/s")
        model.train()


if __name__ == "__main__":
    main()
