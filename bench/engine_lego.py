"""LoRA-LEGO against peft's svd merge on Llama-2-7B shapes: time and peak memory.

20 random adapters, r=16, q_proj and v_proj in 32 layers (4096 × 4096), merged to rank 16 on
the CPU. Each merge runs in its own subprocess (`python -m bench.engine_lego --one METHOD`),
which loads the adapters from disk, merges and writes the result; the parent records its
wall time, the merge time and its peak resident memory (ru_maxrss). The adapters are built
once under the cache (about 0.7 GB). Writes bench/results/engine_lego.json.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from composer.engine.adapters import LoraModule, save_adapter
from composer.engine.lego import LegoParams
from composer.engine.run import run_lego, run_merge
from composer.engine.training import cache_root

RESULTS = Path(__file__).parent / "results"
N, RANK, LAYERS, HIDDEN = 20, 16, 32, 4096
METHODS = ("lego", "svd")


def adapter_dirs() -> list[Path]:
    """N random adapters with Llama-2-7B q/v shapes (written once, float32 safetensors)."""
    root = cache_root() / "bench-lego-1"
    dirs = [root / f"adapter{i:02d}" for i in range(N)]
    if (root / "done").exists():
        return dirs
    gen = torch.Generator().manual_seed(0)
    for d in dirs:
        modules = {
            f"model.layers.{layer}.self_attn.{proj}": LoraModule(
                A=torch.randn(RANK, HIDDEN, generator=gen) / HIDDEN**0.5,
                B=torch.randn(HIDDEN, RANK, generator=gen) * 0.01,
                scale=2.0,
            )
            for layer in range(LAYERS)
            for proj in ("q_proj", "v_proj")
        }
        save_adapter(d, modules, base_model="meta-llama/Llama-2-7b-hf", task_type="CAUSAL_LM")
    (root / "done").write_text("ok\n")
    return dirs


def one(method: str, out: Path) -> dict:
    """Run one merge in this process (the subprocess side)."""
    torch.set_num_threads(1)
    dirs = adapter_dirs()
    t = time.perf_counter()
    if method == "lego":
        res = run_lego(dirs, out, LegoParams(k=RANK, device="cpu"))
    else:
        res = run_merge("svd", dirs, out, rank=RANK)
    return {
        "method": method,
        "seconds": round(time.perf_counter() - t, 2),
        "merge_s": res["timings"]["merge_s"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench engine_lego")
    ap.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv or [])
    if args.one:
        print(json.dumps(one(args.one, Path(args.out))))
        return {}
    dirs = adapter_dirs()
    size_mb = sum(f.stat().st_size for d in dirs for f in d.iterdir()) / 2**20
    rows = []
    for method in METHODS:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "bench.engine_lego", "--one", method, "--out", f"{tmp}/o"],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["wall_s"] = round(time.perf_counter() - t, 2)
        print(row, flush=True)
        rows.append(row)
    lego, svd = rows
    result = {
        "benchmark": "engine_lego",
        "adapters": N,
        "rank": RANK,
        "layers": LAYERS,
        "hidden": HIDDEN,
        "targets": ["q_proj", "v_proj"],
        "inputs_mb": round(size_mb, 1),
        "threads": 1,
        "runs": rows,
        "lego_vs_svd_time": round(lego["merge_s"] / svd["merge_s"], 3),
        "lego_vs_svd_peak_rss": round(lego["peak_rss_mb"] / svd["peak_rss_mb"], 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_lego.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
