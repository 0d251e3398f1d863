"""LoRA-LEGO against peft's svd merge and KnOTS-TIES on Llama-2-7B shapes: time and peak memory.

20 random adapters, r=16, q_proj and v_proj (4096 × 4096), merged to rank 16 on the CPU with
one thread. Each merge runs in its own subprocess (`python -m bench.engine_lego --one
METHOD`), which loads the adapters from disk, merges and writes the result, and reports its
merge time and peak resident memory (ru_maxrss). Side by side on the first `--layers`
layers (default 2: peft's svd takes minutes per layer here), and LEGO alone on all 32
layers. The adapters are built once under the cache (about 0.7 GB for 32 layers). Writes
bench/results/engine_lego.json.
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
METHODS = ("lego", "svd", "knots_ties")
COMPARE_LAYERS = 2


def adapter_dirs(layers: int = LAYERS) -> list[Path]:
    """N random adapters with Llama-2-7B q/v shapes in the first `layers` layers (written
    once, float32 safetensors)."""
    root = cache_root() / ("bench-lego-1" + ("" if layers == LAYERS else f"-L{layers}"))
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
            for layer in range(layers)
            for proj in ("q_proj", "v_proj")
        }
        save_adapter(d, modules, base_model="meta-llama/Llama-2-7b-hf", task_type="CAUSAL_LM")
    (root / "done").write_text("ok\n")
    return dirs


def one(method: str, out: Path, layers: int) -> dict:
    """Run one merge in this process (the subprocess side)."""
    torch.set_num_threads(1)
    dirs = adapter_dirs(layers)
    t = time.perf_counter()
    if method == "lego":
        res = run_lego(dirs, out, LegoParams(k=RANK, device="cpu"))
    else:
        res = run_merge(method, dirs, out, rank=RANK)
    return {
        "method": method,
        "layers": layers,
        "seconds": round(time.perf_counter() - t, 2),
        "merge_s": res["timings"]["merge_s"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure(method: str, layers: int) -> dict:
    """One merge in a fresh subprocess: its own timings and peak RSS, plus the wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.engine_lego", "--one", method, "--out", f"{tmp}/o"]
            + ["--layers", str(layers)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["wall_s"] = round(time.perf_counter() - t, 2)
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench engine_lego")
    ap.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument(
        "--layers", type=int, default=COMPARE_LAYERS, help="layers for the side-by-side run"
    )
    args = ap.parse_args(argv or [])
    if args.one:
        print(json.dumps(one(args.one, Path(args.out), args.layers)))
        return {}
    # peft's svd forms and decomposes a dense 4096 × 4096 ΔW per module: minutes per layer
    # on one CPU thread. Side by side on `--layers` layers, and LEGO alone on all 32.
    adapter_dirs(args.layers), adapter_dirs(LAYERS)  # built here, outside the measurements
    both = [measure(m, args.layers) for m in METHODS]
    full = measure("lego", LAYERS)
    lego, svd, knots = both
    result = {
        "benchmark": "engine_lego",
        "adapters": N,
        "rank": RANK,
        "hidden": HIDDEN,
        "targets": ["q_proj", "v_proj"],
        "threads": 1,
        "inputs_mb_per_layer": round(N * 2 * 2 * RANK * HIDDEN * 4 / 2**20, 2),
        "side_by_side": {"layers": args.layers, "runs": both},
        "lego_all_layers": full,
        "svd_over_lego_time": round(svd["merge_s"] / lego["merge_s"], 2),
        "svd_over_lego_peak_rss": round(svd["peak_rss_mb"] / lego["peak_rss_mb"], 3),
        "knots_over_lego_time": round(knots["merge_s"] / lego["merge_s"], 2),
        "knots_over_lego_peak_rss": round(knots["peak_rss_mb"] / lego["peak_rss_mb"], 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_lego.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
