"""Training tiny base models and LoRA adapters on the synthetic tasks, offline and seeded.

`ensure_suite(kind)` builds (once) and returns a trained suite: a tiny base model trained on
a mixture of every synthetic operation, one LoRA adapter per training task and the list of
held-out tasks. Suites are cached under `~/.cache/lorahub/suite-<version>/<kind>[-quick]/`
(`LORAHUB_CACHE` overrides `~/.cache/lorahub`); a manifest written last marks a complete
build, and a file lock lets concurrent callers wait for one build instead of racing.

Sequence formats are those of `examples.encode_examples` (what the engine scores): seq2seq
models read the input and generate the output + EOS; causal models continue the input with
the output + EOS, so the causal suite's inputs end with `CAUSAL_SUFFIX` to mark where the
input stops (`Suite.examples` adds it).
"""

import fcntl
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from composer.engine import synthetic, toy
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.examples import Example, encode_examples

SUITE_VERSION = "2"
CAUSAL_SUFFIX = "="


@dataclass(frozen=True)
class SuiteSpec:
    """Sizes and step counts of a suite; `quick` trades quality for build time."""

    kind: str  # "t5" or "llama"
    quick: bool = False
    d_model: int = 96
    num_layers: int = 2
    num_heads: int = 4
    d_ff: int = 384
    # The Llama learns every operation (exact match 1.0 on prefixed inputs) between 2,000
    # and 3,000 steps; at 1,500 it only knows the easy ones (first, last, length).
    base_steps: int = 5000
    base_batch: int = 64
    base_lr: float = 3e-3
    lora_r: int = 8
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("q", "v")
    lora_steps: int = 600
    lora_batch: int = 32
    lora_lr: float = 5e-3
    seed: int = 0
    workers: int = 2  # processes training adapters

    @classmethod
    def for_kind(cls, kind: str, *, quick: bool = False) -> "SuiteSpec":
        if kind not in ("t5", "llama"):
            raise ValueError(f"unknown suite kind {kind!r}: use 't5' or 'llama'")
        targets = ("q", "v") if kind == "t5" else ("q_proj", "v_proj")
        spec = cls(kind=kind, quick=quick, lora_targets=targets)
        if quick:
            spec = SuiteSpec(**{**spec.__dict__, "base_steps": 3000, "lora_steps": 400})
        return spec

    @property
    def suffix(self) -> str:
        """Ends every input of this suite's examples (see the module docstring)."""
        return CAUSAL_SUFFIX if self.kind == "llama" else ""

    @property
    def key(self) -> str:
        return self.kind + ("-quick" if self.quick else "")


@dataclass
class Suite:
    """A built suite on disk. `adapters` maps a training task's name to its PEFT dir."""

    root: Path
    kind: str
    base_dir: Path
    adapters: dict[str, Path]
    train_tasks: list[str]
    heldout_tasks: list[str]
    build_seconds: float
    spec: dict = field(default_factory=dict)  # the SuiteSpec it was built with
    info: dict = field(default_factory=dict)  # training summaries, input suffix

    def examples(self, task: str, n: int, seed: int = 0) -> list[Example]:
        """n examples of a synthetic task in this suite's input format."""
        return synthetic.get_task(task).examples(n, seed=seed, suffix=self.info["suffix"])


def cache_root() -> Path:
    return Path(os.environ.get("LORAHUB_CACHE", Path.home() / ".cache" / "lorahub"))


def ensure_suite(
    kind: str = "t5",
    *,
    quick: bool = False,
    root: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Suite:
    """The trained suite of `kind` ("t5" or "llama"), built on first use and then reused.
    `progress` receives a line now and then while a build runs (or waits for another)."""
    say = progress or (lambda _line: None)
    spec = SuiteSpec.for_kind(kind, quick=quick)
    suite_dir = (root or cache_root()) / f"suite-{SUITE_VERSION}" / spec.key
    suite_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(suite_dir.parent / f"{spec.key}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("Another process is building these models; waiting for it to finish...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = suite_dir / "manifest.json"
        if not manifest.exists():
            _build_suite(spec, suite_dir, say)
    return _load_suite(suite_dir)


# Merge adapters: more capacity than the task adapters (every projection of attention and
# feed-forward, r=16), half of the training examples from the other merge tasks' domains
# with the base model's raw-input behaviour (copy) as target, and on those a penalty on the
# adapter's output ΔW·x itself, so that each adapter acts on its own domain only: the sum of
# several adapters then does on each domain what that domain's adapter does.
MERGE_R = 16
MERGE_NEUTRAL = 1000.0  # weight of the ΔW·x penalty on the other domains' inputs
MERGE_TARGETS = {
    "t5": ("q", "k", "v", "o", "wi", "wo"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}


def merge_training_examples(task: synthetic.Task, n: int, seed: int, suffix: str) -> list[Example]:
    """n examples: half of `task`, half copies of inputs from the other merge domains."""
    others = [t for t in synthetic.MERGE_TASKS if t.domain != task.domain]
    own = task.examples(n - n // 2, seed=seed, suffix=suffix)
    neutral = []
    for i, other in enumerate(others):
        k = n // 2 // len(others) + (i < n // 2 % len(others))
        copy = synthetic.Task(name=f"copy@{other.domain}", ops=("copy",), domain=other.domain)
        neutral += copy.examples(k, seed=seed, suffix=suffix)
    mixed = own + neutral
    random.Random(seed).shuffle(mixed)
    return mixed


def _train_merge_adapter(base_dir: str, task: str, suffix: str, n: int, out: str, kwargs: dict):
    examples = merge_training_examples(synthetic.get_task(task), n, kwargs["seed"], suffix)
    domain = synthetic.get_task(task).domain
    neutral = [ex for ex in examples if not set(ex.input) & set(synthetic.DOMAINS[domain])]
    train_lora(base_dir, examples, out, neutral=neutral, neutral_weight=MERGE_NEUTRAL, **kwargs)


def ensure_merge_adapters(suite: Suite, *, steps: int | None = None) -> dict[str, Path]:
    """The merge adapters of `suite` (one per `synthetic.MERGE_TASKS`), built on first use."""
    spec = SuiteSpec(**{**suite.spec, "lora_targets": tuple(suite.spec["lora_targets"])})
    root = suite.root / f"merge-neutral{MERGE_NEUTRAL:g}"
    with open(suite.root.parent / f"{spec.key}-{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = root / "manifest.json"
        if not manifest.exists():
            tmp = root.with_name(root.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            made = {t.name: t.name.replace("@", "-at-") for t in synthetic.MERGE_TASKS}
            kwargs = {
                "r": MERGE_R,
                "alpha": 2 * MERGE_R,
                "target_modules": MERGE_TARGETS[spec.kind],
                "steps": steps or 2 * spec.lora_steps,
                "batch_size": spec.lora_batch,
                "lr": spec.lora_lr,
                "seed": spec.seed,
                "base_model_name": f"lorahub-tiny-{spec.kind}",
            }
            jobs = [
                (str(suite.base_dir), task, spec.suffix, 3000, str(tmp / made[task]), kwargs)
                for task in made
            ]
            _run_parallel(_train_merge_adapter, jobs, spec.workers)
            (tmp / "manifest.json").write_text(json.dumps(made, indent=2))
            tmp.rename(root)
    return {task: root / d for task, d in json.loads(manifest.read_text()).items()}


def _load_suite(suite_dir: Path) -> Suite:
    m = json.loads((suite_dir / "manifest.json").read_text())
    return Suite(
        root=suite_dir,
        kind=m["kind"],
        base_dir=suite_dir / m["base_dir"],
        adapters={t: suite_dir / p for t, p in m["adapters"].items()},
        train_tasks=m["train_tasks"],
        heldout_tasks=[t.name for t in synthetic.HELDOUT_TASKS],  # no adapter depends on them
        build_seconds=m["build_seconds"],
        spec=m["spec"],
        info=m["info"],
    )


def _build_suite(spec: SuiteSpec, suite_dir: Path, say: Callable[[str], None]) -> None:
    """Build into a temporary sibling directory, then rename: never a half-built suite.

    An interrupted build resumes: a finished stage (the base model, each adapter) leaves a
    `training.json` and is not redone. Adapters train in `workers` processes."""
    tmp = suite_dir.with_name(suite_dir.name + ".tmp")
    shutil.rmtree(suite_dir, ignore_errors=True)
    start = time.perf_counter()
    base_dir = tmp / "base"
    if not (base_dir / "training.json").exists():
        shutil.rmtree(base_dir, ignore_errors=True)
        (base_dir.parent).mkdir(parents=True, exist_ok=True)
        say(f"Training the base model ({spec.base_steps} steps)...")
        info = train_base(spec, base_dir, on_step=_every_tenth(spec.base_steps, start, say))
        (base_dir / "training.json").write_text(json.dumps(info, indent=2))
    jobs = []
    for task in synthetic.TRAIN_TASKS:
        out = tmp / "adapters" / task.name.replace("@", "-at-")
        if not (out / "training.json").exists():
            kwargs = {
                "r": spec.lora_r,
                "alpha": spec.lora_alpha,
                "target_modules": spec.lora_targets,
                "steps": spec.lora_steps,
                "batch_size": spec.lora_batch,
                "lr": spec.lora_lr,
                "seed": spec.seed,
                "base_model_name": f"lorahub-tiny-{spec.kind}",
            }
            jobs.append((str(base_dir), task.name, spec.suffix, 2000, str(out), kwargs))
    if jobs:
        say(f"Training {len(jobs)} task adapters ({spec.lora_steps} steps each)...")

    def finished(done: int, job: tuple) -> None:
        elapsed = time.perf_counter() - start
        say(f"  adapter {done}/{len(jobs)} ({job[1]}) trained, {elapsed:.0f} s so far")

    _run_parallel(_train_task_adapter, jobs, spec.workers, on_done=finished)
    adapters = {t.name: f"adapters/{t.name.replace('@', '-at-')}" for t in synthetic.TRAIN_TASKS}
    manifest = {
        "version": SUITE_VERSION,
        "kind": spec.kind,
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.__dict__.items()},
        "base_dir": "base",
        "adapters": adapters,
        "train_tasks": [t.name for t in synthetic.TRAIN_TASKS],
        "heldout_tasks": [t.name for t in synthetic.HELDOUT_TASKS],
        "build_seconds": round(time.perf_counter() - start, 1),
        "info": {
            "base": json.loads((base_dir / "training.json").read_text()),
            "adapters": {
                t: json.loads((tmp / d / "training.json").read_text()) for t, d in adapters.items()
            },
            "suffix": spec.suffix,
        },
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    tmp.rename(suite_dir)


def _train_task_adapter(base_dir: str, task: str, suffix: str, n: int, out: str, kwargs: dict):
    """One adapter job (module level, so that a worker process can run it)."""
    examples = synthetic.get_task(task).examples(n, seed=kwargs["seed"], suffix=suffix)
    train_lora(base_dir, examples, out, **kwargs)


def _run_parallel(fn, jobs: list[tuple], workers: int, on_done=None) -> None:
    """Run fn(*job) for every job, in `workers` spawned processes (each one thread);
    `on_done(count, job)` after each one finishes."""
    on_done = on_done or (lambda _n, _job: None)
    if workers <= 1 or len(jobs) <= 1:
        for n, job in enumerate(jobs, 1):
            fn(*job)
            on_done(n, job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that ran OpenMP
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = {pool.submit(fn, *job): job for job in jobs}
        for n, future in enumerate(as_completed(futures), 1):
            future.result()
            on_done(n, futures[future])


def _every_tenth(steps: int, start: float, say: Callable[[str], None]):
    """An on_step callback that reports steps, loss and time at each tenth of `steps`."""
    tenth = max(1, steps // 10)

    def on_step(step: int, loss: float) -> None:
        if step % tenth == 0 or step == steps:
            elapsed = time.perf_counter() - start
            say(f"  base model: step {step}/{steps}, loss {loss:.3f}, {elapsed:.0f} s")

    return on_step


# ---------------------------------------------------------------- training


def _train(
    model,
    tok,
    pool: Sequence[Example],
    *,
    steps,
    batch_size,
    lr,
    seed,
    params,
    neutral=None,
    on_step=None,
) -> dict:
    """AdamW with linear warm-up and decay on random batches (with replacement) of `pool`.

    `neutral` = (examples, weight, lora_B modules): each step also runs a batch of those
    examples and adds weight · mean square of the LoRA branch outputs (B A x) on them."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min((i + 1) / warmup, max(0.05, (steps - i) / (steps - warmup + 1)))
    )
    causal = not model.config.is_encoder_decoder
    model.train()
    start = time.perf_counter()
    threads = torch.get_num_threads()
    # One thread: tiny matmuls gain little from more, and on a busy machine OpenMP threads
    # spin-waiting for each other make two threads several times slower than one.
    torch.set_num_threads(1)
    try:
        losses = _steps(
            model, tok, pool, opt, sched, params, gen, steps, batch_size, causal, neutral, on_step
        )
    finally:
        torch.set_num_threads(threads)
    model.eval()
    tail = losses[-max(1, steps // 10) :]
    return {
        "steps": steps,
        "first_loss": round(losses[0], 4),
        "final_loss": round(sum(tail) / len(tail), 4),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _steps(
    model, tok, pool, opt, sched, params, gen, steps, batch_size, causal, neutral, on_step=None
) -> list[float]:
    losses = []
    outputs: list[torch.Tensor] = []
    hooks = []
    if neutral is not None:
        hooks = [
            m.register_forward_hook(lambda _m, _a, out: outputs.append(out)) for m in neutral[2]
        ]
    for _ in range(steps):
        idx = torch.randint(0, len(pool), (batch_size,), generator=gen).tolist()
        outputs.clear()
        loss = model(**encode_examples(tok, [pool[i] for i in idx], causal=causal)).loss
        if neutral is not None:
            examples, weight, _ = neutral
            outputs.clear()
            idx = torch.randint(0, len(examples), (batch_size,), generator=gen).tolist()
            model(**encode_examples(tok, [examples[i] for i in idx], causal=causal))
            loss = loss + weight * torch.stack([o.pow(2).mean() for o in outputs]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(len(losses), losses[-1])
    for h in hooks:
        h.remove()
    return losses


def _seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def train_base(spec: SuiteSpec, out_dir: Path, on_step=None) -> dict:
    """A tiny base model of `spec.kind` trained on `synthetic.base_mixture`."""
    _seed_all(spec.seed)
    if spec.kind == "t5":
        toy.build_tiny_t5(
            out_dir,
            d_model=spec.d_model,
            num_layers=spec.num_layers,
            num_heads=spec.num_heads,
            d_ff=spec.d_ff,
            seed=spec.seed,
        )
    else:
        toy.build_tiny_llama(
            out_dir,
            hidden_size=spec.d_model,
            num_layers=spec.num_layers,
            num_heads=spec.num_heads,
            intermediate_size=spec.d_ff,
            seed=spec.seed,
        )
    model = load_base_model(out_dir)
    tok = load_tokenizer(out_dir)
    _disable_dropout(model)
    causal = not model.config.is_encoder_decoder
    pool = synthetic.base_mixture(
        spec.base_steps * spec.base_batch // 4,
        seed=spec.seed,
        suffix=CAUSAL_SUFFIX if causal else "",
    )
    info = _train(
        model,
        tok,
        pool,
        steps=spec.base_steps,
        batch_size=spec.base_batch,
        lr=spec.base_lr,
        seed=spec.seed,
        params=[p for p in model.parameters() if p.requires_grad],
        on_step=on_step,
    )
    model.save_pretrained(out_dir)
    return info


def _lora_b_modules(peft_model) -> list[torch.nn.Module]:
    """The lora_B Linears: their outputs are the LoRA branch B A x (before scaling)."""
    return [m for name, m in peft_model.named_modules() if name.endswith("lora_B.default")]


def _disable_dropout(model) -> None:
    """Dropout slows CPU training by a third and these tiny models do not need it."""
    for name in ("dropout_rate", "attention_dropout", "dropout"):
        if hasattr(model.config, name):
            setattr(model.config, name, 0.0)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def train_lora(
    base_dir: str | Path,
    examples: Sequence[Example],
    out_dir: str | Path,
    *,
    r: int = 8,
    alpha: int = 16,
    target_modules: Sequence[str] = ("q", "v"),
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 5e-3,
    seed: int = 0,
    base_model_name: str | None = None,
    neutral: Sequence[Example] | None = None,
    neutral_weight: float = 1.0,
) -> dict:
    """Train one LoRA on examples and save it as a PEFT dir.

    Works for a handful of examples too (a few-shot LoRA): batches are drawn with replacement.
    `neutral` examples (inputs outside the task) add `neutral_weight` · mean square of the
    adapter's output ΔW·x on them to the loss: the adapter learns to leave them untouched,
    so that adapters trained this way on disjoint inputs can be summed.
    Returns the training summary (losses, seconds), also written as `training.json`.
    """
    _seed_all(seed)
    tok = load_tokenizer(base_dir)
    peft_model = toy.lora_wrap(load_base_model(base_dir), r=r, alpha=alpha, targets=target_modules)
    info = _train(
        peft_model,
        tok,
        examples,
        steps=steps,
        batch_size=min(batch_size, len(examples)),
        lr=lr,
        seed=seed,
        params=[p for p in peft_model.parameters() if p.requires_grad],
        neutral=None if not neutral else (neutral, neutral_weight, _lora_b_modules(peft_model)),
    )
    out = toy.lora_save(peft_model, out_dir, base_model_name or str(base_dir))
    (out / "training.json").write_text(json.dumps({"examples": len(examples), **info}, indent=2))
    return info
