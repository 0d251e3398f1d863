"""LoraHub composition: a gradient-free search for weights w that mix N LoRA adapters.

For every LoRA-targeted module the composed adapter is A' = Σ_i w_i A_i, B' = Σ_i w_i B_i
(A and B mixed separately, as in the paper). The search minimises
    f(w) = CE(w) + l1 · mean_i |w_i|
with nevergrad (default `NGOpt`, budget 40, w in [-1.5, 1.5]). Two modes:
- "screen" (default, `compose_screened`): every candidate alone first (one-hot w, batched,
  see screening.py), then the search over the K best starting at the best one's one-hot,
  with f(w) + prior · mean_k |w_k - onehot_k| (a pull toward the screened winner);
  the best point seen is returned, so it is never worse on the examples than picking.
- "reference": the paper's search over all N weights from w = 0, kept exactly as it was.

What CE is (`LoraHubParams.loss_norm`):
- "reference" (default, the reference implementation's value): Σ over batches of the batch's
  mean token cross-entropy, divided by the number of examples. With all examples in one
  batch (`batch_size=None`, the default) that is mean-token-CE / n_examples.
- "token": the mean token cross-entropy over every output token of every example.

How it is fast:
- `LiveComposition` stacks all adapters once into one matrix [N, Σ_modules (r·d_in + d_out·r)];
  a candidate w (or a population W [P, N]) is written into a persistent buffer by ONE matmul,
  and the base model's targeted Linears, wrapped for the search, add s · (x A'ᵀ) B'ᵀ from
  views of that buffer. Small modules instead compute with W + s · B'A', written for all of
  them by one more batched matmul (see `LiveComposition`). The model's own weights are never
  modified and the wrapping is undone afterwards, so a worker can keep the base model cached.
- examples are tokenised and embedded once; each evaluation is one batched forward under
  inference_mode; causal LMs compute logits only from the first output position on.
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
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from composer.engine.adapters import LoraAdapter, LoraModule
from composer.engine.checkpoint import Checkpoint, StaleCheckpoint, fingerprint
from composer.engine.compat import check_against_model, check_compatible
from composer.engine.examples import Example, encode_examples

LOSS_NORMS = ("reference", "token")
PICKS = ("recommendation", "best")
MODES = ("screen", "reference")
GUARDS = ("loo", "none")


# The examples' embeddings are looked up once (only Linears are composed, so they never
# change) while they take at most this much memory.
EMBED_MAX_BYTES = 64 << 20
# Folded modules' weights are held twice more (a copy of W, and W'): at most this much each.
FOLD_MAX_BYTES = 64 << 20


def _fold_pays(module: torch.nn.Module, d_in: int, d_out: int, tokens: float | None) -> bool:
    """Whether folding the LoRA into `module`'s weight beats adding it at every call.

    Folding costs r·d_in·d_out multiply-adds per `set_weights`; adding costs
    r·tokens·(d_in + d_out) and two more operations per call, which on small modules take
    as long again as their arithmetic. So: fold small modules of plain Linears, when
    `tokens` (seen by a module per `set_weights`) is known.
    """
    fits = tokens is not None and d_in * d_out <= 2 * tokens * (d_in + d_out)
    return _plain_linear(module) and fits


def _plain_linear(module: torch.nn.Module) -> bool:
    """An nn.Linear itself (no subclass) with its own class's forward (not wrapped)."""
    return type(module) is torch.nn.Linear and "forward" not in vars(module)


class Cancelled(Exception):
    """The search was stopped by `should_stop`; `step` evaluations had been done (if known)."""

    def __init__(self, step: int | None = None):
        super().__init__("cancelled" if step is None else f"cancelled after {step} evaluations")
        self.step = step


@dataclass
class LoraHubParams:
    mode: str = "screen"  # "screen": screen, select, search from the best; "reference": the paper's
    budget: int = 40  # evaluations of the objective (screen mode: screening included)
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
    # screen mode only (see `compose_screened`)
    top_k: int = 5  # candidates the search mixes: the K best by screening loss
    screen_batch: int = 16  # candidates per screening forward
    guard: str = "loo"  # accept a mix over the screened winner: "loo" (see _guard) or "none"
    prior: float = 0.5  # weight of the search's pull toward the screened winner (`_Search`)

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
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.guard not in GUARDS:
            raise ValueError(f"guard must be one of {GUARDS}, got {self.guard!r}")
        if self.top_k < 1 or self.screen_batch < 1:
            raise ValueError("top_k and screen_batch must be at least 1")
        if self.pick not in PICKS:
            raise ValueError(f"pick must be one of {PICKS}, got {self.pick!r}")
        if not (
            0 < self.bound < math.inf and 0 <= self.l1 < math.inf and 0 <= self.prior < math.inf
        ):
            raise ValueError("bound must be positive, l1 and prior non-negative (all finite)")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    @classmethod
    def reference(cls, seed: int = 0) -> "LoraHubParams":
        """The paper's settings: NGOpt, budget 40, l1 0.05, bound 1.5, sequential, from w = 0."""
        return cls(mode="reference", seed=seed)


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
    # screen mode: one {"index", "name", "sha256", "ce", "loss"} per candidate, the indices
    # searched over (best first; `history` weights are over these), how the result was chosen
    screening: list[dict] | None = None
    selected: list[int] | None = None
    choice: dict | None = None
    inputs: list[dict] | None = None  # screen mode: adapters.adapter_info of every candidate
    kept: list[LoraAdapter] | None = None  # screen mode: the selected adapters, loaded
    # resumed from a checkpoint: {"screened", "searched"} evaluations taken from it and
    # "evaluated", those this run made
    resumed: dict | None = None

    def summary(self) -> dict:
        """JSON-serialisable description (no tensors)."""
        screened = {"screening": self.screening, "selected": self.selected, "choice": self.choice}
        return {
            **(screened if self.screening is not None else {}),
            "weights": self.weights,
            "loss": self.loss,
            "ce": self.ce,
            "best_weights": self.best_weights,
            "best_loss": self.best_loss,
            "history": self.history,
            "optimizer": self.optimizer,
            "params": asdict(self.params),
            "timings": self.timings,
            **({"resumed": self.resumed} if self.resumed is not None else {}),
        }


class LiveComposition:
    """N adapters stacked once; `model`'s targeted modules apply the composed candidates.

    Modules of one shape (r, d_in, d_out) form a group of G modules. A row of `stack`
    [N, total] holds, group after group, the A_i of its modules [G, r, d_in] (padded to r),
    then their B_i·s_i/s [G, d_out, r]. `buffer` [P, total] holds P composed candidates:
    A'_p and B'_p are views of it.

    A module applies the candidate in one of two ways, chosen when the composition is made:
    - added: its output gets s · (x A'ᵀ) B'ᵀ, two small products per call;
    - folded (one candidate at a time, a plain Linear, see `_fold_pays`): `set_weights` also
      writes W' = W + s · B'A' for its whole group with one batched matmul, and the module
      computes F.linear(x, W'), no more work per call than the base model's.
    With `one_hot` the buffer holds the N adapters themselves, P = N candidates each
    alone (what `set_weights` with the identity writes, without a stack or a matmul).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        adapters: Sequence[LoraAdapter],
        population: int = 1,
        tokens: float | None = None,  # tokens the modules see per set_weights, if known
        one_hot: bool = False,  # P = N candidates, each adapter alone (no set_weights)
    ):
        self.names = sorted(adapters[0].modules)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        scales = {m.scale for a in adapters for m in a.modules.values()}
        # One shared scaling stays the adapters' own; different ones are folded into B.
        self.scale = scales.pop() if len(scales) == 1 else 1.0
        targets = {name: model.get_submodule(name) for name in self.names}
        groups: dict[tuple[bool, int, int, int], list[str]] = {}  # (folded, r, d_in, d_out)
        fold_room = FOLD_MAX_BYTES
        for name in self.names:
            m0, module = adapters[0].modules[name], targets[name]
            r = max(a.modules[name].r for a in adapters)
            fold = population == 1 and not one_hot
            fold = fold and _fold_pays(module, m0.d_in, m0.d_out, tokens)
            fold = fold and module.weight.nbytes <= fold_room
            fold_room -= fold * module.weight.nbytes
            groups.setdefault((fold, r, m0.d_in, m0.d_out), []).append(name)
        # name -> (offset of A, offset of B, r, d_in, d_out)
        self.layout: dict[str, tuple[int, int, int, int, int]] = {}
        offset = 0
        for (_, r, d_in, d_out), members in groups.items():
            G = len(members)
            for g, name in enumerate(members):
                b_at = offset + G * r * d_in + g * d_out * r
                self.layout[name] = (offset + g * r * d_in, b_at, r, d_in, d_out)
            offset += G * r * (d_in + d_out)
        self.total = offset
        if one_hot:  # candidate i is adapter i: its rows go straight into the buffer
            self.stack = None
            self.buffer = self._rows(adapters, self.dtype)
            self.active = len(adapters)
        else:  # stack [N, total], float32 so that mixing is exact whatever the model's dtype
            self.stack = self._rows(adapters, torch.float32)
            self.buffer = torch.zeros(population, offset, device=self.device, dtype=self.dtype)
            self.active = 1  # candidates in the current forward
        # per-module views of the buffer, made once (the buffer is only written in place)
        self.views = {name: self._views(name, self.buffer) for name in self.names}
        # per folded group: W [G, d_out, d_in] (a copy of the model's), W' (what the modules
        # use), B' [G, d_out, r] and A' [G, r, d_in] (views of the buffer)
        self.folds = []
        folded = {}
        for (fold, r, d_in, d_out), members in groups.items():
            if fold:
                G, (a_at, b_at, *_) = len(members), self.layout[members[0]]
                A = self.buffer[0, a_at : a_at + G * r * d_in].view(G, r, d_in)
                B = self.buffer[0, b_at : b_at + G * d_out * r].view(G, d_out, r)
                W = torch.stack([targets[n].weight.detach() for n in members])
                self.folds.append((W, W.clone(), B, A))
                folded.update(zip(members, self.folds[-1][1], strict=True))
        # (module, its own `forward` attribute before, if any): restored by remove()
        self.patched = [self._patch(targets[n], n, folded.get(n)) for n in self.names]

    def _rows(self, adapters: Sequence[LoraAdapter], dtype: torch.dtype) -> torch.Tensor:
        """[N, total]: row i holds adapter i's A_i and B_i·s_i/s, zero-padded to the rank."""
        rows = torch.zeros(len(adapters), self.total, device=self.device, dtype=dtype)
        for row, a in zip(rows, adapters, strict=True):
            for name, (a_at, b_at, r, d_in, d_out) in self.layout.items():
                m = a.modules[name]
                row[a_at : a_at + r * d_in].view(r, d_in)[: m.r] = m.A.float()
                B = m.B.float() * (m.scale / self.scale)
                row[b_at : b_at + d_out * r].view(d_out, r)[:, : m.r] = B
        return rows

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
        for base, out, B, A in self.folds:  # W' = W + s · B'A', the whole group at once
            torch.baddbmm(base, B, A, alpha=self.scale, out=out)
        self.active = W.shape[0]

    def _views(self, name: str, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a_at, b_at, r, d_in, d_out = self.layout[name]
        A = rows[:, a_at : a_at + r * d_in].view(-1, r, d_in)
        B = rows[:, b_at : b_at + d_out * r].view(-1, d_out, r)
        return A, B

    def _patch(self, module: torch.nn.Module, name: str, folded: torch.Tensor | None):
        """Make `module` compute with its folded weight W' [d_out, d_in] when it has one, or
        else add the composed LoRA to its output: s · (x A'ᵀ) B'ᵀ.

        An instance `forward` rather than a forward hook: hooks send every call through
        nn.Module's slow path. For a plain Linear it calls F.linear itself (a Python frame
        per call counts on a tiny model), and the scale rides on addmm_: an evaluation adds
        two small ops per module to a plain forward.
        """
        own = module.__dict__.get("forward")
        if folded is not None:  # a plain Linear (see _fold_pays)
            bias = module.bias

            def forward_folded(x):
                return F.linear(x, folded, bias)

            module.forward = forward_folded
            return module, own
        A, B = self.views[name]  # [P_max, r, d_in], [P_max, d_out, r], views of the buffer
        A1, B1t = A[0], B[0].t()  # [r, d_in], [r, d_out]
        r, scale = A1.shape[0], self.scale

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

        if _plain_linear(module):  # the Linear's own forward, inlined
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
        # input tokens read per evaluation (padding included): what a targeted module sees
        self.tokens = sum(b["input_ids"].numel() for b in self.batches)
        self.keep_logits = (
            self.causal and "logits_to_keep" in inspect.signature(model.forward).parameters
        )
        embedding = self.model.get_input_embeddings().weight
        embedded = sum(v.numel() for b in self.batches for k, v in b.items() if "input_ids" in k)
        self.embed_once = embedded * embedding[0].nbytes <= EMBED_MAX_BYTES
        # per batch: (labels [b, T_out] of the scored positions, the forward's kwargs, count),
        # made once; `_repeated` holds them repeated P times, for each P asked for
        self._prepared = [self._prepare(b, c) for b, c in zip(self.batches, counts, strict=True)]
        self._repeated: dict[int, list[tuple[torch.Tensor, dict, int]]] = {1: self._prepared}

    def _prepare(self, b: dict, count: int) -> tuple[torch.Tensor, dict, int]:
        inputs = {k: v for k, v in b.items() if k != "labels"}
        inputs["use_cache"] = False
        if self.embed_once:
            inputs = self._embedded(inputs)
        labels = b["labels"]
        if self.causal:
            first = int((labels != -100).int().argmax(1).min())  # earliest output token
            if self.keep_logits:
                inputs["logits_to_keep"] = labels.shape[1] - first + 1
            labels = labels[:, first:].contiguous()
        return labels, inputs, count

    @torch.inference_mode()
    def _embedded(self, inputs: dict) -> dict:
        """`inputs` with token ids [b, T] replaced by their embeddings [b, T, d]."""
        model, out = self.model, dict(inputs)
        out["inputs_embeds"] = model.get_input_embeddings()(out.pop("input_ids"))
        if "decoder_input_ids" in out:
            decoder = model.get_decoder().get_input_embeddings()
            out["decoder_inputs_embeds"] = decoder(out.pop("decoder_input_ids"))
        return out

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

    @torch.inference_mode()
    def example_ce_sums(self) -> np.ndarray:
        """Summed token CE [n_examples] of each example under the candidate written first."""
        out = []
        for labels, inputs, _ in self._prepared:
            logits = self._logits(labels, inputs)  # [b, T, vocab]
            ce = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")  # [b, T]
            out.append(ce.sum(1, dtype=torch.float64).cpu().numpy())
        return np.concatenate(out)

    def _logits(self, labels: torch.Tensor, inputs: dict) -> torch.Tensor:
        """Float logits [b, T_out, vocab] at the positions that predict `labels` [b, T_out]."""
        logits = self.model(**inputs).logits  # [b, T, vocab]
        if self.causal:  # predict tokens first..T-1
            logits = logits[:, -(labels.shape[1] + 1) : -1]
        return logits.float()

    def _token_ce_sums(self, labels: torch.Tensor, inputs: dict, P: int) -> np.ndarray:
        """Summed token CE [P] of one batch, in float64."""
        logits = self._logits(labels, inputs)  # [P·b, T_out, vocab]
        logits, labels = logits.reshape(-1, logits.shape[-1]), labels.view(-1)
        if P == 1:  # one sum: fewer operations where a tiny model's forward is quick
            return np.array([F.cross_entropy(logits, labels, reduction="sum").item()])
        ce = F.cross_entropy(logits, labels, reduction="none")  # ignore_index -100
        return ce.view(P, -1).sum(1, dtype=torch.float64).cpu().numpy()


def _repeat(v, P: int):
    """`v` [b, ...] repeated P times along the batch: [P·b, ...]."""
    return v.repeat(P, *[1] * (v.dim() - 1)) if isinstance(v, torch.Tensor) else v


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
    adapters: Sequence[LoraAdapter | str | Path],
    examples: Sequence[Example],
    params: LoraHubParams | None = None,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    resume: dict | None = None,
) -> LoraHubResult:
    """Search the LoraHub weights for `adapters` on `examples` with a loaded base model.

    `params.mode` "screen" (the default, `compose_screened`) or "reference" (the paper's
    search from w = 0). In screen mode `adapters` may also be adapter directories, loaded
    a chunk at a time. `on_step(StepInfo)` is called after every evaluation (in screen mode
    after every screening chunk, then every search step); `should_stop()` is checked before
    every forward and raises `Cancelled` when it returns true. The model is left unchanged.
    `on_checkpoint(Checkpoint)` follows every screening chunk and search step (the same
    object, grown; `to_json()` it to keep it): a `resume` of its JSON continues that search
    without making its evaluations again, to the same result (see checkpoint.py). A
    checkpoint of other parameters or candidates is ignored.
    """
    params = params or LoraHubParams()
    params.validate()
    run = compose_screened if params.mode == "screen" else _compose_reference
    n = len(adapters)
    loaded = Checkpoint.from_json(resume, fingerprint(params, n)) if resume else None
    hooks = (on_step, should_stop, on_checkpoint)
    try:
        return run(model, tokenizer, adapters, examples, params, *hooks, loaded)
    except StaleCheckpoint:  # not these candidates after all: start over
        return run(model, tokenizer, adapters, examples, params, *hooks, None)


def _scorer(model, tokenizer, examples, params: LoraHubParams) -> "Scorer":
    return Scorer(
        model,
        tokenizer,
        examples,
        separator=params.separator,
        batch_size=params.batch_size,
        max_length=params.max_length,
    )


def _compose_reference(
    model, tokenizer, adapters, examples, params, on_step, should_stop, on_checkpoint, resume
):
    """The paper's search: nevergrad from w = 0 over every adapter's weight."""
    import nevergrad as ng

    check_compatible(adapters, "lorahub")
    check_against_model(adapters, model)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    scorer = _scorer(model, tokenizer, examples, params)
    live = LiveComposition(model, adapters, population=params.population, tokens=scorer.tokens)
    timings["prepare_s"] = time.perf_counter() - t0
    n = len(adapters)
    try:
        param = ng.p.Array(init=np.zeros(n), lower=-params.bound, upper=params.bound)
        param.random_state = np.random.RandomState(params.seed)
        optimizer = ng.optimizers.registry[params.optimizer](
            parametrization=param, budget=params.budget, num_workers=params.population
        )
        state = Checkpoint(fingerprint(params, n), params.budget)
        search = _Search(live, scorer, params, n, should_stop, on_step, state, on_checkpoint)
        search.run(optimizer, params.budget, replay=resume.told if resume else ())
        _finished(state, on_checkpoint)
        timings["search_s"] = search.seconds
        timings["eval_mean_s"] = search.eval_s / max(
            1, math.ceil(params.budget / params.population)
        )
        history, best = search.history, search.best
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
    resumed = _resumed(state, 0, search.replayed) if resume else None
    return _result(
        params, final, final_ce, best, history, modules, timings, optimizer, resumed=resumed
    )


def _finished(state: Checkpoint, on_checkpoint) -> None:
    """Every evaluation is made: say so to the checkpoint's keeper."""
    state.finished = True
    if on_checkpoint is not None:
        on_checkpoint(state)


def _resumed(state: Checkpoint, screened: int, searched: int) -> dict:
    """What a resumed search took from its checkpoint and what it evaluated itself."""
    return {
        "screened": screened,
        "searched": searched,
        "evaluated": state.step - screened - searched,
    }


def _result(params, w, ce, best, history, modules, timings, optimizer, **screened):
    """The LoraHubResult for final weights w [N] with CE `ce`; `best` = (loss, w) seen."""
    return LoraHubResult(
        weights=w.tolist(),
        loss=ce + params.l1 * float(np.mean(np.abs(w))),
        ce=ce,
        best_weights=best[1].tolist(),
        best_loss=best[0],
        history=history,
        modules=modules,
        timings={k: round(v, 4) for k, v in timings.items()},
        params=params,
        optimizer=_optimizer_name(optimizer) if optimizer is not None else "",
        **screened,
    )


class _Search:
    """The ask / evaluate / tell loop over weights w [n_search] of `live`'s adapters.

    `full(w)` places w among all N candidates (the l1 term and the callbacks see those);
    `best` is the best (loss, w) seen, which may start at a point seen before the search.
    With an `anchor` (screen mode: the winner's one-hot [n]) the objective also has
    `params.prior` × mean |w - anchor|: a mix must pay for how far it moves from the
    candidate that screening found, so that a small gain on the few examples does not
    carry the search away from it.
    """

    def __init__(
        self,
        live,
        scorer,
        params,
        n,
        should_stop,
        on_step,
        state: Checkpoint,
        on_checkpoint=None,
        *,
        full=None,
        done=0,
        anchor=None,
    ):
        self.live, self.scorer, self.params, self.n = live, scorer, params, n
        self.should_stop, self.on_step = should_stop, on_step
        self.state, self.on_checkpoint = state, on_checkpoint
        self.replayed = 0  # evaluations taken from a checkpoint
        self.full = full or (lambda w: w)
        self.done = done  # evaluations made before the search (screening)
        self.history: list[dict] = []
        self.best = (math.inf, np.zeros(n))
        self.eval_s = self.seconds = 0.0
        self.anchor = anchor

    def run(self, optimizer, budget: int, replay: Sequence[tuple[float, list]] = ()) -> None:
        """`budget` evaluations; the first ones are `replay`'s (ce, w), a checkpoint's."""
        params, history = self.params, self.history
        t_search = time.perf_counter()
        total = self.done + budget
        replay = list(replay)[:budget]
        if any(len(w) != self.n for _, w in replay):
            raise StaleCheckpoint("the checkpoint's weights are not over these candidates")
        self.asking = True  # the optimiser asks the recorded points again (see `_replay`)
        self.pending = []  # a point it asked instead: the first evaluated after the replay
        while len(history) < budget:
            k = min(params.population, budget - len(history))
            if len(history) < len(replay):
                cands, W, ces = self._replay(optimizer, replay[len(history) :][:k])
            else:
                if self.should_stop is not None and self.should_stop():
                    raise Cancelled(self.done + len(history))
                cands, self.pending = self.pending[:k], self.pending[k:]
                cands += [optimizer.ask() for _ in range(k - len(cands))]
                W = np.stack([np.asarray(c.value, dtype=np.float64) for c in cands])
                t_eval = time.perf_counter()
                self.live.set_weights(torch.from_numpy(W))
                ces = self.scorer.losses(k, norm=params.loss_norm).numpy()
                self.eval_s += time.perf_counter() - t_eval
            for cand, w, ce in zip(cands, W, ces, strict=True):
                loss = float(ce) + params.l1 * float(np.mean(np.abs(self.full(w))))
                if self.anchor is not None:
                    loss += params.prior * float(np.mean(np.abs(w - self.anchor)))
                _tell(optimizer, cand, loss)
                if loss < self.best[0]:
                    self.best = (loss, w.copy())
                self.state.told.append((float(ce), w.tolist()))
                history.append(
                    {"step": len(history) + 1, "loss": loss, "ce": float(ce), "weights": w.tolist()}
                )
                if self.on_step is not None:
                    self.on_step(
                        StepInfo(
                            step=self.done + len(history),
                            budget=total,
                            loss=loss,
                            best_loss=self.best[0],
                            weights=self.full(w).tolist(),
                            best_weights=self.full(self.best[1]).tolist(),
                            ce=float(ce),
                            seconds=time.perf_counter() - t_search,
                        )
                    )
            if self.on_checkpoint is not None and len(history) > len(replay):
                self.on_checkpoint(self.state)
        self.seconds = time.perf_counter() - t_search

    def _replay(self, optimizer, rows: list[tuple[float, list]]):
        """Candidates, weights W and CEs of a batch of recorded evaluations, not made again.

        A fresh optimiser with the seed asks the points it asked before: each is told its
        recorded loss. Once it asks another (an optimiser that draws from more than the
        seed, e.g. NGOpt's CMA-based choices for large budgets, or another nevergrad), that
        point is kept to be evaluated next, and the recorded points are told as points it
        did not ask, or not told where it refuses that: the search then goes on from
        another state, but keeps the budget spent and the best point found.
        """
        W = np.array([w for _, w in rows], dtype=np.float64)
        cands = []
        for w in W:
            cand = optimizer.ask() if self.asking else None
            if cand is not None and not np.array_equal(cand.value, w):
                self.asking = False
                self.pending.append(cand)  # asked: told once evaluated
                cand = None
            if cand is None:
                cand = optimizer.parametrization.spawn_child(new_value=w)
            cands.append(cand)
        self.replayed += len(rows)
        return cands, W, np.array([ce for ce, _ in rows], dtype=np.float64)


def _tell(optimizer, cand, loss: float) -> None:
    """Tell `optimizer` the loss of `cand`; an optimiser that takes no point it did not ask
    (a replayed one, see `_Search._replay`) is not told it."""
    from nevergrad.common.errors import TellNotAskedNotSupportedError

    try:
        optimizer.tell(cand, loss)
    except TellNotAskedNotSupportedError:
        pass


def compose_screened(
    model, tokenizer, candidates, examples, params, on_step, should_stop, on_checkpoint, resume
):
    """Screen every candidate alone, search the weights of the K best from the best one,
    return the best point seen (its objective is never above the best candidate's).

    1. screen: each candidate's loss at w = one-hot (`screening.screen`, batched, N
       evaluations of the budget);
    2. select: the `top_k` best by that loss (all of them when N <= top_k);
    3. search: nevergrad over those K weights, starting at the best one's one-hot, with
       the budget left (none when screening used it all);
    4. return the best point seen, unless `_guard` finds the gain over the screened
       winner too thin for the few examples.
    """
    import nevergrad as ng

    from composer.engine.screening import screen

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    scorer = _scorer(model, tokenizer, examples, params)
    timings["prepare_s"] = time.perf_counter() - t0
    n = len(candidates)
    budget = max(params.budget - n, 0)
    total = n + budget

    def screened(done, row):
        if on_step is not None:
            w = [float(i == row.index) for i in range(n)]
            seconds = time.perf_counter() - t0
            on_step(StepInfo(done, total, row.loss, row.loss, w, w, row.ce, seconds))

    state = Checkpoint(fingerprint(params, n), total)

    def checkpoint(rows):
        state.screened.extend(rows)
        if on_checkpoint is not None:
            on_checkpoint(state)

    restored = resume.screened if resume else []
    state.screened.extend(restored)

    t_screen = time.perf_counter()
    parts: dict[str, float] = {}  # screening's read, wait and forward seconds
    table, kept = screen(
        model,
        scorer,
        candidates,
        l1=params.l1,
        loss_norm=params.loss_norm,
        batch=params.screen_batch,
        keep=min(params.top_k, n),
        should_stop=should_stop,
        on_chunk=screened,
        timings=parts,
        resume=restored,
        on_rows=checkpoint,
    )
    timings["screen_s"] = time.perf_counter() - t_screen
    timings.update({f"screen_{k}": v for k, v in parts.items()})
    selected = [i for i, _ in kept]
    K = len(selected)

    def full(w_k: np.ndarray) -> np.ndarray:  # [K] -> [N]
        w = np.zeros(n)
        w[selected] = w_k
        return w

    winner = np.eye(K)[0]
    best_seen = (table[selected[0]].loss, full(winner))
    adapters = [a for _, a in kept]
    live = LiveComposition(model, adapters, population=params.population, tokens=scorer.tokens)
    history: list[dict] = []
    optimizer = search = None
    choice = {"start": table[selected[0]].name, "search_budget": budget if K > 1 else 0}
    try:
        final = winner
        if K > 1 and budget > 0:
            param = ng.p.Array(init=winner, lower=-params.bound, upper=params.bound)
            param.random_state = np.random.RandomState(params.seed)
            optimizer = ng.optimizers.registry[params.optimizer](
                parametrization=param, budget=budget, num_workers=params.population
            )
            search = _Search(
                live,
                scorer,
                params,
                K,
                should_stop,
                on_step,
                state,
                on_checkpoint,
                full=full,
                done=len(table),
                anchor=winner,
            )
            search.best = (table[selected[0]].loss, winner)  # screening saw it
            search.run(optimizer, budget, replay=resume.told if resume else ())
            timings["search_s"] = search.seconds
            history, final = search.history, search.best[1]
            best_seen = (search.best[0], full(final))
            if final is not winner and params.guard == "loo":
                choice["guard"] = _guard(live, scorer, final, winner)
                final = final if choice["guard"]["mix_kept"] else winner
        _finished(state, on_checkpoint)
        choice["mixed"] = final is not winner
        if final is winner:
            final_ce = table[selected[0]].ce
        else:
            final_ce = next(h["ce"] for h in history if np.array_equal(h["weights"], final))
        modules = live.modules(final)
    finally:
        live.remove()
    timings["total_s"] = time.perf_counter() - t0
    replayed = search.replayed if search is not None else 0
    return _result(
        params,
        full(final),
        final_ce,
        best_seen,
        history,
        modules,
        timings,
        optimizer,
        screening=[r.row() for r in table],
        selected=selected,
        choice=choice,
        inputs=[r.info for r in table],
        kept=adapters,
        resumed=_resumed(state, len(restored), replayed) if resume else None,
    )


def _guard(live, scorer, mix: np.ndarray, winner: np.ndarray) -> dict:
    """Keep the mix only if it beats the screened winner with any one example left out.

    With 5 examples a lower mean loss can come from one example the mix happens to fit;
    leave-one-out asks that the gain hold without each of them: Σ_{i≠j} d_i < 0 for every
    j, where d_i is example i's summed token CE under the mix minus under the winner.
    """
    d = np.zeros(0)
    for sign, w in ((1.0, mix), (-1.0, winner)):
        live.set_weights(torch.from_numpy(np.asarray(w)[None]))
        sums = scorer.example_ce_sums()
        d = sign * sums if not len(d) else d + sign * sums
    worst = float(d.sum() - d.min())  # the gain without the example it relies on most
    return {"mix_kept": bool(worst < 0), "loo_worst_delta": worst, "delta": float(d.sum())}


def _optimizer_name(optimizer) -> str:
    """e.g. "NGOpt/Cobyla": the optimiser asked for and the one it delegated to."""
    name = getattr(optimizer, "name", type(optimizer).__name__)
    inner = getattr(optimizer, "optim", None)
    return f"{name}/{getattr(inner, 'name', type(inner).__name__)}" if inner is not None else name
