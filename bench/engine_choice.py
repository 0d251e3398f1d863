"""How the default LoraHub mode's settings were chosen: the pull toward the screened winner
(`prior`) and the number of candidates searched (`top_k`), against pick.

For every held-out task of a trained suite and every seed: 5 examples to compose, 100 other
examples to test (`engine_quality.split`); pick (the screened winner alone) and the screened
mode at each setting, all other parameters at their defaults. Reported per setting: mean
exact match over the tasks (each task's mean over the seeds), the worst task's difference
to pick, how often a mix replaced the winner. Exact match is deterministic for a seed, so
the figures do not depend on the machine's load.
`python -m bench.engine_choice --kind llama [--quick] --seeds 6 --prior 0 0.25 0.5 1 2
--top-k 3 5 8` (every prior at the default K, every K at the default prior). Writes
bench/results/engine_choice_<kind>[_quick].json.
"""

import argparse
import json
import sys
import time

import torch

from bench.engine_quality import RESULTS, em_with_weights, split
from composer.engine import synthetic
from composer.engine.adapters import load_adapters
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.lorahub import LoraHubParams, compose
from composer.engine.training import ensure_suite


def settings(priors: list[float], top_ks: list[int]) -> dict[str, dict]:
    """Each prior at the default K, then each other K at the default prior."""
    d = LoraHubParams()
    out = {f"prior={p:g}": {"prior": p} for p in priors}
    out |= {f"top_k={k}": {"top_k": k} for k in top_ks if k != d.top_k}
    return out


def task_scores(model, tok, adapters, task, suffix, seeds: int, grid: dict) -> dict:
    """Test exact match of pick and of every setting, per seed, and how often a mix won."""
    n = len(adapters)
    scores = {"pick": [], **{name: [] for name in grid}}
    mixed = {name: 0 for name in grid}
    for seed in range(seeds):
        examples, test = split(task, seed, suffix)
        pick = None
        for name, overrides in grid.items():
            res = compose(model, tok, adapters, examples, LoraHubParams(seed=seed, **overrides))
            if pick is None:  # the screened winner does not depend on the search's settings
                winner = [float(i == res.selected[0]) for i in range(n)]
                pick = em_with_weights(model, tok, adapters, winner, test)
                scores["pick"].append(pick)
            mixed[name] += bool(res.choice["mixed"])
            em = (
                em_with_weights(model, tok, adapters, res.weights, test)
                if res.choice["mixed"]
                else pick
            )
            scores[name].append(em)
    return {
        "task": task.name,
        **{name: sum(v) / len(v) for name, v in scores.items()},
        "mixed": mixed,
    }


def summary(rows: list[dict], grid: dict) -> dict:
    out = {}
    for name in ["pick", *grid]:
        out[name] = {
            "mean": sum(r[name] for r in rows) / len(rows),
            "worst_vs_pick": min(r[name] - r["pick"] for r in rows),
        }
        if name != "pick":
            out[name]["mixes"] = sum(r["mixed"][name] for r in rows)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.engine_choice")
    ap.add_argument("--kind", default="llama", choices=["t5", "llama"])
    ap.add_argument("--quick", action="store_true", help="use the quick suite")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--prior", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    ap.add_argument("--top-k", type=int, nargs="+", default=[3, 5, 8])
    args = ap.parse_args(argv or [])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    suite = ensure_suite(args.kind, quick=args.quick)
    model, tok = load_base_model(suite.base_dir), load_tokenizer(suite.base_dir)
    adapters = load_adapters([suite.adapters[t] for t in suite.train_tasks])
    grid = settings(args.prior, args.top_k)
    rows = []
    for name in suite.heldout_tasks:
        task = synthetic.get_task(name)
        rows.append(task_scores(model, tok, adapters, task, suite.info["suffix"], args.seeds, grid))
        print(
            "  ".join(
                f"{k}={v:.2f}" if isinstance(v, float) else f"{v}" for k, v in rows[-1].items()
            )
        )
    result = {
        "benchmark": "engine_choice",
        "suite": {"kind": suite.kind, "quick": args.quick},
        "candidates": len(adapters),
        "seeds": args.seeds,
        "settings": grid,
        "tasks": rows,
        "summary": summary(rows, grid),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"engine_choice_{suite.kind}{'_quick' * args.quick}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, s in result["summary"].items():
        print(f"{name:12s} mean {s['mean']:.3f}  worst vs pick {s['worst_vs_pick']:+.3f}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
