#!/usr/bin/env python3
"""PyTorch side of examples/train_step.rs: training-step throughput of a timm model on random data.

    python scripts/bench/torch_train_step.py [--model resnet50] [--batch 64] [--img-size 224]
        [--steps 30] [--rounds 1] [--warmup 10] [--device cuda] [--amp-dtype float16|bfloat16|none]
        [--no-channels-last]

The same step as the kiln side: forward under autocast, cross-entropy, backward through
GradScaler (float16), timm's SGD (Nesterov, momentum 0.9, weight decay 1e-4, none on biases and
norms), cudnn.benchmark on as in timm's train.py. `--rounds N` times N rounds of `--steps` steps
and reports their median; `--profile` brackets them for `ncu --profile-from-start off`. The last line is `img/s: <number>`.
"""
import argparse
import time

import timm
import timm.optim
import torch
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--amp-dtype", default="float16", choices=["float16", "bfloat16", "none"])
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--profile", action="store_true", help="cudaProfilerStart/Stop around the timed rounds")
    a = p.parse_args()

    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    dev = torch.device(a.device)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    amp = {"float16": torch.float16, "bfloat16": torch.bfloat16, "none": None}[a.amp_dtype]

    # As on the kiln side, a ViT's position embedding is sized for the input.
    sized = {"img_size": a.img_size} if a.model.startswith(("vit_", "deit_")) else {}
    model = timm.create_model(a.model, num_classes=1000, **sized).to(dev, memory_format=fmt).train()
    opt = timm.optim.create_optimizer_v2(model, "sgd", lr=0.1, weight_decay=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp == torch.float16)
    n, s = a.batch, a.img_size
    x = torch.randn(n, 3, s, s, device=dev).contiguous(memory_format=fmt)
    y = torch.arange(n, device=dev) * 7 % 1000

    def step():
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(a.warmup):
        step()
    sync()
    if a.profile:
        torch.cuda.profiler.start()
    rates = []
    for _ in range(max(a.rounds, 1)):
        start = time.perf_counter()
        for _ in range(a.steps):
            step()
        sync()
        rates.append(a.steps * n / (time.perf_counter() - start))
    if a.profile:
        torch.cuda.profiler.stop()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else a.device
    print(
        f"torch {torch.__version__} {a.model} batch {n} {s}x{s} on {name} "
        f"amp {a.amp_dtype} channels_last {a.channels_last}: {len(rates)} round(s) of {a.steps} "
        f"steps, img/s {' '.join(f'{r:.1f}' for r in rates)}"
    )
    print(f"img/s: {sorted(rates)[len(rates) // 2]:.1f}")


if __name__ == "__main__":
    main()
