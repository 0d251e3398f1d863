"""Composition quality on held-out tasks: base, uniform, LoraHub, pick, oracle, reality checks.

For every held-out task of a trained suite (`--kind`, the Llama's by default; no adapter
saw the task): 5 examples to compose, 100 other examples to test, exact match of
- the base model alone,
- the uniform average of the candidates (w_i = 1/N, A and B mixed as LoraHub mixes them),
- LoraHub in the modes of `modes()`, mean and best over the seeds: the paper's search
  (reference), "pick" (the candidate with the lowest loss on the 5 examples: screening
  alone), the default screened mode, and the same without its pull toward the screened
  winner (prior 0) and without its leave-one-out guard,
- the best single candidate (oracle: it peeks at the test set),
- reality checks: a LoRA fine-tuned on the same 5 examples, and the default mode over a
  pool of N random-weight LoRAs of the candidates' shapes and scale (`random_pool`).
`--set mix` runs the chained tasks of `synthetic.MIX_TASKS` (two operations that each have
an adapter) instead of the suite's held-out tasks. Writes
bench/results/engine_quality_<kind>[_quick][_mix].json.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from composer.engine import synthetic
from composer.engine.adapters import LoraAdapter, LoraModule, load_adapter, load_adapters
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.lorahub import LoraHubParams, compose
from composer.engine.run import evaluate_composed
from composer.engine.training import ensure_suite, train_lora

RESULTS = Path(__file__).parent / "results"
N_COMPOSE, N_TEST = 5, 100
SEEDS = range(5)


def modes(n: int) -> dict[str, LoraHubParams]:
    """For n candidates, all at the budget of the paper's settings (40 evaluations) except
    pick, which is screening alone (n evaluations)."""
    return {
        "reference": LoraHubParams.reference(),
        "pick": LoraHubParams(budget=n),
        "screen": LoraHubParams(),
        "screen_noprior": LoraHubParams(prior=0.0),
        "screen_noguard": LoraHubParams(guard="none"),
    }


def random_pool(adapters: list[LoraAdapter], seed: int = 0) -> list[LoraAdapter]:
    """As many adapters of the same shapes as `adapters`, with Gaussian weights of the same
    per-module standard deviation (over the pool) as theirs: LoRAs that know nothing."""
    gen = torch.Generator().manual_seed(seed)
    pool = []
    for i in range(len(adapters)):
        modules = {}
        for name, m in adapters[0].modules.items():
            std_a = torch.stack([a.modules[name].A for a in adapters]).std()
            std_b = torch.stack([a.modules[name].B for a in adapters]).std()
            modules[name] = LoraModule(
                A=torch.randn(m.A.shape, generator=gen) * std_a,
                B=torch.randn(m.B.shape, generator=gen) * std_b,
                scale=m.scale,
            )
        pool.append(LoraAdapter(path=None, config={}, modules=modules, name=f"random{i}"))
    return pool


def em_with_weights(model, tok, adapters, weights, examples) -> float:
    """Exact match of the composition Σ w_i (A_i, B_i) on `examples` (model unchanged)."""
    evaluation = evaluate_composed(
        model, tok, examples, adapters, weights, batch_size=len(examples)
    )
    return evaluation["exact_match"]


def split(task: synthetic.Task, seed: int, suffix: str):
    """5 examples to compose with, N_TEST others (distinct inputs) to test on."""
    test = task.examples(N_TEST, seed=10_000, suffix=suffix)
    taken = {ex.input for ex in test}
    pool = [ex for ex in task.examples(N_COMPOSE + 40, seed=seed, suffix=suffix)]
    return [ex for ex in pool if ex.input not in taken][:N_COMPOSE], test


def compose_stats(model, tok, adapters, task, suffix, params, test) -> dict:
    """Test exact match (mean and best over SEEDS) of compositions on 5 examples, mean
    seconds per composition, the weights of the first seed."""
    scores, seconds, weights = [], [], None
    for seed in SEEDS:
        examples, _ = split(task, seed, suffix)
        params.seed = seed
        res = compose(model, tok, adapters, examples, params)
        seconds.append(res.timings["total_s"])
        weights = weights or res.weights
        scores.append(em_with_weights(model, tok, adapters, res.weights, test))
    return {
        "mean": sum(scores) / len(scores),
        "best": max(scores),
        "seconds": sum(seconds) / len(seconds),
        "weights": weights,
    }


def bench_task(suite, model, tok, adapters, task, suffix: str) -> dict:
    n = len(adapters)
    row: dict = {"task": task.name}
    _, test = split(task, 0, suffix)
    row["base"] = em_with_weights(model, tok, adapters, [0.0] * n, test)
    row["uniform"] = em_with_weights(model, tok, adapters, [1.0 / n] * n, test)
    singles = [
        em_with_weights(model, tok, adapters, [float(i == j) for j in range(n)], test)
        for i in range(n)
    ]
    best = max(range(n), key=singles.__getitem__)
    row["oracle"] = singles[best]
    row["oracle_adapter"] = adapters[best].name
    for mode, params in modes(n).items():
        stats = compose_stats(model, tok, adapters, task, suffix, params, test)
        row.update({f"lorahub_{mode}_{k}": v for k, v in stats.items() if k != "weights"})
        top = max(range(n), key=lambda i, w=stats["weights"]: abs(w[i]))
        row[f"lorahub_{mode}_top_adapter_seed0"] = adapters[top].name
    noise = compose_stats(model, tok, random_pool(adapters), task, suffix, LoraHubParams(), test)
    row["random_pool_screen_mean"] = noise["mean"]
    examples, _ = split(task, 0, suffix)
    with tempfile.TemporaryDirectory() as tmp:
        spec = suite.spec
        train_lora(
            suite.base_dir,
            examples,
            Path(tmp) / "fewshot",
            r=spec["lora_r"],
            alpha=spec["lora_alpha"],
            target_modules=spec["lora_targets"],
            steps=100,
            lr=spec["lora_lr"],
        )
        few = load_adapter(Path(tmp) / "fewshot")
    row["fewshot_lora"] = em_with_weights(model, tok, [few], [1.0], test)
    return row


COLUMNS = [
    "base",
    "uniform",
    *(f"lorahub_{mode}_{stat}" for mode in modes(1) for stat in ("mean", "best", "seconds")),
    "oracle",
    "fewshot_lora",
    "random_pool_screen_mean",
]


def _result(suite, adapters, rows: list[dict], *, complete: bool, t0: float) -> dict:
    return {
        "benchmark": "engine_quality",
        "complete": complete,
        "suite": {"kind": suite.kind, "root": str(suite.root), "build_s": suite.build_seconds},
        "candidates": len(adapters),
        "compose_examples": N_COMPOSE,
        "test_examples": N_TEST,
        "seeds": len(SEEDS),
        "modes": {k: v.__dict__ for k, v in modes(len(adapters)).items()},
        "tasks": rows,
        "average": {c: sum(r[c] for r in rows) / len(rows) for c in COLUMNS},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench engine_quality")
    ap.add_argument("--kind", default="llama", choices=["t5", "llama"])
    ap.add_argument("--quick", action="store_true", help="use the quick suite")
    ap.add_argument("--tasks", nargs="*", help="held-out task names (default: all)")
    ap.add_argument("--set", default="heldout", choices=["heldout", "mix"])
    ap.add_argument("--seeds", type=int, default=5, help="seeds per mode (%(default)s)")
    args = ap.parse_args(argv or [])
    global SEEDS
    SEEDS = range(args.seeds)
    torch.manual_seed(0)
    torch.set_num_threads(1)  # a tiny model; more threads only spin on a busy machine
    t0 = time.perf_counter()
    suite = ensure_suite(args.kind, quick=args.quick)
    suffix = suite.info["suffix"]
    model, tok = load_base_model(suite.base_dir), load_tokenizer(suite.base_dir)
    adapters = load_adapters([suite.adapters[t] for t in suite.train_tasks])
    default = (
        suite.heldout_tasks if args.set == "heldout" else [t.name for t in synthetic.MIX_TASKS]
    )
    tasks = args.tasks or default
    rows: list[dict] = []
    for name in tasks:
        row = bench_task(suite, model, tok, adapters, synthetic.get_task(name), suffix)
        rows.append(row)
        print("  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{v}" for k, v in row.items()))
        result = _result(suite, adapters, rows, complete=len(rows) == len(tasks), t0=t0)
        RESULTS.mkdir(exist_ok=True)
        tags = "_quick" * args.quick + ("" if args.set == "heldout" else f"_{args.set}")
        out = RESULTS / f"engine_quality_{suite.kind}{tags}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")  # after every task
    average = result["average"]
    print("average  " + "  ".join(f"{c}={average[c]:.3f}" for c in COLUMNS))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
