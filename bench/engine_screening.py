"""Screening speed and memory: N candidate adapters scored alone on 5 examples.

For the tiny T5 and a T5-base shape (random weights, r=16 on q and v: `engine_speed`'s
fixtures), the candidates are N adapter directories read from disk while screening
(`screening.screen`, the default LoraHub mode's first step). Each directory links to the
files of one of the fixture's 20 adapters, so that 1,000 candidates do not take 1,000
copies on disk; every one is still read, hashed and parsed.
Parts: (a) "batch": a fixed number of candidates at C = 4, 8, 16, 32 and 64 per forward,
with the floor (the base model alone on the examples repeated C times, per candidate);
(b) "prefetch": 200 candidates at the default C with the next chunk read in a thread, and
without; (c) "scale": 200 and 1,000 candidates at the default C. The variants of a part
run in turn, `--rounds` times (median).
Reported: seconds, milliseconds per candidate, split into reading and checking the files
(in whichever thread), screening waiting for them, and composing + the batched forward;
forward passes per candidate (screening time / (N × one plain forward pass of the 5
examples)); the process's peak resident memory during screening above what it held
before, beside what stacking all N at once would take. The plain forward pass (its
fastest of 3 in a row: the steady state) is timed before and after every 16 candidates or
so (median of those), so that a machine whose load changes during a run sways both sides
alike; that time is not counted as screening. One CPU thread for torch.
Writes bench/results/engine_screening.json (`--out`), keeping the rows of the shapes and
parts not run.
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

from bench.engine_speed import RESULTS, SHAPES, examples, fixture, plain_forward
from composer.engine.adapters import CONFIG_NAME, WEIGHTS_NAME, load_adapter
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.lorahub import LoraHubParams, Scorer
from composer.engine.screening import adapter_bytes, screen
from composer.engine.training import cache_root

COUNTS = (200, 1000)
BATCHES = (4, 8, 16, 32, 64)
PREFETCH_COUNT = 200
SAMPLE_EVERY = 16  # candidates between two timings of the plain forward pass
ROUNDS = {"tiny": 5, "t5-base": 1}  # runs of each variant, in turn (median)
PARTS = ("batch", "prefetch", "scale")


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


def seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def floor(scorer, forward, batch: int, rounds: int) -> dict:
    """The base model's forward and loss on the examples repeated `batch` times, per
    candidate, in plain forward passes: what scoring costs with nothing to read or compose."""
    ratios = []
    for _ in range(rounds):
        batched = min(seconds(lambda: scorer.losses(batch)) for _ in range(3))
        ratios.append(batched / batch / min(seconds(forward) for _ in range(3)))
    return {"floor_passes_per_candidate": statistics.median(ratios)}


def screen_row(model, scorer, forward, dirs, *, batch: int, prefetch: bool) -> dict:
    """Screen `dirs`; the plain forward pass timed before and after every SAMPLE_EVERY."""
    samples, sampling = [], [0.0]
    due = [SAMPLE_EVERY]

    def sample():  # the fastest of 3 in a row: the steady state (the smaller, stricter unit)
        t = time.perf_counter()
        samples.append(min(seconds(forward) for _ in range(3)))
        sampling[0] += time.perf_counter() - t

    def on_chunk(done, _best):
        if done >= due[0] or done == len(dirs):
            sample()
            due[0] = done + SAMPLE_EVERY

    sample()
    first = sampling[0]
    timings: dict[str, float] = {}
    with PeakRss() as rss:
        t = time.perf_counter()
        table, _ = screen(
            model,
            scorer,
            dirs,
            l1=0.05,
            loss_norm="reference",
            batch=batch,
            keep=5,
            on_chunk=on_chunk,
            prefetch=prefetch,
            timings=timings,
        )
        screening = time.perf_counter() - t - sampling[0] + first
    n = len(dirs)
    assert len(table) == n
    t_forward = statistics.median(samples)
    return {
        "seconds": screening,
        "ms_per_candidate": 1000 * screening / n,
        "read_check_ms_per_candidate": 1000 * timings["read_s"] / n,
        "wait_ms_per_candidate": 1000 * timings["wait_s"] / n,
        "forward_ms_per_candidate": 1000 * timings["forward_s"] / n,
        "plain_forward_ms": 1000 * t_forward,
        "forward_passes_per_candidate": screening / (n * t_forward),
        "batched_forward_passes_per_candidate": timings["forward_s"] / (n * t_forward),
        "peak_rss_above_start_mib": rss.mib,
        "load_average_1m": os.getloadavg()[0],
    }


def summary(runs: list[dict]) -> dict:
    """The median of each figure over the rounds (peak memory: the largest)."""
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["peak_rss_above_start_mib"] = max(r["peak_rss_above_start_mib"] for r in runs)
    out = {k: round(v, 3 if "passes" in k else 2) for k, v in out.items()}
    loads = [r["load_average_1m"] for r in runs]
    return {**out, "load_average_1m_range": [round(min(loads), 2), round(max(loads), 2)]}


def bench_shape(shape: str, args, result: dict) -> None:
    base, fixtures = fixture(shape)
    model, tok = load_base_model(base), load_tokenizer(base)
    exs = examples()
    forward = plain_forward(model, tok, exs)
    scorer = Scorer(model, tok, exs)
    per_adapter = adapter_bytes(load_adapter(fixtures[0]))
    parts = {  # variants (candidates, batch, prefetch)
        "batch": [(args.batch_count, c, True) for c in args.batches],
        "prefetch": [(PREFETCH_COUNT, args.batch, p) for p in (False, True)],
        "scale": [(n, args.batch, True) for n in args.counts],
    }
    rounds = args.rounds or ROUNDS[shape]
    for part in args.parts:
        variants = parts[part]
        runs: dict[tuple, list[dict]] = {v: [] for v in variants}
        for r in range(rounds):  # the variants in turn, each round starting with the next
            k = r % len(variants)
            for n, batch, prefetch in variants[k:] + variants[:k]:
                dirs = candidates(shape, fixtures, n)
                row = screen_row(model, scorer, forward, dirs, batch=batch, prefetch=prefetch)
                if part == "batch":
                    row |= floor(scorer, forward, batch, rounds)
                runs[n, batch, prefetch].append(row)
        for (n, batch, prefetch), rows in runs.items():
            row = {"shape": shape, "part": part, "candidates": n, "batch": batch}
            row |= {"prefetch": prefetch, "rounds": rounds, **summary(rows)}
            row["all_at_once_stack_mib"] = round(n * per_adapter / 2**20, 1)
            result["rows"].append(row)
            print(row, flush=True)
        write(result, args.out)  # after every part


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench engine_screening")
    ap.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=SHAPES)
    ap.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    ap.add_argument("--counts", nargs="*", type=int, default=list(COUNTS))
    ap.add_argument("--batches", nargs="*", type=int, default=list(BATCHES))
    ap.add_argument("--batch-count", type=int, default=128, help="candidates per batch row")
    ap.add_argument("--batch", type=int, default=LoraHubParams().screen_batch)
    ap.add_argument("--rounds", type=int, help="runs of each variant (default: per shape)")
    ap.add_argument("--out", default="engine_screening.json", help="file in bench/results")
    args = ap.parse_args(argv or [])
    torch.set_num_threads(1)  # stable ratios on a shared machine
    result = {"benchmark": "engine_screening", "threads": 1, "rows": []}
    for shape in args.shapes:
        bench_shape(shape, args, result)
    return result


def row_key(row: dict) -> tuple[int, int]:
    return list(SHAPES).index(row["shape"]), PARTS.index(row["part"])


def write(result: dict, name: str) -> None:
    """Into bench/results/`name`, keeping the rows of the shapes and parts not run now."""
    path = RESULTS / name
    RESULTS.mkdir(exist_ok=True)
    ran = {row_key(r) for r in result["rows"]}
    kept = json.loads(path.read_text())["rows"] if path.exists() else []
    rows = [r for r in kept if r.get("part") in PARTS and row_key(r) not in ran] + result["rows"]
    rows.sort(key=row_key)
    path.write_text(json.dumps({**result, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
