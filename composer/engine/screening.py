"""Screening: the loss of every candidate adapter alone (w = one-hot) on the examples.

Candidates are LoraAdapters or adapter directories. Directories are loaded a chunk at a
time and dropped after their forward, so hundreds of adapters never sit in memory at
once: a chunk holds at most `SCREEN_MAX_BYTES` of stacked weights (and `batch`
candidates), and only the `keep` best adapters seen so far stay loaded for the search.

Each chunk is one batched forward: the examples repeated C times, block c of rows with
candidate c (a LiveComposition with population C written with the identity matrix).
Candidates are screened in a canonical order (see `candidate_key`)
so that the table, and everything chosen from it, does not depend on the order they were
listed in: a batched forward's rounding can depend on a row's neighbours.
"""

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from composer.engine.adapters import LoraAdapter, LoraModule, adapter_info, load_adapter
from composer.engine.compat import check_against_model, check_compatible

# Stacked weights of one screening chunk (float32; the composition buffer holds as much again).
SCREEN_MAX_BYTES = 256 << 20

Candidate = LoraAdapter | str | Path


@dataclass
class Screened:
    """One row of the screening table."""

    index: int  # position in the caller's list of candidates
    name: str
    sha256: str | None
    ce: float  # CE of the candidate alone
    loss: float  # objective at its one-hot: ce + l1 / N
    info: dict  # adapters.adapter_info

    def row(self) -> dict:
        return {k: getattr(self, k) for k in ("index", "name", "sha256", "ce", "loss")}


def candidate_key(c: Candidate) -> tuple[str, str]:
    """The canonical screening order: a loaded adapter by content, then name; a directory by
    its path (hashing every file first would read each one twice)."""
    if isinstance(c, LoraAdapter):
        return c.sha256 or "", c.label
    return "", str(Path(c).resolve())


def adapter_bytes(a: LoraAdapter) -> int:
    """Float32 bytes of `a`'s rows in a LiveComposition's stack."""
    return 4 * sum(m.A.numel() + m.B.numel() for m in a.modules.values())


def screen(
    model: torch.nn.Module,
    scorer,
    candidates: Sequence[Candidate],
    *,
    l1: float,
    loss_norm: str,
    batch: int,
    keep: int,
    should_stop: Callable[[], bool] | None = None,
    on_chunk: Callable[[int, Screened], None] | None = None,
) -> tuple[list[Screened], list[tuple[int, LoraAdapter]]]:
    """Screen `candidates` with `scorer` (a lorahub.Scorer for `model` and the examples).

    Returns the table in the caller's order and the `keep` best (index, loaded adapter),
    best first (equal losses in the canonical order).
    `on_chunk(screened_so_far, best_row)` follows every chunk; `should_stop()` is checked
    before each and raises lorahub.Cancelled.
    """
    from composer.engine.lorahub import Cancelled

    n = len(candidates)
    order = sorted(range(n), key=lambda i: (*candidate_key(candidates[i]), i))
    rank = {i: k for k, i in enumerate(order)}
    rows: dict[int, Screened] = {}
    best: list[tuple[float, int, int, LoraAdapter]] = []  # min-heap of the kept: the worst on top
    first: LoraAdapter | None = None
    todo = iter(order)
    pending = None  # (index, adapter) loaded but over the last chunk's memory cap
    while len(rows) < n:
        if should_stop is not None and should_stop():
            raise Cancelled(len(rows))
        chunk: list[tuple[int, LoraAdapter]] = []
        room = SCREEN_MAX_BYTES
        while len(chunk) < batch and len(rows) + len(chunk) < n:
            i, a = pending or _load(candidates, next(todo))
            pending = None
            if first is None:
                check_against_model([a], model)
                first = a
            else:
                check_compatible([first, a], "lorahub")
            room -= adapter_bytes(a)
            if chunk and room < 0:  # over the memory cap: it opens the next chunk
                pending = (i, a)
                break
            chunk.append((i, a))
        ces = _chunk_losses(model, scorer, [a for _, a in chunk], loss_norm)
        for (i, a), ce in zip(chunk, ces, strict=True):
            rows[i] = Screened(i, a.label, a.sha256, float(ce), float(ce) + l1 / n, adapter_info(a))
            entry = (-rows[i].loss, -rank[i], i, a)
            if len(best) < keep:
                heapq.heappush(best, entry)
            elif entry > best[0]:
                heapq.heapreplace(best, entry)
        if on_chunk is not None:
            on_chunk(len(rows), min(rows.values(), key=lambda r: (r.loss, rank[r.index])))
    return [rows[i] for i in range(n)], [(i, a) for _, _, i, a in sorted(best, reverse=True)]


def _load(candidates: Sequence[Candidate], i: int) -> tuple[int, LoraAdapter]:
    c = candidates[i]
    return i, c if isinstance(c, LoraAdapter) else load_adapter(c)


def _chunk_losses(model, scorer, adapters: list[LoraAdapter], loss_norm: str):
    """CE [C] of each of the C `adapters` alone: one forward (its buffers freed on return)."""
    from composer.engine.lorahub import LiveComposition

    live = LiveComposition(model, adapters, population=len(adapters))
    try:
        live.set_weights(torch.eye(len(adapters), dtype=torch.float64))
        return scorer.losses(len(adapters), norm=loss_norm).numpy()
    finally:
        live.remove()


def uniform_average(candidates: Sequence[Candidate]) -> LoraAdapter:
    """The uniform average of the candidates as LoraHub mixes them (w_i = 1/N, A and B
    averaged separately; scalings folded into B, ranks zero-padded), read one at a time."""
    n = len(candidates)
    sums: dict[str, list[torch.Tensor]] = {}  # module -> [Σ A_i [r, d_in], Σ s_i B_i [d_out, r]]
    for i in range(n):
        _, a = _load(candidates, i)
        for name, m in a.modules.items():
            A, B = m.A.float(), m.B.float() * m.scale
            if name not in sums:
                sums[name] = [A.clone(), B.clone()]
                continue
            acc = sums[name]
            r = max(acc[0].shape[0], m.r)
            acc[0] = F.pad(acc[0], (0, 0, 0, r - acc[0].shape[0]))
            acc[1] = F.pad(acc[1], (0, r - acc[1].shape[1]))
            acc[0][: m.r] += A
            acc[1][:, : m.r] += B
    modules = {name: LoraModule(A=A / n, B=B / n, scale=1.0) for name, (A, B) in sums.items()}
    return LoraAdapter(path=None, config={}, modules=modules, name="uniform average")
