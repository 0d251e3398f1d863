"""One function per job kind, shared by the command line and the Celery tasks.

- `run_lorahub(base_dir, adapter_dirs, examples, out_dir, params, *, on_step, should_stop,
  heldout, device, model_cache)`
- `run_lego(adapter_dirs, out_dir, params)`
- `run_merge(method, adapter_dirs, out_dir, *, weights, density, rank, seed)`
- `run_evaluate(base_dir, examples, adapter_dir=None, *, device, model_cache, ...)`

The first three write a PEFT adapter directory plus `result.json` into `out_dir`
atomically (built in a temporary sibling, then renamed; on any error nothing is left
behind; an existing non-empty `out_dir` is refused) and return the result dict that
`result.json` holds. Every dict is JSON-serialisable: method, params, inputs (path,
sha256, rank, alpha), weights, loss history, timings, evaluation, output (path, sha256,
rank). `examples` / `heldout` are lists of `Example` or a path to an examples file.

Errors a user can cause are `ValueError`s with a one-line message: `AdapterError`,
`IncompatibleAdapters`, `ExamplesError`, `OutputExists`, or a bad parameter.
`Cancelled` (from `should_stop`) propagates, leaving nothing behind.
`model_cache`: any object with `get(base_dir, device) -> (model, tokenizer)`; the engine
never modifies a model it is given (LoraHub wraps modules for a search and unwraps them),
so a worker can keep base models loaded across jobs.
"""

import contextlib
import hashlib
import json
import math
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch

from composer.engine.adapters import (
    WEIGHTS_NAME,
    AdapterError,
    LoraAdapter,
    load_adapter,
    load_adapters,
    one_line,
    save_adapter,
    sha256_file,
    write_result,
)
from composer.engine.base_models import load_base_model, load_tokenizer, resolve_device
from composer.engine.baselines import merge
from composer.engine.compat import check_against_model, check_compatible
from composer.engine.evaluate import evaluate_model
from composer.engine.examples import Example, load_examples
from composer.engine.lego import LegoParams, lego_merge
from composer.engine.lorahub import LiveComposition, LoraHubParams, StepInfo, compose

ENGINE_VERSION = 1
Examples = Sequence[Example] | str | Path


class OutputExists(ValueError):
    """The output directory already exists and is not empty."""


def run_lorahub(
    base_dir: str | Path,
    adapter_dirs: Sequence[str | Path],
    examples: Examples,
    out_dir: str | Path,
    params: LoraHubParams | None = None,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    heldout: Examples | None = None,
    device: str | None = None,
    model_cache=None,
) -> dict:
    """Compose `adapter_dirs` for `examples` with LoraHub; evaluate on `heldout` if given."""
    params = params or LoraHubParams()
    params.validate()
    t0 = time.perf_counter()
    out = _check_out(out_dir)
    examples = _examples(examples)
    heldout = _examples(heldout) if heldout is not None else None
    adapters = load_adapters(adapter_dirs)
    check_compatible(adapters, "lorahub")
    t_load = time.perf_counter()
    model, tok = _model(base_dir, device, model_cache)
    check_against_model(adapters, model)
    load_s = time.perf_counter() - t_load
    res = compose(model, tok, adapters, examples, params, on_step=on_step, should_stop=should_stop)
    evaluation = None
    if heldout is not None:
        t_eval = time.perf_counter()
        evaluation = {
            "base": evaluate_model(model, tok, heldout, separator=params.separator),
            "composed": evaluate_composed(
                model,
                tok,
                heldout,
                [LoraAdapter(path=None, config={}, modules=res.modules)],
                [1.0],
                separator=params.separator,
            ),
            "seconds": round(time.perf_counter() - t_eval, 3),
        }
    summary = res.summary()
    result = {
        "method": "lorahub",
        **_header(adapters),
        "base_model_dir": str(base_dir),
        "examples": _examples_info(examples),
        **summary,
        "evaluation": evaluation,
        "timings": {"load_model_s": round(load_s, 4), **summary["timings"]},
    }
    return _write(out, res.modules, adapters, result, t0)


def run_lego(
    adapter_dirs: Sequence[str | Path], out_dir: str | Path, params: LegoParams | None = None
) -> dict:
    """Merge `adapter_dirs` with LoRA-LEGO into a rank-k adapter."""
    params = params or LegoParams()
    t0 = time.perf_counter()
    out = _check_out(out_dir)
    adapters = load_adapters(adapter_dirs)
    res = lego_merge(adapters, params)
    iters = list(res.iterations.values())
    result = {
        "method": "lego",
        **_header(adapters),
        "params": {**asdict(params), "k": res.k},
        "weights": params.weights or [1.0] * len(adapters),
        "kmeans_iterations": {"min": min(iters), "max": max(iters)},
        "timings": {"merge_s": round(res.seconds, 4)},
    }
    return _write(out, res.modules, adapters, result, t0)


def run_merge(
    method: str,
    adapter_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    weights: Sequence[float] | None = None,
    density: float | None = None,
    rank: int | None = None,
    seed: int = 0,
) -> dict:
    """A baseline merge: peft's methods (linear, cat, svd, ties, dare_*, magnitude_prune)
    or the exact `task_arithmetic`. Weights default to 1/N each."""
    t0 = time.perf_counter()
    out = _check_out(out_dir)
    adapters = load_adapters(adapter_dirs)
    n = len(adapters)
    weights = [1.0 / n] * n if weights is None else list(weights)
    t_merge = time.perf_counter()
    modules = merge(method, adapters, weights=weights, density=density, rank=rank, seed=seed)
    result = {
        "method": method,
        **_header(adapters),
        "params": {"density": density, "rank": rank, "seed": seed},
        "weights": weights,
        "timings": {"merge_s": round(time.perf_counter() - t_merge, 4)},
    }
    return _write(out, modules, adapters, result, t0)


def run_evaluate(
    base_dir: str | Path,
    examples: Examples,
    adapter_dir: str | Path | None = None,
    *,
    device: str | None = None,
    model_cache=None,
    separator: str = "",
    max_new_tokens: int | None = None,
    batch_size: int = 16,
) -> dict:
    """Loss and exact match of the base model (with `adapter_dir` applied, if given)."""
    t0 = time.perf_counter()
    examples = _examples(examples)
    adapter = load_adapter(adapter_dir) if adapter_dir is not None else None
    model, tok = _model(base_dir, device, model_cache)
    kwargs = {"separator": separator, "max_new_tokens": max_new_tokens, "batch_size": batch_size}
    if adapter is None:
        evaluation = evaluate_model(model, tok, examples, **kwargs)
    else:
        check_against_model([adapter], model)
        evaluation = evaluate_composed(model, tok, examples, [adapter], [1.0], **kwargs)
    return {
        "method": "evaluate",
        "engine_version": ENGINE_VERSION,
        "base_model_dir": str(base_dir),
        "adapter": _input_info(adapter) if adapter else None,
        "examples": _examples_info(examples),
        **evaluation,
        "timings": {"total_s": round(time.perf_counter() - t0, 4)},
    }


# ---------------------------------------------------------------- helpers


def evaluate_composed(model, tok, examples, adapters, weights, **kwargs) -> dict:
    """`evaluate_model` with Σ w_i (A_i, B_i) of `adapters` applied by a LiveComposition (the
    model stays clean). Many forwards follow one `set_weights`, so folding pays wherever
    memory allows it."""
    live = LiveComposition(model, adapters, tokens=math.inf)
    try:
        live.set_weights(torch.tensor([weights], dtype=torch.float64))
        return evaluate_model(model, tok, examples, **kwargs)
    finally:
        live.remove()


def _model(base_dir, device, model_cache):
    device = str(resolve_device(device))
    if model_cache is not None:
        return model_cache.get(base_dir, device)
    if not Path(base_dir).is_dir():
        raise AdapterError(f"base model directory not found: {base_dir}")
    try:
        return load_base_model(base_dir, device=device), load_tokenizer(base_dir)
    except (OSError, ValueError) as e:
        raise AdapterError(f"{base_dir}: cannot load the base model ({one_line(e)})") from None


def _examples(examples: Examples) -> list[Example]:
    if isinstance(examples, str | Path):
        return load_examples(examples)
    return list(examples)


def _examples_info(examples: Sequence[Example]) -> dict:
    canon = json.dumps([[e.input, e.output] for e in examples], ensure_ascii=False)
    return {"n": len(examples), "sha256": hashlib.sha256(canon.encode()).hexdigest()}


def _input_info(a: LoraAdapter) -> dict:
    return {
        "name": a.label,
        "path": str(a.path) if a.path else None,
        "sha256": a.sha256,
        "r": a.r,
        "alpha": a.alpha,
        "dtype": a.stored_dtype,
        "base_model": a.base_model,
    }


def _header(adapters: Sequence[LoraAdapter]) -> dict:
    return {
        "engine_version": ENGINE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": adapters[0].base_model,
        "inputs": [_input_info(a) for a in adapters],
    }


def _check_out(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputExists(f"output directory already exists and is not empty: {out}")
    return out


def _write(out: Path, modules, adapters, result: dict, t0: float) -> dict:
    """Write adapter + result.json into a temporary sibling, then rename it to `out`."""
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        # the inputs' dtype when they agree (float32 otherwise)
        stored = {a.stored_dtype for a in adapters}
        dtype = getattr(torch, stored.pop()) if len(stored) == 1 else torch.float32
        save_adapter(
            tmp,
            modules,
            base_model=adapters[0].base_model,
            task_type=adapters[0].task_type,
            dtype=dtype,
        )
        first = next(iter(modules.values()))
        result["output"] = {
            "path": str(out),
            "sha256": sha256_file(tmp / WEIGHTS_NAME),
            "r": first.r,
            "alpha": first.scale * first.r,
            "modules": len(modules),
            "dtype": str(dtype).removeprefix("torch."),
            "params": sum(m.A.numel() + m.B.numel() for m in modules.values()),
        }
        result["timings"]["total_s"] = round(time.perf_counter() - t0, 4)
        write_result(tmp, result)
        with contextlib.suppress(FileNotFoundError):
            out.rmdir()  # an empty directory made by the caller
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
