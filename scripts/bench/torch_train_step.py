#!/usr/bin/env python3
"""PyTorch side of examples/train_step.rs: training-step throughput of a timm model on random data.

    python scripts/bench/torch_train_step.py [--model resnet50] [--batch 64] [--img-size 224]
        [--steps 30] [--rounds 1] [--warmup 10] [--device cuda] [--amp-dtype float16|bfloat16|none]
        [--no-channels-last] [--mode eager|compile|graph] [--profile] [--serve]

The same step as the kiln side and timm's train.py: forward under autocast, cross-entropy,
backward through the loss scaler (float16), SGD (Nesterov, momentum 0.9, weight decay 1e-4, none
on biases and norms, timm's parameter groups), the loss read back (train.py's `loss.item()`);
cudnn.benchmark on as in train.py. Three modes:
  eager    the step as written, SGD fused (`fused=True`; foreach where this torch refuses it)
  compile  the model under torch.compile (inductor, default mode); the compile happens in the
           warm-up, which `setup_s` reports
  graph    the whole step captured once as a CUDA graph and replayed: forward, loss, backward,
           the unscale with its inf check, the fused SGD step skipped on inf and the loss
           scale's update, all on the device (PyTorch's whole-network capture)
`--rounds N` times N rounds of `--steps` steps and prints their median last (`img/s: <number>`);
`--serve` speaks examples/train_step.rs's protocol on stdin/stdout (`ready`, `round <seconds>`,
`quit`) for scripts/bench/pairs.py. `--profile` brackets the timed rounds for
`ncu --profile-from-start off`.
"""
import argparse
import sys
import time

import timm
import timm.optim
import torch
import torch.nn.functional as F


def parse_args(argv=None):
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
    p.add_argument("--mode", default="eager", choices=["eager", "compile", "graph"])
    p.add_argument("--profile", action="store_true", help="cudaProfilerStart/Stop around the timed rounds")
    p.add_argument("--serve", action="store_true", help="answer round/quit requests on stdin")
    return p.parse_args(argv)


def sgd(model):
    """timm's SGD parameter groups (no weight decay on biases and norms), fused where it can be."""
    groups = timm.optim.create_optimizer_v2(model, "sgd", lr=0.1, weight_decay=1e-4, momentum=0.9).param_groups
    groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in groups]
    for fused in ({"fused": True}, {"foreach": True}):
        try:
            return torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True, **fused), next(iter(fused))
        except (RuntimeError, TypeError, ValueError):
            continue
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True), "for-loop"


class Step:
    """One training step of a mode; `run()` returns nothing and reads the loss back."""

    def __init__(self, a):
        self.dev = torch.device(a.device)
        fmt = torch.channels_last if a.channels_last else torch.contiguous_format
        self.amp = {"float16": torch.float16, "bfloat16": torch.bfloat16, "none": None}[a.amp_dtype]
        # As on the kiln side, a ViT's position embedding is sized for the input.
        sized = {"img_size": a.img_size} if a.model.startswith(("vit_", "deit_")) else {}
        self.model = timm.create_model(a.model, num_classes=1000, **sized).to(self.dev, memory_format=fmt).train()
        self.opt, self.opt_impl = sgd(self.model)
        self.scaler = torch.amp.GradScaler(self.dev.type, enabled=self.amp == torch.float16)
        n, s = a.batch, a.img_size
        self.x = torch.randn(n, 3, s, s, device=self.dev).contiguous(memory_format=fmt)
        self.y = torch.arange(n, device=self.dev) * 7 % 1000
        self.forward = torch.compile(self.model) if a.mode == "compile" else self.model
        self.skipped = 0
        self.graph = None
        if a.mode == "graph":
            self.graph = GraphedStep(self)

    def loss(self):
        with torch.autocast(self.dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            return F.cross_entropy(self.forward(self.x), self.y)

    def run(self):
        if self.graph is not None:
            self.skipped += self.graph.replay()
            return
        loss = self.loss()
        self.opt.zero_grad(set_to_none=True)
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else None
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        if scale is not None and self.scaler.get_scale() < scale:
            self.skipped += 1
        loss.item()

    def loss_scale(self):
        if self.graph is not None:
            return self.graph.scale.item() if self.amp == torch.float16 else None
        return self.scaler.get_scale() if self.scaler.is_enabled() else None


class GraphedStep:
    """The whole step as one CUDA graph, GradScaler's arithmetic done by its device kernels."""

    def __init__(self, step):
        self.step = step
        self.f16 = step.amp == torch.float16
        dev = step.dev
        self.scale = torch.full((), 65536.0 if self.f16 else 1.0, device=dev)
        self.growth = torch.zeros((), dtype=torch.int32, device=dev)
        self.found_inf = torch.zeros((), device=dev)
        self.params = [p for g in step.opt.param_groups for p in g["params"]]
        # Warm up on a side stream (the optimizer makes its momentum buffers, cuDNN its plans).
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.body()
        torch.cuda.current_stream(dev).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        step.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.static_loss = self.body()

    def body(self):
        s = self.step
        s.opt.zero_grad(set_to_none=False)
        loss = s.loss()
        (loss * self.scale).backward()
        self.found_inf.zero_()
        grads = [p.grad for p in self.params if p.grad is not None]
        torch._amp_foreach_non_finite_check_and_unscale_(grads, self.found_inf, self.scale.reciprocal())
        # The fused SGD skips its update where found_inf is set (as GradScaler.step asks it to).
        s.opt.found_inf = self.found_inf
        s.opt.step()
        if self.f16:
            torch._amp_update_scale_(self.scale, self.growth, self.found_inf, 2.0, 0.5, 2000)
        return loss.detach()

    def replay(self):
        self.graph.replay()
        self.static_loss.item()
        return int(self.found_inf.item() > 0)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed_round(step, steps, seconds):
    """Whole steps until `steps` are done and `seconds` have passed: (steps, wall s, GPU s)."""
    dev = step.dev
    events = None
    if dev.type == "cuda":
        events = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        events[0].record()
    start = time.perf_counter()
    done = 0
    while done < steps or time.perf_counter() - start < seconds:
        step.run()
        done += 1
    if events:
        events[1].record()
    sync(dev)
    wall = time.perf_counter() - start
    gpu = events[0].elapsed_time(events[1]) / 1000 if events else 0.0
    return done, wall, gpu


def serve(step, a, setup_s):
    print(f"ready setup_s={setup_s:.2f} optimizer={step.opt_impl}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            break
        if len(words) != 2 or words[0] != "round":
            sys.exit(f"unknown request {line.strip()!r} (round <seconds> | quit)")
        done, wall, gpu = timed_round(step, 1, float(words[1]))
        print(f"round steps={done} img_s={done * a.batch / wall:.1f} wall_s={wall:.4f} gpu_s={gpu:.4f}", flush=True)
    peak = torch.cuda.max_memory_allocated(step.dev) / 2**20 if step.dev.type == "cuda" else 0.0
    scale = step.loss_scale()
    replays = "n/a" if step.graph is None else "yes"
    print(f"final skipped={step.skipped} loss_scale={scale if scale is not None else 'none'} "
          f"peak_mib={peak:.0f} replays={replays}", flush=True)


def main():
    a = parse_args()
    setup = time.perf_counter()
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    step = Step(a)
    timed_round(step, a.warmup, 0.0)
    if a.serve:
        serve(step, a, time.perf_counter() - setup)
        return
    if a.profile:
        torch.cuda.profiler.start()
    rates = []
    for _ in range(max(a.rounds, 1)):
        done, wall, _ = timed_round(step, a.steps, 0.0)
        rates.append(done * a.batch / wall)
    if a.profile:
        torch.cuda.profiler.stop()
    name = torch.cuda.get_device_name(step.dev) if step.dev.type == "cuda" else a.device
    print(
        f"torch {torch.__version__} {a.model} batch {a.batch} {a.img_size}x{a.img_size} on {name} "
        f"amp {a.amp_dtype} channels_last {a.channels_last} mode {a.mode} ({step.opt_impl} SGD): "
        f"{len(rates)} round(s) of {a.steps} steps, img/s {' '.join(f'{r:.1f}' for r in rates)}"
    )
    print(f"img/s: {sorted(rates)[len(rates) // 2]:.1f}")


if __name__ == "__main__":
    main()
