"""One function per job kind, shared by the command line and the Celery tasks.

- `run_lorahub(base_dir, adapter_dirs, examples, out_dir, params, *, on_step, should_stop,
  heldout, device, model_cache, on_checkpoint, resume)`
- `run_lego(adapter_dirs, out_dir, params, *, check)`
- `run_merge(method, adapter_dirs, out_dir, *, weights, density, rank, seed, scaling_coef,
  disjoint, check)`
- `run_evaluate(base_dir, examples, adapter_dir=None, *, device, model_cache, ...)`
- `run_try(base_dir, adapter_dir, text, *, device, model_cache, ...)`

The first three write a PEFT adapter directory plus `result.json` into `out_dir`
atomically (built in a temporary sibling, then renamed; on any error nothing is left
behind; an existing non-empty `out_dir` is refused) and return the result dict that
`result.json` holds. Every dict is JSON-serialisable: method, params, inputs (path,
sha256, rank, alpha), weights, loss history, timings, evaluation, output (path, sha256,
rank). `examples` / `heldout` are lists of `Example` or a path to an examples file.

Errors a user can cause are `ValueError`s with a one-line message: `AdapterError`,
`IncompatibleAdapters`, `ExamplesError`, `OutputExists`, or a bad parameter.
`Cancelled` (from `should_stop`) propagates, leaving nothing behind.
`check` (a `MergeCheck`: a base model and example sets) makes a merge also measure the exact
match of the base model, of each parent and of the merged adapter on the examples
(`result["merge_evaluation"]`): one set for every parent, or one set per input (set i is
input i's task, scored for parent i).
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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from composer.engine.adapters import (
    WEIGHTS_NAME,
    AdapterError,
    LoraAdapter,
    adapter_info,
    load_adapter,
    load_adapters,
    one_line,
    save_adapter,
    sha256_file,
    write_result,
)
from composer.engine.base_models import load_base_model, load_tokenizer, resolve_device
from composer.engine.baselines import merge
from composer.engine.checkpoint import Checkpoint
from composer.engine.compat import check_against_model, check_compatible
from composer.engine.evaluate import evaluate_model, generate
from composer.engine.examples import MAX_CHECK_EXAMPLES, Example, load_examples
from composer.engine.knots import DEFAULT_DISJOINT, DEFAULT_SCALING_COEF, KNOTS_METHODS
from composer.engine.lego import LegoParams, lego_merge
from composer.engine.lorahub import LiveComposition, LoraHubParams, Scorer, StepInfo, compose
from composer.engine.screening import screen, uniform_average

ENGINE_VERSION = 1
Examples = Sequence[Example] | str | Path


@dataclass
class MergeCheck:
    """Example sets to score a merge's parents and result on, and the base model to do it."""

    base_dir: str | Path
    examples: Sequence[Examples]  # one set, or one per input (in input order)
    device: str | None = None
    model_cache: object = None
    separator: str = ""

    def sets(self, n_inputs: int) -> list[list[Example]]:
        sets = [_examples(e) for e in self.examples]
        if len(sets) not in (1, n_inputs):
            raise ValueError(
                f"{len(sets)} example sets for {n_inputs} adapters: give one set for all of "
                "them or one per adapter"
            )
        if any(not s for s in sets):
            raise ValueError("an example set is empty")
        total = sum(map(len, sets))
        if total > MAX_CHECK_EXAMPLES:
            raise ValueError(
                f"{total} examples to check the merge on; at most {MAX_CHECK_EXAMPLES} in all"
            )
        return sets


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
    names: Sequence[str] | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    resume: dict | None = None,
) -> dict:
    """Compose `adapter_dirs` for `examples` with LoraHub; evaluate on `heldout` if given.
    `names` (one per adapter, e.g. catalog labels) name the candidates in the comparison.
    `on_checkpoint` / `resume`: the search's checkpoints, and one to go on from
    (`lorahub.compose`).

    In screen mode the adapters are read a chunk at a time while screening (never all at
    once) and only the K selected stay loaded; the reference mode loads them all first.
    """
    params = params or LoraHubParams()
    params.validate()
    t0 = time.perf_counter()
    out = _check_out(out_dir)
    examples = _examples(examples)
    heldout = _examples(heldout) if heldout is not None else None
    if not adapter_dirs:
        raise AdapterError("no adapters given")
    screened = params.mode == "screen"
    candidates = list(adapter_dirs) if screened else load_adapters(adapter_dirs)
    if not screened:
        check_compatible(candidates, "lorahub")
    t_load = time.perf_counter()
    model, tok = _model(base_dir, device, model_cache)
    if not screened:
        check_against_model(candidates, model)
    load_s = time.perf_counter() - t_load
    res = compose(
        model,
        tok,
        candidates,
        examples,
        params,
        on_step=on_step,
        should_stop=should_stop,
        on_checkpoint=on_checkpoint,
        resume=resume,
    )
    if screened:
        inputs, used = res.inputs, res.kept
    else:
        inputs, used = [adapter_info(a) for a in candidates], candidates
    t_eval = time.perf_counter()
    evals = lorahub_baselines(
        model, tok, heldout or examples, candidates, examples, res, params, names
    )
    comparison = {
        "on": "heldout" if heldout else "examples",
        "n": len(heldout or examples),
        "rows": [
            {"key": k, "name": name, **{m: evals[k][m] for m in ("loss", "exact_match")}}
            for k, name in evals["names"].items()
        ],
        "seconds": round(time.perf_counter() - t_eval, 3),
    }
    evaluation = None
    if heldout is not None:
        evaluation = {
            "base": evals["base"],
            "composed": evals["result"],
            "seconds": comparison["seconds"],
        }
    summary = res.summary()
    result = {
        "method": "lorahub",
        **_header(inputs),
        "base_model_dir": str(base_dir),
        "examples": _examples_info(examples),
        **summary,
        "evaluation": evaluation,
        "comparison": comparison,
        "timings": {"load_model_s": round(load_s, 4), **summary["timings"]},
    }
    return _write(out, res.modules, used, result, t0)


def lorahub_baselines(model, tok, on, candidates, examples, res, params, names=None) -> dict:
    """Evaluations on `on` of the base model, the uniform average of the candidates, the
    best single candidate by its loss on the few-shot `examples` (the screened winner;
    screened here in the reference mode) and the result `res`; "names" says what each is."""
    if res.screening is not None:
        index, best = res.selected[0], res.kept[0]
    else:
        scorer = Scorer(model, tok, examples, separator=params.separator)
        _, kept = screen(
            model,
            scorer,
            candidates,
            l1=params.l1,
            loss_norm=params.loss_norm,
            batch=params.screen_batch,
            keep=1,
        )
        index, best = kept[0]
    name = names[index] if names else best.label
    kwargs = {"separator": params.separator}
    result = LoraAdapter(path=None, config={}, modules=res.modules)
    uniform = uniform_average(candidates)
    return {
        "base": evaluate_model(model, tok, on, **kwargs),
        "uniform": evaluate_composed(model, tok, on, [uniform], [1.0], **kwargs),
        "best_single": evaluate_composed(model, tok, on, [best], [1.0], **kwargs),
        "result": evaluate_composed(model, tok, on, [result], [1.0], **kwargs),
        "names": {
            "base": "base model",
            "uniform": f"uniform average of the {len(candidates)} candidates",
            "best_single": f"best single candidate on the examples: {name}",
            "result": "this result",
        },
    }


def run_lego(
    adapter_dirs: Sequence[str | Path],
    out_dir: str | Path,
    params: LegoParams | None = None,
    *,
    check: MergeCheck | None = None,
) -> dict:
    """Merge `adapter_dirs` with LoRA-LEGO into a rank-k adapter."""
    params = params or LegoParams()
    t0 = time.perf_counter()
    out = _check_out(out_dir)
    adapters = load_adapters(adapter_dirs)
    sets = check.sets(len(adapters)) if check else None
    res = lego_merge(adapters, params)
    iters = list(res.iterations.values())
    result = {
        "method": "lego",
        **_header([adapter_info(a) for a in adapters]),
        "params": {**asdict(params), "k": res.k},
        "weights": params.weights or [1.0] * len(adapters),
        "kmeans_iterations": {"min": min(iters), "max": max(iters)},
        # clusters mixing several inputs' units, per module (of k)
        "mixed_clusters": {
            "mean": round(sum(res.mixed.values()) / len(res.mixed), 3),
            "max": max(res.mixed.values()),
        },
        "timings": {"merge_s": round(res.seconds, 4)},
    }
    if check:
        result["merge_evaluation"] = merge_evaluation(check, adapters, res.modules, sets)
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
    scaling_coef: float = DEFAULT_SCALING_COEF,
    disjoint: str = DEFAULT_DISJOINT,
    check: MergeCheck | None = None,
) -> dict:
    """A baseline merge: peft's methods (linear, cat, svd, ties, dare_*, magnitude_prune),
    the exact `task_arithmetic` or KnOTS (with its scaling coefficient and disjoint merge).
    Weights default to 1/N each."""
    t0 = time.perf_counter()
    out = _check_out(out_dir)
    adapters = load_adapters(adapter_dirs)
    sets = check.sets(len(adapters)) if check else None
    n = len(adapters)
    weights = [1.0 / n] * n if weights is None else list(weights)
    t_merge = time.perf_counter()
    knots = {"scaling_coef": scaling_coef, "disjoint": disjoint} if method in KNOTS_METHODS else {}
    modules = merge(
        method, adapters, weights=weights, density=density, rank=rank, seed=seed, **knots
    )
    result = {
        "method": method,
        **_header([adapter_info(a) for a in adapters]),
        "params": {"density": density, "rank": rank, "seed": seed, **knots},
        "weights": weights,
        "timings": {"merge_s": round(time.perf_counter() - t_merge, 4)},
    }
    if check:
        result["merge_evaluation"] = merge_evaluation(check, adapters, modules, sets)
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
        "adapter": adapter_info(adapter) if adapter else None,
        "examples": _examples_info(examples),
        **evaluation,
        "timings": {"total_s": round(time.perf_counter() - t0, 4)},
    }


def run_try(
    base_dir: str | Path,
    adapter_dir: str | Path,
    text: str,
    *,
    device: str | None = None,
    model_cache=None,
    separator: str = "",
    max_new_tokens: int = 64,
) -> dict:
    """Greedy completions of `text` by the base model and by it with the adapter applied."""
    t0 = time.perf_counter()
    adapter = load_adapter(adapter_dir)
    model, tok = _model(base_dir, device, model_cache)
    check_against_model([adapter], model)
    kwargs = {"separator": separator, "max_new_tokens": max_new_tokens}
    base = generate(model, tok, [text], **kwargs)[0]
    live = LiveComposition(model, [adapter], tokens=math.inf)
    try:
        live.set_weights(torch.tensor([[1.0]], dtype=torch.float64))
        adapted = generate(model, tok, [text], **kwargs)[0]
    finally:
        live.remove()
    return {"base": base, "adapter": adapted, "seconds": round(time.perf_counter() - t0, 4)}


# ---------------------------------------------------------------- helpers


def merge_evaluation(check: MergeCheck, adapters, modules, sets: list[list[Example]]) -> dict:
    """Exact match (and loss) of the base model, the parents and the merge on each example
    set: every parent on a single set, parent i on set i otherwise. `modules`: the merge."""
    t0 = time.perf_counter()
    model, tok = _model(check.base_dir, check.device, check.model_cache)
    check_against_model(adapters, model)
    merged = LoraAdapter(path=None, config={}, modules=modules)

    def scores(adapter, examples) -> dict:
        kwargs = {"separator": check.separator}
        if adapter is None:
            ev = evaluate_model(model, tok, examples, **kwargs)
        else:
            ev = evaluate_composed(model, tok, examples, [adapter], [1.0], **kwargs)
        return {"exact_match": ev["exact_match"], "loss": ev["loss"]}

    rows = []
    for i, examples in enumerate(sets):
        parents = range(len(adapters)) if len(sets) == 1 else [i]
        rows.append(
            {
                "input": None if len(sets) == 1 else i,  # whose task the set is
                "n": len(examples),
                "base": scores(None, examples),
                "parents": [{"input": j, **scores(adapters[j], examples)} for j in parents],
                "merged": scores(merged, examples),
            }
        )
    return {"sets": rows, "seconds": round(time.perf_counter() - t0, 3)}


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


def _header(inputs: Sequence[dict]) -> dict:
    """`inputs`: `adapter_info` of each input adapter."""
    return {
        "engine_version": ENGINE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": inputs[0]["base_model"],
        "inputs": list(inputs),
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
