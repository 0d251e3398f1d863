"""Screening: the loss of every candidate adapter alone (w = one-hot) on the examples.

Candidates are LoraAdapters or adapter directories. Directories are loaded a chunk at a
time and dropped after their forward, so hundreds of adapters never sit in memory at
once: a chunk holds at most `SCREEN_MAX_BYTES` of stacked weights (and `batch`
candidates); the next chunk is read while the current one is scored, and only the `keep`
best adapters seen so far stay loaded for the search.

Each chunk is one batched forward: the examples repeated C times, block c of rows with
candidate c (a one-hot LiveComposition: each candidate's own A and B, no mixing).
Candidates are screened in a canonical order (see `candidate_key`)
so that the table, and everything chosen from it, does not depend on the order they were
listed in: a batched forward's rounding can depend on a row's neighbours.
"""

import heapq
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from composer.engine.adapters import LoraAdapter, LoraModule, adapter_info, load_adapter
from composer.engine.compat import check_against_model, check_compatible

# Stacked weights of one screening chunk (float32, in the composition's buffer; the chunk's
# adapters and the next chunk's, read meanwhile, hold about as much each).
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
    prefetch: bool = True,
    timings: dict[str, float] | None = None,
    resume: Sequence[Screened] = (),
    on_rows: Callable[[list[Screened]], None] | None = None,
) -> tuple[list[Screened], list[tuple[int, LoraAdapter]]]:
    """Screen `candidates` with `scorer` (a lorahub.Scorer for `model` and the examples).

    Returns the table in the caller's order and the `keep` best (index, loaded adapter),
    best first (equal losses in the canonical order); a candidate whose loss is not finite
    (NaN or ∞: its weights overflow) has its row but is never kept, and when none is finite
    screening raises ValueError. Of candidates with equal content
    (same sha256) only the first in the canonical order may be kept: a copy adds nothing
    to a mix; every one has its row in the table.
    With `prefetch` the next chunk is read and checked in a thread while the current
    one's forward runs (reading safetensors and hashing release the GIL).
    `timings`, when given, gets "read_s" (reading and checking the candidates, in
    whichever thread), "wait_s" (screening waiting for a chunk to be read) and
    "forward_s" (composing and scoring the chunks).
    `on_chunk(screened_so_far, best_row)` follows every chunk, then `on_rows(its rows)`;
    `should_stop()` is checked before each and raises lorahub.Cancelled.
    `resume`: rows of an earlier screening of the same candidates (a checkpoint's, whole
    chunks in screening order): those candidates are not screened again, the ones kept
    among them are read again (checkpoint.StaleCheckpoint when they are not what the rows
    say).
    """
    from composer.engine.checkpoint import StaleCheckpoint
    from composer.engine.lorahub import Cancelled

    n = len(candidates)
    order = sorted(range(n), key=lambda i: (*candidate_key(candidates[i]), i))
    rank = {i: k for k, i in enumerate(order)}
    rows: dict[int, Screened] = {}
    # min-heap of the kept, the worst on top; a resumed row's adapter is None until read
    best: list[tuple[float, int, int, LoraAdapter | None]] = []
    contents: set[str] = set()  # sha256 of the candidates screened so far

    def add(row: Screened, a: LoraAdapter | None) -> None:
        rows[row.index] = row
        if not math.isfinite(row.loss):  # weights that overflow (NaN or ∞): never mixed
            return
        if row.sha256 in contents:  # a copy of a candidate before it
            return
        if row.sha256 is not None:
            contents.add(row.sha256)
        entry = (-row.loss, -rank[row.index], row.index, a)
        if len(best) < keep:
            heapq.heappush(best, entry)
        elif entry > best[0]:
            heapq.heapreplace(best, entry)

    if [r.index for r in resume] != order[: len(resume)]:
        raise StaleCheckpoint("the screened rows are not these candidates'")
    for row in resume:
        add(_resumed(row, candidates[row.index]), None)
    if resume and on_chunk is not None:
        on_chunk(len(rows), min(rows.values(), key=lambda r: _order(r, rank)))
    clock = {"read_s": 0.0, "wait_s": 0.0, "forward_s": 0.0}
    chunks = _chunks(model, candidates, order[len(resume) :], batch, clock)
    with ThreadPoolExecutor(max_workers=1) if prefetch else nullcontext() as pool:
        chunks = _ahead(chunks, pool) if prefetch else chunks
        while len(rows) < n:
            if should_stop is not None and should_stop():
                raise Cancelled(len(rows))
            t = time.perf_counter()
            chunk = next(chunks)
            t_read = time.perf_counter()
            ces = _chunk_losses(model, scorer, [a for _, a in chunk], loss_norm)
            clock["wait_s"] += t_read - t
            clock["forward_s"] += time.perf_counter() - t_read
            done = []
            for (i, a), ce in zip(chunk, ces, strict=True):
                loss = float(ce) + l1 / n
                done.append(Screened(i, a.label, a.sha256, float(ce), loss, adapter_info(a)))
                add(done[-1], a)
            if on_chunk is not None:
                on_chunk(len(rows), min(rows.values(), key=lambda r: _order(r, rank)))
            if on_rows is not None:
                on_rows(done)
    if not best:
        raise ValueError(
            "No candidate gives a finite loss on the examples: the weights of each one "
            "overflow the base model."
        )
    if timings is not None:
        timings.update(clock)
    kept = [
        (i, a or _reread(model, candidates, rows[i])) for _, _, i, a in sorted(best, reverse=True)
    ]
    return [rows[i] for i in range(n)], kept


def _resumed(row: Screened, candidate: Candidate) -> Screened:
    """A checkpoint's row, its path the candidate's own now (a resumed job reads its inputs
    into another folder)."""
    path = candidate.path if isinstance(candidate, LoraAdapter) else candidate
    info = {**row.info, "path": str(path) if path else None}
    return Screened(row.index, row.name, row.sha256, row.ce, row.loss, info)


def _reread(model, candidates: Sequence[Candidate], row: Screened) -> LoraAdapter:
    """A kept candidate screened before a resume, read again and checked to be that one."""
    from composer.engine.checkpoint import StaleCheckpoint

    a = _load(candidates, row.index)
    if a.sha256 != row.sha256:
        raise StaleCheckpoint(f"candidate {row.index} is not the one screened")
    check_against_model([a], model)
    return a


def _order(row: Screened, rank: dict[int, int]) -> tuple:
    """Best first: the finite losses, lowest first, then the others, in the canonical order."""
    finite = math.isfinite(row.loss)
    return (not finite, row.loss if finite else 0.0, rank[row.index])


def _chunks(
    model, candidates: Sequence[Candidate], order: list[int], batch: int, clock: dict
) -> Iterator[list[tuple[int, LoraAdapter]]]:
    """The candidates in `order`, loaded and checked, in chunks of at most `batch` that
    stack at most `SCREEN_MAX_BYTES` (or one candidate); `clock["read_s"]` counts the time."""
    first: LoraAdapter | None = None
    chunk: list[tuple[int, LoraAdapter]] = []
    room = SCREEN_MAX_BYTES
    for i in order:
        t = time.perf_counter()
        a = _load(candidates, i)
        if first is None:
            check_against_model([a], model)
            first = a
        else:
            check_compatible([first, a], "lorahub")
        clock["read_s"] += time.perf_counter() - t
        size = adapter_bytes(a)
        if chunk and (len(chunk) == batch or size > room):  # `a` opens the next chunk
            yield chunk
            chunk, room = [], SCREEN_MAX_BYTES
        chunk.append((i, a))
        room -= size
    if chunk:
        yield chunk


def _ahead(chunks: Iterator, pool: ThreadPoolExecutor) -> Iterator:
    """`chunks`, each one read in `pool`'s thread while the caller works on the one before."""
    future = pool.submit(next, chunks, None)
    while (chunk := future.result()) is not None:
        future = pool.submit(next, chunks, None)
        yield chunk


def _load(candidates: Sequence[Candidate], i: int) -> LoraAdapter:
    c = candidates[i]
    return c if isinstance(c, LoraAdapter) else load_adapter(c)


def _chunk_losses(model, scorer, adapters: list[LoraAdapter], loss_norm: str):
    """CE [C] of each of the C `adapters` alone: one forward (its buffers freed on return)."""
    from composer.engine.lorahub import LiveComposition

    live = LiveComposition(model, adapters, one_hot=True)
    try:
        return scorer.losses(len(adapters), norm=loss_norm).numpy()
    finally:
        live.remove()


def uniform_average(candidates: Sequence[Candidate]) -> LoraAdapter:
    """The uniform average of the candidates as LoraHub mixes them (w_i = 1/N, A and B
    averaged separately; scalings folded into B, ranks zero-padded), read one at a time."""
    n = len(candidates)
    sums: dict[str, list[torch.Tensor]] = {}  # module -> [Σ A_i [r, d_in], Σ s_i B_i [d_out, r]]
    for i in range(n):
        a = _load(candidates, i)
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
