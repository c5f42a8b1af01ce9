#!/usr/bin/env python3
"""kiln against PyTorch on training steps, interleaved in one call: the GPU table of
scripts/gpu-accept.sh.

    python3 scripts/bench/pairs.py --kiln .gpu/bin/train_step \
        --torch "python3 scripts/bench/torch_train_step.py" --out DIR \
        [--rows resnet50:128,vit_base_patch16_224:64] [--amp float16,bfloat16] [--img-size 224]
        [--kiln-modes eager,graph] [--torch-modes eager,compile,graph] [--pairs 4]
        [--seconds 3] [--budget S] [--device cuda] [--seed 0]

For each row (model:batch) and AMP dtype, every side (kiln eager, kiln --cuda-graph, PyTorch
eager, torch.compile, CUDA-graphed PyTorch) is started once as a server (examples/train_step.rs
--serve, torch_train_step.py --serve) and warmed up, its setup time (torch.compile's included)
reported apart. Then `--pairs` + 1 passes: each pass asks every side, in a shuffled order (seeded
by the pass), for one round of whole steps lasting at least `--seconds`; the first pass is
dropped. A side's figure is the true median of its rounds, shown with every round and the
interquartile range; CUDA-event GPU time is shown beside wall time. The headline of a row is
the median over passes of kiln's img/s over that pass's figure of the better PyTorch mode (the
one with the higher median), for kiln eager and kiln --cuda-graph apart. Skipped steps and the
final loss scale come from each server's `final` line. During the run nvidia-smi samples clocks,
temperature, power and throttle reasons (where it exists); the CPU model and load are logged.
Writes DIR/pairs.json (every figure) and DIR/pairs.md (the tables), and prints the tables.
"""
import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import threading
import time


def quartiles(xs):
    """(q1, median, q3) of xs, by linear interpolation between order statistics."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0], s[0], s[0]

    def q(p):
        k = (len(s) - 1) * p
        lo = int(k)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (k - lo)

    return q(0.25), q(0.5), q(0.75)


def parse_fields(line):
    """`round steps=3 img_s=9.5` -> ('round', {'steps': '3', 'img_s': '9.5'})."""
    words = line.split()
    if not words:
        return None, {}
    return words[0], dict(w.split("=", 1) for w in words[1:] if "=" in w)


class Server:
    """One side's process: started, warmed, then asked for rounds on stdin."""

    def __init__(self, name, argv, log_path):
        self.name = name
        self.log = open(log_path, "w")
        self.log.write("$ " + " ".join(map(shlex.quote, argv)) + "\n")
        self.log.flush()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        self.error = None
        self.ready = {}
        self.final = {}

    def expect(self, kind, timeout):
        """The fields of the next `kind` line within `timeout` s; other lines go to the log."""
        box = {}

        def read():
            for line in self.proc.stdout:
                self.log.write(line)
                tag, fields = parse_fields(line)
                if tag == kind:
                    box["fields"] = fields
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if "fields" in box:
            return box["fields"]
        self.fail(f"no '{kind}' line within {timeout:.0f} s" if reader.is_alive() else
                  f"exited ({self.proc.poll()}) before a '{kind}' line")
        return None

    def ask(self, request, kind, timeout):
        if self.error:
            return None
        try:
            self.proc.stdin.write(request + "\n")
            self.proc.stdin.flush()
        except OSError as e:
            self.fail(f"stdin closed: {e}")
            return None
        return self.expect(kind, timeout)

    def fail(self, why):
        self.error = self.error or why
        self.log.write(f"pairs.py: {self.name}: {why}\n")
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self):
        if not self.error:
            self.final = self.ask("quit", "final", 60) or {}
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def side_commands(a, model, batch, amp):
    """(side name, argv) for every side of one row."""
    common = ["--model", model, "--batch", str(batch), "--amp-dtype", amp, "--img-size",
              str(a.img_size), "--device", a.device, "--warmup", str(a.warmup), "--serve"]
    sides = []
    for mode in a.kiln_modes:
        extra = ["--cuda-graph"] if mode == "graph" else []
        sides.append((f"kiln {mode}", shlex.split(a.kiln) + common + extra))
    for mode in a.torch_modes if a.torch else []:
        sides.append((f"torch {mode}", shlex.split(a.torch) + common + ["--mode", mode]))
    return sides


def run_row(a, model, batch, amp, out):
    """Every side's rounds for one row: {side: {...}}."""
    tag = f"{model}_b{batch}_{amp}"
    servers = [Server(name, argv, os.path.join(out, f"{tag}_{name.replace(' ', '_')}.log"))
               for name, argv in side_commands(a, model, batch, amp)]
    for s in servers:
        s.ready = s.expect("ready", a.setup_timeout) or {}
    rounds = {s.name: [] for s in servers}
    for p in range(a.pairs + 1):
        order = list(servers)
        random.Random(a.seed * 1000 + p).shuffle(order)
        for s in order:
            r = s.ask(f"round {a.seconds}", "round", a.seconds * 20 + 60)
            if r is not None:
                rounds[s.name].append({"pass": p, **{k: float(v) for k, v in r.items()}})
    for s in servers:
        s.close()
    return {s.name: {"rounds": rounds[s.name], "ready": s.ready, "final": s.final,
                     "error": s.error} for s in servers}


def summarize(sides):
    """Medians, IQRs and the per-pass ratios of one row's sides (first pass dropped)."""
    stats = {}
    for name, side in sides.items():
        kept = [r for r in side["rounds"] if r["pass"] > 0]
        if side["error"] or not kept:
            stats[name] = {"error": side["error"] or "no rounds"}
            continue
        q1, med, q3 = quartiles([r["img_s"] for r in kept])
        gpu = sum(r["gpu_s"] for r in kept) / max(sum(r["wall_s"] for r in kept), 1e-9)
        stats[name] = {"median": med, "iqr": (q1, q3), "rounds": [r["img_s"] for r in kept],
                       "gpu_busy": gpu, "by_pass": {r["pass"]: r["img_s"] for r in kept}}
    torch_ok = {n: s for n, s in stats.items() if n.startswith("torch") and "median" in s}
    best = max(torch_ok, key=lambda n: torch_ok[n]["median"]) if torch_ok else None
    ratios = {}
    for name, s in stats.items():
        if not name.startswith("kiln") or "median" not in s or best is None:
            continue
        theirs = stats[best]["by_pass"]
        per_pass = [v / theirs[p] for p, v in s["by_pass"].items() if theirs.get(p)]
        if per_pass:
            ratios[name] = {"median": statistics.median(per_pass), "pairs": per_pass}
    return {"sides": stats, "best_torch": best, "ratios": ratios}


def table(row, amp, sides, summary):
    lines = [f"### {row}, AMP {amp}", "",
             "| side | median img/s | IQR | rounds (img/s) | GPU busy | setup s | skipped | loss scale |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for name, s in summary["sides"].items():
        ready, final = sides[name]["ready"], sides[name]["final"]
        if "error" in s:
            lines.append(f"| {name} | FAILED: {s['error']} | | | | {ready.get('setup_s', '-')} | | |")
            continue
        best = " (best PyTorch)" if name == summary["best_torch"] else ""
        lines.append(
            f"| {name}{best} | {s['median']:.1f} | {s['iqr'][0]:.1f}-{s['iqr'][1]:.1f} | "
            f"{' '.join(f'{x:.0f}' for x in s['rounds'])} | {100 * s['gpu_busy']:.0f} % | "
            f"{ready.get('setup_s', '-')} | {final.get('skipped', '-')} | {final.get('loss_scale', '-')} |")
    for name, r in summary["ratios"].items():
        lines.append(f"\n{name} ÷ {summary['best_torch']}: **{r['median']:.2f}×** (median of "
                     f"{len(r['pairs'])} pairs: {' '.join(f'{x:.2f}' for x in r['pairs'])})")
    return "\n".join(lines) + "\n"


class Telemetry:
    """nvidia-smi sampling in the background, and the host's CPU and load."""

    QUERY = "timestamp,clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active"

    def __init__(self, out):
        self.path = os.path.join(out, "telemetry.csv")
        self.proc = None
        self.host = {"cpu": cpu_model(), "load_start": os.getloadavg()}
        try:
            self.host["gpu_name"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                text=True, timeout=30).stdout.strip().splitlines()[0].replace("NVIDIA ", "").split()[0]
            self.host["gpu_apps_before"] = subprocess.run(
                ["nvidia-smi", "--query-compute-apps=pid,process_name", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
            with open(self.path, "w") as samples:
                self.proc = subprocess.Popen(
                    ["nvidia-smi", f"--query-gpu={self.QUERY}", "--format=csv,noheader,nounits",
                     "-lms", "500"], stdout=samples, stderr=subprocess.DEVNULL)
        except (OSError, IndexError, subprocess.TimeoutExpired):
            self.host["gpu_apps_before"] = "no nvidia-smi"

    def stop(self):
        self.host["load_end"] = os.getloadavg()
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            with open(self.path) as f:
                self.host["gpu"] = summarize_telemetry(f.read().splitlines())
        return self.host


def summarize_telemetry(lines):
    """Min, median and max of the SM clock, temperature and power; the throttle reasons seen."""
    cols = {"sm_mhz": [], "temp_c": [], "power_w": []}
    reasons = set()
    for line in lines:
        f = [x.strip() for x in line.split(",")]
        if len(f) < 6:
            continue
        try:
            cols["sm_mhz"].append(float(f[1]))
            cols["temp_c"].append(float(f[3]))
            cols["power_w"].append(float(f[4]))
        except ValueError:
            continue
        reasons.add(f[5])
    out = {k: (min(v), statistics.median(v), max(v)) for k, v in cols.items() if v}
    out["throttle_reasons"] = sorted(reasons)
    out["samples"] = len(cols["sm_mhz"])
    return out


def gpu_calls_lines(results, gpu, commit):
    """BENCHMARKS.md's machine-read lines of this call: each side's median of each row."""
    date = time.strftime("%Y-%m-%d", time.gmtime())
    out = []
    for r in results:
        if "summary" not in r:
            continue
        model, batch = r["row"].rsplit(":", 1)
        for side, s in r["summary"]["sides"].items():
            if "median" in s:
                out.append(f"{date},{gpu},{commit},1,{model}_b{batch},{r['amp']},{side},{s['median']:.0f}")
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return f"unknown ({os.cpu_count()} CPUs)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kiln", required=True, help="the kiln server command (examples/train_step)")
    p.add_argument("--torch", default="", help="the PyTorch server command; empty: kiln alone")
    p.add_argument("--out", required=True)
    p.add_argument("--rows", default="resnet50:128,efficientnet_b0:128,mobilenetv3_large_100:128,"
                   "convnext_tiny:128,vit_base_patch16_224:64,swin_tiny_patch4_window7_224:64,resnet50:2")
    p.add_argument("--amp", default="bfloat16,float16")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--kiln-modes", default="eager,graph")
    p.add_argument("--torch-modes", default="eager,compile,graph")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--setup-timeout", type=float, default=300)
    p.add_argument("--budget", type=float, default=0, help="seconds for the whole table (0: no limit)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--commit", default="unknown", help="kiln's commit, for the gpu-calls lines")
    a = p.parse_args(argv)
    a.kiln_modes = [m for m in a.kiln_modes.split(",") if m]
    a.torch_modes = [m for m in a.torch_modes.split(",") if m]
    os.makedirs(a.out, exist_ok=True)
    end = time.time() + a.budget if a.budget else None
    telemetry = Telemetry(a.out)
    results, text = [], []
    n_sides = len(a.kiln_modes) + (len(a.torch_modes) if a.torch else 0)
    for row in a.rows.split(","):
        model, batch = row.rsplit(":", 1)
        for amp in a.amp.split(","):
            need = n_sides * (a.pairs + 1) * a.seconds * 1.2
            if end and time.time() + need > end:
                text.append(f"### {row}, AMP {amp}\n\nnot run: the budget was spent\n")
                results.append({"row": row, "amp": amp, "skipped": "budget"})
                continue
            sides = run_row(a, model, int(batch), amp, a.out)
            summary = summarize(sides)
            results.append({"row": row, "amp": amp, "sides": sides, "summary": summary})
            text.append(table(row, amp, sides, summary))
            print(text[-1], flush=True)
    host = telemetry.stop()
    head = (f"CPU {host['cpu']}; load {host['load_start']} at the start, {host['load_end']} at the end; "
            f"GPU processes before: {host['gpu_apps_before'] or 'none'}; telemetry {host.get('gpu', 'none')}")
    print(head)
    with open(os.path.join(a.out, "pairs.json"), "w") as f:
        json.dump({"host": host, "rows": results, "args": vars(a)}, f, indent=1)
    calls = gpu_calls_lines(results, host.get("gpu_name", "cpu"), a.commit)
    with open(os.path.join(a.out, "pairs.md"), "w") as f:
        f.write(head + "\n\n" + "\n".join(text))
        f.write("\nFor BENCHMARKS.md's gpu-calls block (scripts/bench/gpu_history.py):\n\n```\n"
                + "\n".join(calls) + "\n```\n")
    failed = [f"{r['row']} {r['amp']} {n}" for r in results if "summary" in r
              for n, s in r["summary"]["sides"].items() if "error" in s]
    if failed:
        print("failed sides: " + "; ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
