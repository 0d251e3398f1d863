"""LoraHub speed, as ratios measured side by side in one run.

(a) overhead: time per evaluation of the objective / time of one plain forward pass of the
    examples, for the engine (sequential, also with folding off, and per candidate with
    population batching) and for a reference-style loop (rebuild the composed state dict,
    `set_peft_model_state_dict`, a new DataLoader, each evaluation); on the tiny T5 and on a
    T5-base shape (random weights), 20 candidates, r=16, q and v, 5 examples.
(b) end to end: one composition including loading (engine `run_lorahub`) against the
    reference-style path that loads the base model and every adapter on each call and
    writes a fully merged model.
(c) `--device cuda` runs the same on a GPU; skipped (recorded as such) where none is.
Writes bench/results/engine_speed.json.
"""

import argparse
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from composer.engine import synthetic, toy
from composer.engine.adapters import LoraModule, load_adapter, load_adapters, save_adapter
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.lorahub import LiveComposition, LoraHubParams, Scorer
from composer.engine.run import run_lorahub
from composer.engine.training import cache_root

RESULTS = Path(__file__).parent / "results"
N_CANDIDATES, RANK, N_EXAMPLES = 20, 16, 5
SHAPES = {
    "tiny": {"d_model": 96, "num_layers": 2, "num_heads": 4, "d_ff": 384},
    "t5-base": {"d_model": 768, "num_layers": 12, "num_heads": 12, "d_ff": 3072},
}


def fixture(shape: str) -> tuple[Path, list[Path]]:
    """A random base model of `shape` and N_CANDIDATES random r=16 q,v adapters (cached)."""
    root = cache_root() / "bench-speed-1" / shape
    base, adapters = root / "base", [root / f"adapter{i:02d}" for i in range(N_CANDIDATES)]
    if (root / "done").exists():
        return base, adapters
    toy.build_tiny_t5(base, **SHAPES[shape])
    toy.make_random_adapter(base, adapters[0], r=RANK, alpha=2 * RANK, seed=0)
    first = load_adapter(adapters[0])
    gen = torch.Generator().manual_seed(0)
    for out in adapters[1:]:
        modules = {
            name: LoraModule(
                A=torch.randn(m.A.shape, generator=gen) * 0.02,
                B=torch.randn(m.B.shape, generator=gen) * 0.02,
                scale=m.scale,
            )
            for name, m in first.modules.items()
        }
        save_adapter(out, modules, base_model=str(base), task_type="SEQ_2_SEQ_LM")
        (out / "result.json").unlink(missing_ok=True)
    (root / "done").write_text("ok\n")
    return base, adapters


def examples() -> list:
    return synthetic.get_task("reverse@digits").examples(N_EXAMPLES, seed=0)


def interleaved(fns: dict, reps: int, *, warmup: bool = True, calls: int = 1) -> dict[str, list]:
    """Seconds per call of each function in each round: the functions run in turn (`calls`
    calls of each per round, after a warm-up round; each round in another order, so that
    none always follows the same one), and a change in the machine's load affects all of
    them alike. Several calls in a row time the steady state, as a search
    runs its evaluations back to back: a single call of a few milliseconds is sped up or
    slowed down by a few percent by whatever ran just before it (caches, the allocator)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for round_ in range(reps + warmup):
        start = round_ % len(names)  # each round starts with the next function
        for name in names[start:] + names[:start]:
            fn = fns[name]
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            if round_ or not warmup:
                times[name].append((time.perf_counter() - t) / calls)
    return times


def ratios(times: dict[str, list], unit: str) -> dict[str, float]:
    """Median over rounds of each function's time / `unit`'s time in the same round: a
    round's functions ran within a second of each other, so a machine that slows down
    between rounds (it is shared) sways the ratio less than it sways the times."""
    return {
        name: statistics.median(t / u for t, u in zip(ts, times[unit], strict=True))
        for name, ts in times.items()
    }


def plain_forward(model, tok, exs):
    """The floor: one forward pass of the examples, nothing else."""
    batch = Scorer(model, tok, exs).batches[0]
    inputs = {k: v for k, v in batch.items() if k != "labels"}

    @torch.inference_mode()
    def forward():
        model(**inputs, use_cache=False)

    return forward


def reference_loop(base_dir, adapter_dirs, exs, device):
    """Per evaluation, as the reference does it: Python rebuild of the composed state dict,
    `set_peft_model_state_dict` on the whole model, a new DataLoader, summed batch losses."""
    from peft import PeftModel, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    model = PeftModel.from_pretrained(load_base_model(base_dir, device=device), adapter_dirs[0])
    model.eval()
    tok = load_tokenizer(base_dir)
    states = [load_peft_weights(str(d), device=str(device)) for d in adapter_dirs]
    enc = tok([e.input for e in exs], padding=True, return_tensors="pt")
    lab = tok([e.output for e in exs], padding=True, return_tensors="pt").input_ids
    lab[lab == tok.pad_token_id] = -100
    rows = [
        {"input_ids": enc.input_ids[i], "attention_mask": enc.attention_mask[i], "labels": lab[i]}
        for i in range(len(exs))
    ]
    gen = torch.Generator().manual_seed(0)

    def evaluate():
        w = (torch.rand(len(states), generator=gen) * 3 - 1.5).tolist()
        composed = {}
        for key in states[0]:
            composed[key] = sum(wi * s[key] for wi, s in zip(w, states, strict=True))
        set_peft_model_state_dict(model, composed)
        loader = torch.utils.data.DataLoader(rows, batch_size=len(rows), shuffle=False)
        total = 0.0
        with torch.no_grad():
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                total += model(**batch).loss.item()
        return total / len(rows)

    return evaluate


def engine_evaluation(live, scorer, n_adapters: int, population: int):
    """One engine evaluation of `population` candidates, as `compose` does it: write the
    composed weights (one matmul) and one batched forward through the wrapped modules. The
    candidates are drawn beforehand, as the optimiser's are."""
    rng = np.random.default_rng(population)
    candidates = itertools.cycle(
        [rng.uniform(-1.5, 1.5, (population, n_adapters)) for _ in range(64)]
    )

    def evaluate():
        live.set_weights(torch.from_numpy(next(candidates)))
        scorer.losses(population)

    return evaluate


POPULATIONS = (4, 10)
# Calls in a row per timing (see interleaved): the tiny model's forward takes about 2 ms.
CALLS = {"tiny": 10, "t5-base": 1}


def overhead(shape: str, device, reps: int) -> dict:
    base_dir, adapter_dirs = fixture(shape)
    tok = load_tokenizer(base_dir)
    plain = load_base_model(base_dir, device=device)  # never wrapped
    adapters = load_adapters(adapter_dirs)
    exs = examples()
    fns = {"forward": plain_forward(plain, tok, exs)}
    lives = []
    # each population on its own copy of the model, composed as `compose` does it
    # ("added": folding off, every module adds its LoRA, to show what folding gains)
    for name, p in [("pop1", 1), ("added", 1), *((f"pop{p}", p) for p in POPULATIONS)]:
        model = load_base_model(base_dir, device=device)
        scorer = Scorer(model, tok, exs)
        tokens = None if name == "added" else scorer.tokens
        lives.append(LiveComposition(model, adapters, population=p, tokens=tokens))
        fns[f"engine_{name}"] = engine_evaluation(lives[-1], scorer, len(adapters), p)
    fns["reference"] = reference_loop(base_dir, adapter_dirs, exs, device)
    try:
        times = interleaved(fns, reps, calls=CALLS[shape])
    finally:
        for live in lives:
            live.remove()
    t = ratios(times, "forward")
    row = {
        "shape": shape,
        "reps": reps,
        "forward_ms": round(1e3 * statistics.median(times["forward"]), 2),
        "engine_per_eval": round(t["engine_pop1"], 3),
        "folded_modules": f"{sum(len(f[0]) for f in lives[0].folds)} of {len(lives[0].names)}",
        "engine_per_eval_added": round(t["engine_added"], 3),
        "reference_per_eval": round(t["reference"], 3),
    }
    for p in POPULATIONS:
        row[f"engine_pop{p}_per_candidate"] = round(t[f"engine_pop{p}"] / p, 3)
    return row


def end_to_end(shape: str, device, budget: int, reps: int) -> dict:
    """One composition from files, engine against reference-style (everything reloaded and a
    fully merged model written, as the reference does), run in turn `reps` times."""
    from peft import PeftModel, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    base_dir, adapter_dirs = fixture(shape)
    exs = examples()
    params = LoraHubParams(budget=budget)
    tmp = Path(tempfile.mkdtemp())
    runs = iter(range(1_000_000))

    def engine():
        run_lorahub(base_dir, adapter_dirs, exs, tmp / f"engine{next(runs)}", params, device=device)

    def reference():
        model = load_base_model(base_dir, device=device)
        model = PeftModel.from_pretrained(model, adapter_dirs[0]).eval()
        for d in adapter_dirs:  # the reference loads the first adapter twice
            PeftModel.from_pretrained(load_base_model(base_dir, device=device), d)
        states = [load_peft_weights(str(d), device=str(device)) for d in adapter_dirs]
        tok = load_tokenizer(base_dir)
        batch = Scorer(model, tok, exs).batches[0]
        gen = torch.Generator().manual_seed(0)
        for _ in range(budget):
            w = (torch.rand(len(states), generator=gen) * 3 - 1.5).tolist()
            composed = {
                k: sum(wi * s[k] for wi, s in zip(w, states, strict=True)) for k in states[0]
            }
            set_peft_model_state_dict(model, composed)
            loader = torch.utils.data.DataLoader([batch], batch_size=None)
            with torch.no_grad():
                for b in loader:
                    model(**{k: v for k, v in b.items() if k != "decoder_input_ids"}).loss.item()
        model.merge_and_unload().save_pretrained(tmp / f"reference{next(runs)}")

    try:
        times = interleaved({"engine": engine, "reference": reference}, reps, warmup=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "shape": shape,
        "budget": budget,
        "reps": reps,
        "engine_s": round(seconds["engine"], 2),
        "reference_s": round(seconds["reference"], 2),
        "speedup": round(1 / ratios(times, "reference")["engine"], 2),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench engine_speed")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--shapes", nargs="*", default=list(SHAPES))
    args = ap.parse_args(argv or [])
    result: dict = {"benchmark": "engine_speed", "device": args.device, "threads": 1}
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        result["skipped"] = "no CUDA device"
        print("engine_speed: skipped, no CUDA device")
        return result
    torch.set_num_threads(1)  # stable ratios on a shared machine
    device = torch.device(args.device)
    result["overhead"] = []
    result["end_to_end"] = []
    for shape in args.shapes:
        tiny = shape == "tiny"
        row = overhead(shape, device, args.reps if tiny else max(3, args.reps // 3))
        print(row, flush=True)
        result["overhead"].append(row)
        e2e = end_to_end(shape, device, budget=40 if shape == "tiny" else 10, reps=tiny + 1)
        print(e2e, flush=True)
        result["end_to_end"].append(e2e)
    result["gpu"] = "skipped: no CUDA device" if not torch.cuda.is_available() else "see --device"
    RESULTS.mkdir(exist_ok=True)
    name = "engine_speed" if args.device == "cpu" else f"engine_speed_{args.device}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
