#!/usr/bin/env python3
"""Tests of pairs.py against stand-in servers that speak train_step's protocol with known
figures (python3 -m unittest discover -s scripts/bench -p 'test_*.py'; no torch needed)."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_history  # noqa: E402
import pairs  # noqa: E402

# A stand-in server: its img/s is RATE (from the environment, per side) times the round's index
# within the process (1, 2, ...) so that each pass's figure is known; FAIL_AT makes it exit at
# that round. It sees its side's flags as the real servers do.
STAND_IN = r'''
import os, sys
argv = sys.argv[1:]
mode = argv[argv.index("--mode") + 1] if "--mode" in argv else ("graph" if "--cuda-graph" in argv else "eager")
side = os.environ["SIDE"] + "_" + mode
rate = float(os.environ.get("RATE_" + side, "0"))
fail_at = int(os.environ.get("FAIL_AT_" + side, "0"))
print("a line the driver ignores", flush=True)
print("ready setup_s=1.5", flush=True)
n = 0
for line in sys.stdin:
    if line.strip() == "quit":
        break
    n += 1
    if n == fail_at:
        sys.exit(3)
    print(f"round steps=2 img_s={rate * n} wall_s=0.5 gpu_s=0.4", flush=True)
print("final skipped=1 loss_scale=32768.0 peak_mib=10 replays=0", flush=True)
'''


class Quartiles(unittest.TestCase):
    def test_odd_and_even_counts(self):
        self.assertEqual(pairs.quartiles([5.0]), (5.0, 5.0, 5.0))
        self.assertEqual(pairs.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]), (2.0, 3.0, 4.0))
        # numpy.percentile's linear rule: [1, 2, 3, 4] -> 1.75, 2.5, 3.25
        self.assertEqual(pairs.quartiles([4.0, 1.0, 3.0, 2.0]), (1.75, 2.5, 3.25))


class Telemetry(unittest.TestCase):
    def test_summary_of_samples(self):
        lines = ["2026/11/29 10:00:00.000, 1980, 2619, 40, 300.5, 0x0000000000000000",
                 "2026/11/29 10:00:00.500, 1755, 2619, 44, 650.0, 0x0000000000000004",
                 "garbage"]
        s = pairs.summarize_telemetry(lines)
        self.assertEqual(s["sm_mhz"], (1755.0, 1867.5, 1980.0))
        self.assertEqual(s["temp_c"], (40.0, 42.0, 44.0))
        self.assertEqual(s["throttle_reasons"], ["0x0000000000000000", "0x0000000000000004"])
        self.assertEqual(s["samples"], 2)


class History(unittest.TestCase):
    BLOCK = "\n".join(["text before", "```gpu-calls", "date,gpu,commit,call,row,amp,side,img_s",
                       "2026-11-26,H200,a,1,r_b64,float16,kiln eager,100",
                       "2026-11-26,H200,a,1,r_b64,float16,torch eager,80",
                       "2026-11-27,H100,b,1,r_b64,float16,kiln eager,120",
                       "2026-11-27,H100,b,1,r_b64,float16,torch eager,100",
                       "2026-11-28,H200,c,1,r_b64,float16,torch compile,90",
                       "```", "2026-01-01,H200,z,1,r_b64,float16,torch eager,999"])

    def test_best_median_and_latest(self):
        rows = gpu_history.records(self.BLOCK)
        self.assertEqual(len(rows), 5)
        out = gpu_history.report(rows)
        self.assertIn("| r_b64 | float16 | kiln eager | 2 | 120 | 110 | 120 (H100 2026-11-27) |", out)
        # The best PyTorch figure of any call and mode is 100; the median of 80, 100, 90 is 90.
        self.assertIn("latest 120 ÷ best PyTorch of any call 100 = 1.20×; ÷ median 90 = 1.33×", out)
        h200 = gpu_history.report([r for r in rows if r["gpu"] == "H200"])
        self.assertIn("latest 100 ÷ best PyTorch of any call 90 = 1.11×", h200)


class Driver(unittest.TestCase):
    def run_pairs(self, env, extra=()):
        out = tempfile.mkdtemp()
        script = os.path.join(out, "stand_in.py")
        with open(script, "w") as f:
            f.write(STAND_IN)
        old = dict(os.environ)
        os.environ.update(env)
        try:
            rc = pairs.main([
                "--kiln", f"env SIDE=kiln {sys.executable} {script}",
                "--torch", f"env SIDE=torch {sys.executable} {script}",
                "--out", out, "--rows", "m:8", "--amp", "float16", "--pairs", "4",
                "--seconds", "0.01", "--setup-timeout", "30", *extra])
        finally:
            os.environ.clear()
            os.environ.update(old)
        with open(os.path.join(out, "pairs.json")) as f, open(os.path.join(out, "pairs.md")) as m:
            return rc, json.load(f), m.read()

    def test_medians_ratios_and_the_best_pytorch_mode(self):
        rates = {"RATE_kiln_eager": "30", "RATE_kiln_graph": "40", "RATE_torch_eager": "20",
                 "RATE_torch_compile": "25", "RATE_torch_graph": "10"}
        rc, result, md = self.run_pairs(rates)
        self.assertEqual(rc, 0)
        s = result["rows"][0]["summary"]
        # Each side's rounds are rate × 1..5; the first pass (rate × 1) is dropped.
        self.assertEqual(s["sides"]["kiln eager"]["rounds"], [60.0, 90.0, 120.0, 150.0])
        self.assertEqual(s["sides"]["kiln eager"]["median"], 105.0)
        self.assertEqual(s["best_torch"], "torch compile")
        # Per pass, kiln ÷ torch compile is 30/25 (every pass scales both by the same n).
        self.assertAlmostEqual(s["ratios"]["kiln eager"]["median"], 1.2)
        self.assertAlmostEqual(s["ratios"]["kiln graph"]["median"], 1.6)
        self.assertEqual(len(s["ratios"]["kiln graph"]["pairs"]), 4)
        self.assertAlmostEqual(s["sides"]["kiln eager"]["gpu_busy"], 0.8)
        self.assertEqual(result["rows"][0]["sides"]["torch graph"]["final"]["skipped"], "1")
        self.assertIn("kiln graph ÷ torch compile: **1.60×**", md)
        self.assertIn("| torch compile (best PyTorch) | 87.5 | 68.8-106.2 | 50 75 100 125 |", md)
        self.assertRegex(md, r"\d{4}-\d\d-\d\d,cpu,unknown,1,m_b8,float16,kiln graph,140\n")

    def test_a_side_that_dies_fails_alone(self):
        rates = {"RATE_kiln_eager": "30", "RATE_torch_eager": "20", "RATE_torch_compile": "25",
                 "FAIL_AT_torch_eager": "3"}
        rc, result, md = self.run_pairs(rates, ["--kiln-modes", "eager", "--torch-modes", "eager,compile"])
        self.assertEqual(rc, 1)
        s = result["rows"][0]["summary"]
        self.assertIn("exited", s["sides"]["torch eager"]["error"])
        self.assertEqual(s["best_torch"], "torch compile")
        self.assertAlmostEqual(s["ratios"]["kiln eager"]["median"], 1.2)
        self.assertIn("| torch eager | FAILED: exited", md)

    def test_rows_past_the_budget_are_said_not_run(self):
        rc, result, md = self.run_pairs({"RATE_kiln_eager": "1"},
                                        ["--torch-modes", "", "--kiln-modes", "eager",
                                         "--seconds", "100", "--budget", "1"])
        self.assertEqual(result["rows"][0]["skipped"], "budget")
        self.assertIn("not run: the budget was spent", md)


if __name__ == "__main__":
    unittest.main()
