"""LoraHub composition: a gradient-free search for weights w that mix N LoRA adapters.

For every LoRA-targeted module the composed adapter is A' = Σ_i w_i A_i, B' = Σ_i w_i B_i
(A and B mixed separately, as in the paper). The search minimises
    f(w) = CE(w) + l1 · mean_i |w_i|
with nevergrad (default `NGOpt`, budget 40, w in [-1.5, 1.5], starting at w = 0).

What CE is (`LoraHubParams.loss_norm`):
- "reference" (default, the reference implementation's value): Σ over batches of the batch's
  mean token cross-entropy, divided by the number of examples. With all examples in one
  batch (`batch_size=None`, the default) that is mean-token-CE / n_examples.
- "token": the mean token cross-entropy over every output token of every example.

How it is fast:
- `LiveComposition` stacks all adapters once into one matrix [N, Σ_modules (r·d_in + d_out·r)];
  a candidate w (or a population W [P, N]) is written into a persistent buffer by ONE matmul,
  and the base model's targeted Linears, wrapped for the search, add s · (x A'ᵀ) B'ᵀ from
  views of that buffer. Their weights are never modified and the wrapping is undone
  afterwards, so a worker can keep the base model cached.
- examples are tokenised once; each evaluation is one batched forward under inference_mode;
  causal LMs compute logits only from the first output position on.
- `population > 1` evaluates P candidates in one forward: the batch is the examples
  repeated P times, and each block of rows gets its own composed LoRA (bmm).
  The optimiser then runs with `num_workers=P` (nevergrad may pick another algorithm).
  `population=1` is the reference's sequential search.
Mixed ranks are zero-padded to the largest; different scalings are folded into B (the
result then has scale 1).
"""

import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from composer.engine.adapters import LoraAdapter, LoraModule
from composer.engine.compat import check_against_model, check_compatible
from composer.engine.examples import Example, encode_examples

LOSS_NORMS = ("reference", "token")
PICKS = ("recommendation", "best")


class Cancelled(Exception):
    """The search was stopped by `should_stop`; `step` evaluations had been done (if known)."""

    def __init__(self, step: int | None = None):
        super().__init__("cancelled" if step is None else f"cancelled after {step} evaluations")
        self.step = step


@dataclass
class LoraHubParams:
    budget: int = 40  # evaluations of the objective
    optimizer: str = "NGOpt"  # any name in nevergrad.optimizers.registry
    seed: int = 0
    l1: float = 0.05  # weight of mean|w| in the objective
    bound: float = 1.5  # w in [-bound, bound]
    population: int = 1  # candidates per batched forward (1 = sequential, as the reference)
    loss_norm: str = "reference"  # see the module docstring
    batch_size: int | None = None  # examples per forward (None: all in one batch)
    pick: str = "recommendation"  # final w: the optimiser's recommendation or the best seen
    separator: str = ""  # causal LMs: text between input and output
    max_length: int | None = 1024  # tokens per example

    def validate(self) -> None:
        if self.budget < 1:
            raise ValueError(f"budget must be at least 1, got {self.budget}")
        if self.population < 1:
            raise ValueError(f"population must be at least 1, got {self.population}")
        import nevergrad as ng  # slow to import: only where a search needs it

        if self.optimizer not in ng.optimizers.registry:
            raise ValueError(f"unknown nevergrad optimizer {self.optimizer!r}")
        if self.loss_norm not in LOSS_NORMS:
            raise ValueError(f"loss_norm must be one of {LOSS_NORMS}, got {self.loss_norm!r}")
        if self.pick not in PICKS:
            raise ValueError(f"pick must be one of {PICKS}, got {self.pick!r}")
        if not self.bound > 0 or self.l1 < 0:
            raise ValueError("bound must be positive and l1 non-negative")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    @classmethod
    def reference(cls, seed: int = 0) -> "LoraHubParams":
        """The paper's settings: NGOpt, budget 40, l1 0.05, bound 1.5, sequential."""
        return cls(seed=seed)


@dataclass
class StepInfo:
    """One evaluation of the objective, passed to `on_step`."""

    step: int  # evaluations done so far (1-based)
    budget: int
    loss: float  # objective of this candidate (ce + l1 term)
    best_loss: float
    weights: list[float]
    best_weights: list[float]
    ce: float = 0.0
    seconds: float = 0.0  # since the search started


@dataclass
class LoraHubResult:
    weights: list[float]  # the final w
    loss: float  # objective at the final w
    ce: float  # CE at the final w
    best_weights: list[float]
    best_loss: float
    history: list[dict]  # one {"step", "loss", "ce", "weights"} per evaluation
    modules: dict[str, LoraModule]
    timings: dict[str, float]
    params: LoraHubParams
    optimizer: str = ""  # what nevergrad actually ran

    def summary(self) -> dict:
        """JSON-serialisable description (no tensors)."""
        return {
            "weights": self.weights,
            "loss": self.loss,
            "ce": self.ce,
            "best_weights": self.best_weights,
            "best_loss": self.best_loss,
            "history": self.history,
            "optimizer": self.optimizer,
            "params": asdict(self.params),
            "timings": self.timings,
        }


class LiveComposition:
    """N adapters stacked once; `model`'s targeted modules add the composed candidates.

    Layout: for module m, row i of `stack` [N, total] holds A_i (padded to r_m, flattened
    [r_m·d_in]) then B_i·s_i/s (padded, flattened [d_out·r_m]). `buffer` [P, total] holds P
    composed candidates; the wrapped modules read A'_p [r_m, d_in], B'_p [d_out, r_m] as
    views of it.
    """

    def __init__(self, model: torch.nn.Module, adapters: Sequence[LoraAdapter], population=1):
        self.names = sorted(adapters[0].modules)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        scales = {m.scale for a in adapters for m in a.modules.values()}
        # One shared scaling stays the adapters' own; different ones are folded into B.
        self.scale = scales.pop() if len(scales) == 1 else 1.0
        self.layout: dict[str, tuple[int, int, int, int]] = {}  # name -> (offset, r, d_in, d_out)
        offset = 0
        for name in self.names:
            m0 = adapters[0].modules[name]
            r = max(a.modules[name].r for a in adapters)
            self.layout[name] = (offset, r, m0.d_in, m0.d_out)
            offset += r * (m0.d_in + m0.d_out)
        self.total = offset
        # stack [N, total], float32 so that mixing is exact whatever the model's dtype
        self.stack = torch.zeros(len(adapters), offset, device=self.device)
        for i, a in enumerate(adapters):
            for name, (off, r, d_in, d_out) in self.layout.items():
                m = a.modules[name]
                A = torch.zeros(r, d_in)
                A[: m.r] = m.A.float()
                B = torch.zeros(d_out, r)
                B[:, : m.r] = m.B.float() * (m.scale / self.scale)
                self.stack[i, off : off + r * d_in] = A.flatten().to(self.device)
                self.stack[i, off + r * d_in : off + r * (d_in + d_out)] = B.flatten().to(
                    self.device
                )
        self.buffer = torch.zeros(population, offset, device=self.device, dtype=self.dtype)
        self.active = 1  # candidates in the current forward
        # per-module views of the buffer, made once (the buffer is only written in place)
        self.views = {name: self._views(name, self.buffer) for name in self.names}
        # (module, its own `forward` attribute before, if any): restored by remove()
        self.patched = [self._patch(model.get_submodule(name), name) for name in self.names]

    def set_weights(self, W: torch.Tensor) -> None:
        """Write candidates W [P, N] into the buffer: one matmul for every module."""
        W = W.to(self.device, torch.float32).reshape(-1, self.stack.shape[0])
        if W.shape[0] > self.buffer.shape[0]:
            raise ValueError(f"{W.shape[0]} candidates, buffer holds {self.buffer.shape[0]}")
        target = self.buffer[: W.shape[0]]
        if self.dtype == torch.float32:
            torch.matmul(W, self.stack, out=target)
        else:
            target.copy_(W @ self.stack)
        self.active = W.shape[0]

    def _views(self, name: str, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        off, r, d_in, d_out = self.layout[name]
        A = rows[:, off : off + r * d_in].view(-1, r, d_in)
        B = rows[:, off + r * d_in : off + r * (d_in + d_out)].view(-1, d_out, r)
        return A, B

    def _patch(self, module: torch.nn.Module, name: str):
        """Make `module` add the composed LoRA to its output: s · (x A'ᵀ) B'ᵀ.

        An instance `forward` rather than a forward hook: hooks send every call through
        nn.Module's slow path. For a plain Linear it calls F.linear itself (a Python frame
        per call counts on a tiny model), and the scale rides on addmm_: an evaluation adds
        two small ops per module to a plain forward.
        """
        A, B = self.views[name]  # [P_max, r, d_in], [P_max, d_out, r], views of the buffer
        A1, B1t = A[0], B[0].t()  # [r, d_in], [r, d_out]
        r, scale = A1.shape[0], self.scale
        own = module.__dict__.get("forward")

        def add(x, out):  # out [P·b, ..., d_out]: the module's fresh output, added to in place
            P = self.active
            if P == 1:
                out.view(-1, out.shape[-1]).addmm_(F.linear(x, A1).view(-1, r), B1t, alpha=scale)
            else:  # row block p of the batch gets candidate p
                xs = x.reshape(P, -1, x.shape[-1])  # [P, b·T, d_in]
                out.view(P, -1, out.shape[-1]).baddbmm_(
                    torch.bmm(xs, A[:P].transpose(1, 2)), B[:P].transpose(1, 2), alpha=scale
                )
            return out

        if own is None and type(module) is torch.nn.Linear:  # the Linear's own forward, inlined
            weight, bias = module.weight, module.bias

            def forward(x):
                return add(x, F.linear(x, weight, bias))

        else:  # a subclass, or already wrapped (e.g. by accelerate): wrapped again
            inner = module.forward

            def forward(x, *args, **kwargs):
                return add(x, inner(x, *args, **kwargs))

        module.forward = forward
        return module, own

    def modules(self, w: Sequence[float]) -> dict[str, LoraModule]:
        """The composed adapter for weights w, on the CPU in float32."""
        row = torch.as_tensor(np.asarray(w), dtype=torch.float32, device=self.device)
        composed = (row[None] @ self.stack).cpu()
        out = {}
        for name in self.names:
            A, B = self._views(name, composed)
            out[name] = LoraModule(A=A[0].clone(), B=B[0].clone(), scale=self.scale)
        return out

    def remove(self) -> None:
        """Give the modules back their own forward (the model is as it was)."""
        for module, own in self.patched:
            if own is None:
                del module.forward
            else:
                module.forward = own
        self.patched = []


class Scorer:
    """Cross-entropy of P composed candidates on the (pre-tokenised) examples."""

    def __init__(self, model, tok, examples, *, separator="", batch_size=None, max_length=None):
        self.model = model
        self.causal = not model.config.is_encoder_decoder
        device = next(model.parameters()).device
        enc = encode_examples(
            tok, examples, causal=self.causal, separator=separator, max_length=max_length
        )
        self.n_examples = len(examples)
        size = batch_size or self.n_examples
        self.batches = []
        for i in range(0, self.n_examples, size):
            batch = _slice_batch(enc, i, i + size, causal=self.causal)
            if not self.causal:
                batch["decoder_input_ids"] = _decoder_inputs(model, batch["labels"])
            self.batches.append({k: v.to(device) for k, v in batch.items()})
        counts = [int((b["labels"] != -100).sum()) for b in self.batches]
        self.n_tokens = sum(counts)
        self.keep_logits = (
            self.causal and "logits_to_keep" in inspect.signature(model.forward).parameters
        )
        # per batch: (labels [b, T_out] of the scored positions, the forward's kwargs, count),
        # made once; `_repeated` holds them repeated P times, for each P asked for
        self._prepared = [self._prepare(b, c) for b, c in zip(self.batches, counts, strict=True)]
        self._repeated: dict[int, list[tuple[torch.Tensor, dict, int]]] = {1: self._prepared}

    def _prepare(self, b: dict, count: int) -> tuple[torch.Tensor, dict, int]:
        inputs = {k: v for k, v in b.items() if k != "labels"}
        inputs["use_cache"] = False
        labels = b["labels"]
        if self.causal:
            first = int((labels != -100).int().argmax(1).min())  # earliest output token
            if self.keep_logits:
                inputs["logits_to_keep"] = labels.shape[1] - first + 1
            labels = labels[:, first:].contiguous()
        return labels, inputs, count

    @torch.inference_mode()
    def losses(self, P: int = 1, *, norm: str = "reference") -> torch.Tensor:
        """CE [P] of the P candidates currently written into the composition."""
        if P not in self._repeated:
            self._repeated[P] = [
                (labels.repeat(P, 1), {k: _repeat(v, P) for k, v in inputs.items()}, count)
                for labels, inputs, count in self._prepared
            ]
        # Accumulated in numpy: a few float64s, where each torch op would cost microseconds.
        total = np.zeros(P)
        for labels, inputs, count in self._repeated[P]:
            sums = self._token_ce_sums(labels, inputs, P)
            total += sums / count if norm == "reference" else sums
        return torch.from_numpy(total / (self.n_examples if norm == "reference" else self.n_tokens))

    def _token_ce_sums(self, labels: torch.Tensor, inputs: dict, P: int) -> np.ndarray:
        """Summed token CE [P] of one batch, in float64."""
        logits = self.model(**inputs).logits  # [P·b, T, vocab]
        if self.causal:  # predict tokens first..T-1
            logits = logits[:, -(labels.shape[1] + 1) : -1]
        ce = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            labels.reshape(-1),
            ignore_index=-100,
            reduction="none",
        )
        return ce.view(P, -1).sum(1, dtype=torch.float64).cpu().numpy()


def _repeat(v, P: int):
    return v.repeat(P, 1) if isinstance(v, torch.Tensor) else v


def _decoder_inputs(model, labels: torch.Tensor) -> torch.Tensor:
    """Teacher-forcing decoder inputs: labels shifted right after the decoder start token."""
    if hasattr(model, "prepare_decoder_input_ids_from_labels"):
        return model.prepare_decoder_input_ids_from_labels(labels=labels)
    cfg = model.config
    start = (
        cfg.decoder_start_token_id if cfg.decoder_start_token_id is not None else cfg.pad_token_id
    )
    shifted = torch.full_like(labels, start)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, cfg.pad_token_id)


def _slice_batch(enc: dict[str, torch.Tensor], i: int, j: int, *, causal: bool) -> dict:
    """Rows i..j of a padded encoding, without the columns that are padding in all of them."""
    mask = enc["attention_mask"][i:j]
    width = int(mask.any(0).nonzero().max()) + 1
    out = {"input_ids": enc["input_ids"][i:j, :width], "attention_mask": mask[:, :width]}
    labels = enc["labels"][i:j]
    if not causal:  # seq2seq labels have their own width
        width = int((labels != -100).any(0).nonzero().max()) + 1
    out["labels"] = labels[:, :width]
    return {k: v.contiguous() for k, v in out.items()}


def compose(
    model: torch.nn.Module,
    tokenizer,
    adapters: Sequence[LoraAdapter],
    examples: Sequence[Example],
    params: LoraHubParams | None = None,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LoraHubResult:
    """Search the LoraHub weights for `adapters` on `examples` with a loaded base model.

    `on_step(StepInfo)` is called after every evaluation; `should_stop()` is checked before
    every forward and raises `Cancelled` when it returns true. The model is left unchanged.
    """
    import nevergrad as ng

    params = params or LoraHubParams()
    params.validate()
    check_compatible(adapters, "lorahub")
    check_against_model(adapters, model)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    scorer = Scorer(
        model,
        tokenizer,
        examples,
        separator=params.separator,
        batch_size=params.batch_size,
        max_length=params.max_length,
    )
    live = LiveComposition(model, adapters, population=params.population)
    timings["prepare_s"] = time.perf_counter() - t0
    n = len(adapters)
    try:
        param = ng.p.Array(init=np.zeros(n), lower=-params.bound, upper=params.bound)
        param.random_state = np.random.RandomState(params.seed)
        optimizer = ng.optimizers.registry[params.optimizer](
            parametrization=param, budget=params.budget, num_workers=params.population
        )
        history: list[dict] = []
        best = (math.inf, np.zeros(n))
        t_search = time.perf_counter()
        eval_s = 0.0
        while len(history) < params.budget:
            if should_stop is not None and should_stop():
                raise Cancelled(len(history))
            k = min(params.population, params.budget - len(history))
            cands = [optimizer.ask() for _ in range(k)]
            W = np.stack([np.asarray(c.value, dtype=np.float64) for c in cands])
            t_eval = time.perf_counter()
            live.set_weights(torch.from_numpy(W))
            ces = scorer.losses(k, norm=params.loss_norm).numpy()
            eval_s += time.perf_counter() - t_eval
            for cand, w, ce in zip(cands, W, ces, strict=True):
                loss = float(ce) + params.l1 * float(np.mean(np.abs(w)))
                optimizer.tell(cand, loss)
                if loss < best[0]:
                    best = (loss, w.copy())
                history.append(
                    {"step": len(history) + 1, "loss": loss, "ce": float(ce), "weights": w.tolist()}
                )
                if on_step is not None:
                    on_step(
                        StepInfo(
                            step=len(history),
                            budget=params.budget,
                            loss=loss,
                            best_loss=best[0],
                            weights=w.tolist(),
                            best_weights=best[1].tolist(),
                            ce=float(ce),
                            seconds=time.perf_counter() - t_search,
                        )
                    )
        timings["search_s"] = time.perf_counter() - t_search
        timings["eval_mean_s"] = eval_s / max(1, math.ceil(params.budget / params.population))
        if params.pick == "best":
            final = best[1]
        else:
            final = np.asarray(optimizer.provide_recommendation().value, dtype=np.float64)
        seen = next((h for h in history if np.array_equal(h["weights"], final)), None)
        if seen is not None:
            final_ce = seen["ce"]
        else:
            live.set_weights(torch.from_numpy(final[None]))
            final_ce = float(scorer.losses(1, norm=params.loss_norm)[0])
        modules = live.modules(final)
    finally:
        live.remove()
    timings["total_s"] = time.perf_counter() - t0
    return LoraHubResult(
        weights=final.tolist(),
        loss=final_ce + params.l1 * float(np.mean(np.abs(final))),
        ce=final_ce,
        best_weights=best[1].tolist(),
        best_loss=best[0],
        history=history,
        modules=modules,
        timings={k: round(v, 4) for k, v in timings.items()},
        params=params,
        optimizer=_optimizer_name(optimizer),
    )


def _optimizer_name(optimizer) -> str:
    """e.g. "NGOpt/Cobyla": the optimiser asked for and the one it delegated to."""
    name = getattr(optimizer, "name", type(optimizer).__name__)
    inner = getattr(optimizer, "optim", None)
    return f"{name}/{getattr(inner, 'name', type(inner).__name__)}" if inner is not None else name
