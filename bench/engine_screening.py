"""Screening speed and memory: N candidate adapters (200 and 1,000) scored alone on 5 examples.

For the tiny T5 and a T5-base shape (random weights, r=16 on q and v: `engine_speed`'s
fixtures), the candidates are N adapter directories read from disk while screening
(`screening.screen`, the default LoraHub mode's first step, 16 candidates per forward).
Each directory links to the files of one of the fixture's 20 adapters, so that 1,000
candidates do not take 1,000 copies on disk; every one is still read and parsed.
Reported: seconds, milliseconds per candidate, forward passes per candidate (screening
time / (N × one plain forward pass of the 5 examples, timed before and after)), and the
process's peak resident memory during screening above what it held before, beside the
memory that stacking all N at once would take. One CPU thread.
Writes bench/results/engine_screening.json.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil
import torch

from bench.engine_speed import RESULTS, examples, fixture, plain_forward
from composer.engine.adapters import CONFIG_NAME, WEIGHTS_NAME, load_adapter
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.lorahub import Scorer
from composer.engine.screening import adapter_bytes, screen
from composer.engine.training import cache_root

COUNTS = (200, 1000)
BATCH = 16


def candidates(shape: str, fixtures: list[Path], n: int) -> list[Path]:
    """n candidate directories, each linking to one fixture adapter's files."""
    root = cache_root() / "bench-screening-1" / shape
    dirs = []
    for i in range(n):
        d = root / f"c{i:04d}"
        if not d.exists():
            d.mkdir(parents=True)
            for name in (CONFIG_NAME, WEIGHTS_NAME):
                (d / name).symlink_to(fixtures[i % len(fixtures)] / name)
        dirs.append(d)
    return dirs


class PeakRss:
    """The process's resident memory, sampled every 10 ms in a thread: the peak above start."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.start = self.peak = self.proc.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mib(self) -> float:
        return round((self.peak - self.start) / 2**20, 1)


def forward_seconds(forward, reps: int) -> float:
    forward()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        forward()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_shape(shape: str, counts, result: dict) -> None:
    base, fixtures = fixture(shape)
    model, tok = load_base_model(base), load_tokenizer(base)
    exs = examples()
    forward = plain_forward(model, tok, exs)
    reps = 20 if shape == "tiny" else 5
    per_adapter = adapter_bytes(load_adapter(fixtures[0]))
    for n in counts:
        dirs = candidates(shape, fixtures, n)
        before = forward_seconds(forward, reps)
        scorer = Scorer(model, tok, exs)
        with PeakRss() as rss:
            t = time.perf_counter()
            table, _ = screen(
                model, scorer, dirs, l1=0.05, loss_norm="reference", batch=BATCH, keep=5
            )
            seconds = time.perf_counter() - t
        t_forward = (before + forward_seconds(forward, reps)) / 2
        assert len(table) == n
        result["rows"].append(
            {
                "shape": shape,
                "candidates": n,
                "batch": BATCH,
                "seconds": round(seconds, 2),
                "ms_per_candidate": round(1000 * seconds / n, 2),
                "forward_ms": round(1000 * t_forward, 2),
                "forward_passes_per_candidate": round(seconds / (n * t_forward), 3),
                "peak_rss_above_start_mib": rss.mib,
                "all_at_once_stack_mib": round(n * per_adapter / 2**20, 1),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
        print(result["rows"][-1], flush=True)
        write(result)  # after every row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench engine_screening")
    ap.add_argument("--shapes", nargs="*", default=["tiny", "t5-base"])
    ap.add_argument("--counts", nargs="*", type=int, default=list(COUNTS))
    args = ap.parse_args(argv or [])
    torch.set_num_threads(1)  # stable ratios on a shared machine
    result = {"benchmark": "engine_screening", "threads": 1, "rows": []}
    for shape in args.shapes:
        bench_shape(shape, args.counts, result)
    return result


def write(result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_screening.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
