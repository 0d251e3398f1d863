"""Baseline merges: peft's `add_weighted_adapter` methods, and an exact task arithmetic.

peft methods (`PEFT_METHODS`) run through peft itself, on a skeleton model that holds only
the targeted Linear layers (their base weights are a single broadcast zero, so no base model
is loaded and no memory is spent on it). Their semantics are peft's, defects included:
`linear`, `ties`, `dare_*` and `magnitude_prune` mix A and B separately (cross terms
B_i A_j) and need equal ranks; `cat` is exact (rank Σ r_i); the `svd` family forms the
weighted ΔW and truncates its SVD to `rank` (default: the largest input rank).

`task_arithmetic` is ours: the exact ΔW' = Σ_i w_i s_i B_i A_i. It is written at rank Σ r_i
(B' = [w_1 s_1 B_1 … w_n s_n B_n], A' = [A_1; …; A_n]), or, with `rank`, as the best rank-k
approximation of that exact ΔW' computed from the factors (QR of B' and A'ᵀ, SVD of the
small Σr × Σr core), never forming a d_out × d_in matrix.

`knots_ties` and `knots_dare_ties` (KnOTS, `composer/engine/knots.py`) TIES-merge the
inputs' updates in a basis they share (the mean or the sum of the agreeing entries), scale
the result by the scaling coefficient λ and write it at `rank` (default: the largest input
rank).
"""

import math
import re
from collections.abc import Sequence

import torch
from torch import nn

from composer.engine.adapters import KEY_PREFIX, LoraAdapter, LoraModule, modules_from_state_dict
from composer.engine.compat import check_compatible
from composer.engine.knots import (
    DEFAULT_DISJOINT,
    DEFAULT_SCALING_COEF,
    DISJOINT,
    KNOTS_METHODS,
    knots_merge,
)
from composer.engine.lowrank import singular_factors

PEFT_METHODS = (
    "linear",
    "cat",
    "svd",
    "ties",
    "ties_svd",
    "dare_linear",
    "dare_ties",
    "dare_linear_svd",
    "dare_ties_svd",
    "magnitude_prune",
    "magnitude_prune_svd",
)
METHODS = (*PEFT_METHODS, "task_arithmetic", *KNOTS_METHODS)
DENSITY_METHODS = frozenset(
    m for m in METHODS if m.startswith(("ties", "dare", "magnitude", "knots"))
)
DEFAULT_DENSITY = 0.5


def merge(
    method: str,
    adapters: Sequence[LoraAdapter],
    *,
    weights: Sequence[float] | None = None,
    density: float | None = None,
    rank: int | None = None,
    seed: int = 0,
    scaling_coef: float = DEFAULT_SCALING_COEF,
    disjoint: str = DEFAULT_DISJOINT,
) -> dict[str, LoraModule]:
    """Merge `adapters` with `method`; `weights` default to 1/N each.

    `density` (fraction of values kept; default 0.5) is used by ties, dare, magnitude prune
    and KnOTS; `rank` by the svd family, `task_arithmetic` and KnOTS; `seed` seeds dare's
    random drop; `scaling_coef` (λ, > 0) and `disjoint` ("mean" or "sum") by KnOTS.
    """
    if method not in METHODS:
        raise ValueError(f"unknown merge method {method!r}; choose one of {', '.join(METHODS)}")
    check_compatible(adapters, method)
    n = len(adapters)
    weights = [1.0 / n] * n if weights is None else [float(w) for w in weights]
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} adapters")
    if density is not None and not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be between 0 and 1, got {density}")
    if rank is not None and rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}")
    if not 0.0 < scaling_coef < float("inf"):
        raise ValueError(f"the scaling coefficient must be positive and finite, got {scaling_coef}")
    if disjoint not in DISJOINT:
        raise ValueError(f"disjoint must be one of {', '.join(DISJOINT)}, got {disjoint!r}")
    if method == "task_arithmetic":
        return task_arithmetic(adapters, weights, rank=rank)
    if method in DENSITY_METHODS and density is None:
        density = DEFAULT_DENSITY
    if method in KNOTS_METHODS:
        return knots_merge(
            method,
            adapters,
            weights,
            density=density,
            scaling_coef=scaling_coef,
            disjoint=disjoint,
            rank=rank,
            seed=seed,
        )
    return peft_merge(method, adapters, weights, density=density, rank=rank, seed=seed)


def task_arithmetic(
    adapters: Sequence[LoraAdapter], weights: Sequence[float], *, rank: int | None = None
) -> dict[str, LoraModule]:
    """Exact ΔW' = Σ w_i s_i B_i A_i per module (optionally its best rank-`rank` approximation)."""
    out = {}
    for name in sorted(adapters[0].modules):
        mods = [a.modules[name] for a in adapters]
        A = torch.cat([m.A.float() for m in mods], dim=0)  # [R, d_in]
        B = torch.cat([m.B.float() * (w * m.scale) for m, w in zip(mods, weights, strict=True)], 1)
        if rank is not None and rank < A.shape[0]:
            A, B = singular_factors(A, B, rank)
        out[name] = LoraModule(A=A, B=B, scale=1.0)
    return out


def peft_merge(
    method: str,
    adapters: Sequence[LoraAdapter],
    weights: Sequence[float],
    *,
    density: float | None = None,
    rank: int | None = None,
    seed: int = 0,
) -> dict[str, LoraModule]:
    """Run peft's `add_weighted_adapter(combination_type=method)` and read the result back."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    first = adapters[0]
    skeleton = _skeleton({n: (m.d_in, m.d_out) for n, m in first.modules.items()})
    names = [f"input{i}" for i in range(len(adapters))]
    model = None
    for name, adapter in zip(names, adapters, strict=True):
        cfg = _lora_config(LoraConfig, adapter)
        if model is None:
            model = get_peft_model(skeleton, cfg, adapter_name=name)
        else:
            model.add_adapter(name, cfg)
        state = {}
        for mod_name, m in adapter.modules.items():
            state[f"{KEY_PREFIX}{mod_name}.lora_A.weight"] = m.A.float()
            state[f"{KEY_PREFIX}{mod_name}.lora_B.weight"] = m.B.float()
        result = set_peft_model_state_dict(model, state, adapter_name=name)
        if result.unexpected_keys:
            raise ValueError(f"peft did not place {result.unexpected_keys[0]}")
    kwargs = {"density": density} if method in DENSITY_METHODS else {}
    if "svd" in method:
        kwargs.update(svd_rank=rank, svd_full_matrices=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dare drops values at random
        model.add_weighted_adapter(
            names, list(weights), "merged", combination_type=method, **kwargs
        )
    state = get_peft_model_state_dict(model, adapter_name="merged")
    config = model.peft_config["merged"].to_dict()
    return modules_from_state_dict(
        {k: v.detach().clone() for k, v in state.items()}, config, source=f"peft {method}"
    )


def _lora_config(LoraConfig, adapter: LoraAdapter):
    """The adapter's own rank and scaling per module, targeting its exact module paths.

    The modules that differ from the first are named by their escaped paths, never by the
    uploader's `rank_pattern` / `alpha_pattern`: peft matches those with Python's
    backtracking `re`, where a key RE2 accepts can take hours; the per-module ranks and
    scales were already read with RE2 when the adapter was loaded."""
    rslora = bool(adapter.config.get("use_rslora"))
    names = sorted(adapter.modules)

    def alpha(m) -> float:
        return m.scale * (math.sqrt(m.r) if rslora else m.r)

    first = adapter.modules[names[0]]
    return LoraConfig(
        r=first.r,
        lora_alpha=alpha(first),
        target_modules=names,
        rank_pattern={
            re.escape(n): adapter.modules[n].r for n in names if adapter.modules[n].r != first.r
        },
        alpha_pattern={
            re.escape(n): alpha(adapter.modules[n])
            for n in names
            if not math.isclose(alpha(adapter.modules[n]), alpha(first), rel_tol=1e-9)
        },
        use_rslora=rslora,
        lora_dropout=0.0,
    )


class _Node(nn.Module):
    pass


def _skeleton(shapes: dict[str, tuple[int, int]]) -> nn.Module:
    """A module tree with a bias-free Linear at each path whose weight is a broadcast zero."""
    root = _Node()
    for path, (d_in, d_out) in shapes.items():
        node = root
        *parents, leaf = path.split(".")
        for part in parents:
            if not hasattr(node, part):
                node.add_module(part, _Node())
            node = getattr(node, part)
        linear = nn.Linear(1, 1, bias=False)
        linear.in_features, linear.out_features = d_in, d_out
        linear.weight = nn.Parameter(torch.zeros(()).expand(d_out, d_in), requires_grad=False)
        node.add_module(leaf, linear)
    return root
