"""Merging quality: K task adapters merged into one, scored on every task.

The merge adapters of a trained suite (`training.ensure_merge_adapters`; the Llama suite by
default): one task per
input domain (disjoint characters), r=16 on every attention and feed-forward projection,
trained to copy (as the base model does) outside their own domain. Each method merges all K
with weight 1 at the same merged rank (16; `cat` is exact at rank 16·K and shown for
reference); LoRA-LEGO with its defaults and with one choice changed each (`LEGO`); KnOTS
at several densities, scaling coefficients λ and both disjoint merges (`KNOTS`).
Score per task: exact match of the merged adapter / exact match of the task's own adapter;
beside it the merged ΔW's relative error against the exact sum of the inputs' (mean over
modules) and, for LEGO, the clusters that mix units of several inputs (of k per module).
What the sign election of KnOTS-TIES does to these adapters (`sign_election`). Writes
bench/results/engine_merge_<kind>.json.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from peft.utils.merge_utils import calculate_majority_sign_mask

from composer.engine import synthetic
from composer.engine.adapters import load_adapter, load_adapters
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.evaluate import evaluate_model
from composer.engine.knots import aligned
from composer.engine.lego import LegoParams
from composer.engine.run import evaluate_composed, run_lego, run_merge
from composer.engine.training import MERGE_R, ensure_merge_adapters, ensure_suite

RESULTS = Path(__file__).parent / "results"
N_TEST = 100
# row -> run_merge keyword arguments (or LegoParams fields for the lego rows); all at rank
# MERGE_R but `cat`. A row is its method's name, or the method's name and its parameters.
LEGO = {
    "lego": {},
    "lego_no_param_reweight": {"param_reweight": False},
    "lego_normalize": {"normalize": True},
    "lego_rank1": {"centroid": "rank1"},
    "lego_raw_units": {"units": "raw"},
}
METHODS: dict[str, dict] = {
    **LEGO,
    "cat": {},
    "linear": {},
    "svd": {"rank": MERGE_R},
    "ties": {"density": 0.5},
    "dare_ties": {"density": 0.5},
    "task_arithmetic": {"rank": MERGE_R},
}
KNOTS = {
    f"{method} d={density:g} λ={lam:g}{'' if disjoint == 'mean' else ' sum'}": {
        "method": method,
        "density": density,
        "scaling_coef": lam,
        "disjoint": disjoint,
        "rank": MERGE_R,
    }
    for method in ("knots_ties", "knots_dare_ties")
    for disjoint, lams in (("mean", (0.5, 1.0, 1.5, 2.0)), ("sum", (1.0,)))
    for density in (0.5, 0.8, 1.0)
    for lam in lams
}
METHODS |= KNOTS


def exact_match(model, tok, adapter, examples) -> float:
    kwargs = {"batch_size": len(examples)}
    if adapter is None:
        return evaluate_model(model, tok, examples, **kwargs)["exact_match"]
    return evaluate_composed(model, tok, examples, [adapter], [1.0], **kwargs)["exact_match"]


def merged(row: str, dirs: list[Path], out: Path) -> tuple:
    """The merged adapter and its run's result dict."""
    weights = [1.0] * len(dirs)
    if row in LEGO:
        res = run_lego(dirs, out, LegoParams(k=MERGE_R, weights=weights, **METHODS[row]))
    else:
        kwargs = {"method": row, **METHODS[row]}
        res = run_merge(kwargs.pop("method"), dirs, out, weights=weights, **kwargs)
    return load_adapter(out), res


def delta_error(adapter, inputs) -> float:
    """Mean over modules of ‖ΔW' − Σ ΔW_i‖ / ‖Σ ΔW_i‖ (the exact sum of the inputs)."""
    errs = []
    for name, m in adapter.modules.items():
        exact = sum(a.modules[name].delta() for a in inputs)
        errs.append(float((m.delta() - exact).norm() / exact.norm()))
    return sum(errs) / len(errs)


def sign_election(inputs) -> dict:
    """What TIES's sign election does to the inputs' aligned coordinates V_i (KnOTS at
    density 1, weight 1), mean over modules: the share of V's entries that are non-zero, the
    share of the inputs' update it drops (‖U Σ D_iᵀ‖ against ‖U Σ V_iᵀ‖, D_i the values
    against the elected sign, squares summed over the inputs), the relative error this
    leaves in the sum of the agreeing values at full rank, and how many agreeing values the
    disjoint mean divides by (weighted by the values' magnitudes)."""
    nonzero, dropped, sum_error, divisor = [], [], [], []
    for name in inputs[0].modules:
        US, V = aligned([a.modules[name] for a in inputs], [1.0] * len(inputs))
        agree = calculate_majority_sign_mask(V, method="total") & (V != 0)
        nonzero.append(float((V != 0).float().mean()))
        lost = sum(float((US @ v.T).norm() ** 2) for v in V * ~agree)
        dropped.append((lost / sum(float((US @ v.T).norm() ** 2) for v in V)) ** 0.5)
        against = (V * ~agree).sum(0)
        sum_error.append(float((US @ against.T).norm() / (US @ V.sum(0).T).norm()))
        kept = (V * agree).abs().sum(0)
        divisor.append(float((agree.sum(0) * kept).sum() / kept.sum()))
    n = len(nonzero)
    return {
        "nonzero_share": round(sum(nonzero) / n, 3),
        "dropped_share": round(sum(dropped) / n, 3),
        "sum_full_rank_error": round(sum(sum_error) / n, 3),
        "mean_divisor": round(sum(divisor) / n, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench engine_merge")
    ap.add_argument("--kind", default="llama", choices=["t5", "llama"])
    ap.add_argument("--quick", action="store_true", help="use the quick suite")
    args = ap.parse_args(argv or [])
    torch.set_num_threads(1)  # a tiny model; more threads only spin on a busy machine
    t0, load_start = time.perf_counter(), os.getloadavg()[0]
    suite = ensure_suite(args.kind, quick=args.quick)
    dirs = ensure_merge_adapters(suite)
    model, tok = load_base_model(suite.base_dir), load_tokenizer(suite.base_dir)
    names = list(dirs)
    tests = {t: suite.examples(t, N_TEST, seed=10_000) for t in names}
    own = dict(zip(names, load_adapters([dirs[t] for t in names]), strict=True))
    base_em = {t: exact_match(model, tok, None, tests[t]) for t in names}
    own_em = {t: exact_match(model, tok, own[t], tests[t]) for t in names}
    # neutrality: each adapter on the other tasks' inputs, against the base model there
    cross = {
        a: {t: exact_match(model, tok, own[a], tests[t]) for t in names if t != a} for a in names
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            adapter, res = merged(method, [dirs[t] for t in names], Path(tmp) / f"row{len(rows)}")
            em = {t: exact_match(model, tok, adapter, tests[t]) for t in names}
            norm = {t: em[t] / own_em[t] if own_em[t] else 0.0 for t in names}
            row = {
                "method": method,
                "rank": adapter.r,
                "exact_match": em,
                "normalised": norm,
                "mean_normalised": sum(norm.values()) / len(norm),
                "delta_relative_error": round(delta_error(adapter, own.values()), 4),
            }
            if "mixed_clusters" in res:
                row["mixed_clusters"] = res["mixed_clusters"]
            print(
                f"{method:32s} rank {adapter.r:3d}  normalised {row['mean_normalised']:.3f}  "
                f"ΔW error {row['delta_relative_error']:.3f}  {em}",
                flush=True,
            )
            rows.append(row)
    result = {
        "benchmark": "engine_merge",
        "suite": {"kind": suite.kind, "root": str(suite.root)},
        "tasks": names,
        "domains": {t: synthetic.get_task(t).domain for t in names},
        "test_examples": N_TEST,
        "base_exact_match": base_em,
        "own_adapter_exact_match": own_em,
        "own_adapter_on_other_tasks": cross,
        "methods": rows,
        "knots_sign_election": sign_election(list(own.values())),
        "ranking": [r["method"] for r in sorted(rows, key=lambda r: -r["mean_normalised"])],
        "seconds": round(time.perf_counter() - t0, 1),
        # the machine is shared: the 1-minute load average when the run started and ended
        "load_average_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"engine_merge_{suite.kind}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
