"""The default composition mode: screen every candidate, search the K best from the best."""

import gc
import math
import random
import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from composer.engine import screening
from composer.engine.adapters import WEIGHTS_NAME
from composer.engine.compat import IncompatibleAdapters
from composer.engine.lorahub import Cancelled, LiveComposition, LoraHubParams, Scorer, compose
from tests.engine.conftest import wrappers_left


@pytest.fixture(scope="module")
def pool(t5):
    """Six candidates for the tiny T5 (directories)."""
    return t5.adapters + [t5.adapter(f"s{i}", seed=20 + i) for i in range(3)]


def alone(kit, adapter, examples) -> float:
    """CE of one adapter at weight 1, one candidate per forward."""
    scorer = Scorer(kit.model, kit.tok, examples)
    live = LiveComposition(kit.model, [adapter])
    try:
        live.set_weights(torch.ones(1, 1))
        return float(scorer.losses(1)[0])
    finally:
        live.remove()


def test_screening_table_is_each_candidate_alone(t5, pool, examples):
    res = compose(t5.model, t5.tok, pool, examples, LoraHubParams(budget=6, screen_batch=4))
    adapters = t5.loaded(pool)
    expected = [alone(t5, a, examples) for a in adapters]
    np.testing.assert_allclose([r["ce"] for r in res.screening], expected, rtol=1e-5)
    assert [r["sha256"] for r in res.screening] == [a.sha256 for a in adapters]
    best = int(np.argmin(expected))
    # budget 6 = the 6 screened: no search, the result is the best candidate alone
    assert res.history == [] and res.selected[0] == best
    assert res.weights == [float(i == best) for i in range(6)]
    assert wrappers_left(t5.model) == 0


@pytest.mark.parametrize("guard", ["loo", "none"])
@pytest.mark.parametrize("seed", [0, 1])
def test_result_never_above_the_best_single_candidate(kit, examples, guard, seed):
    dirs = kit.adapters
    params = LoraHubParams(budget=20, top_k=3, seed=seed, guard=guard)
    res = compose(kit.model, kit.tok, dirs, examples, params)
    best_single = min(r["loss"] for r in res.screening)
    assert res.loss <= best_single
    assert len(res.history) == 17 and res.optimizer == "NGOpt/Cobyla"
    # the search started at the best candidate's one-hot and stayed in [-1.5, 1.5]
    assert res.history[0]["weights"] == [1.0, 0.0, 0.0]
    assert all(abs(w) <= 1.5 for h in res.history for w in h["weights"])
    # the result's reported loss is the loss of the weights it returns
    live = LiveComposition(kit.model, kit.loaded(dirs))
    try:
        live.set_weights(torch.tensor([res.weights], dtype=torch.float64))
        ce = float(Scorer(kit.model, kit.tok, examples).losses(1)[0])
    finally:
        live.remove()
    assert res.ce == pytest.approx(ce, rel=1e-5)


def test_the_guard_keeps_the_winner_unless_the_mix_wins_without_any_one_example(t5, examples):
    """On these random adapters the search finds a mix with a lower mean loss that relies on
    one example: without the guard it is returned, with it the screened winner is (no pull
    toward the winner here, so that the search does reach such a mix)."""
    params = dict(budget=40, top_k=3, seed=0, prior=0.0)
    free = compose(t5.model, t5.tok, t5.adapters, examples, LoraHubParams(guard="none", **params))
    guarded = compose(t5.model, t5.tok, t5.adapters, examples, LoraHubParams(**params))
    assert free.choice["mixed"] and free.loss < min(r["loss"] for r in free.screening)
    assert guarded.choice["guard"]["delta"] < 0 < guarded.choice["guard"]["loo_worst_delta"]
    assert not guarded.choice["mixed"]
    assert guarded.weights == [float(i == guarded.selected[0]) for i in range(3)]
    assert guarded.best_weights == free.weights  # the mix was seen, and recorded


def test_screening_is_deterministic_and_independent_of_the_order(t5, pool, examples, tmp_path):
    """Same seed, same result; the candidates listed in another order give the same table,
    the same selection and the same search, even between identical copies (equal losses)."""
    twins = [Path(shutil.copytree(d, tmp_path / f"twin-{d.name}")) for d in pool]
    both = pool + twins
    params = LoraHubParams(budget=20, top_k=3, screen_batch=4, seed=2)
    a = compose(t5.model, t5.tok, both, examples, params)
    b = compose(t5.model, t5.tok, both, examples, params)
    assert a.summary() | {"timings": 0} == b.summary() | {"timings": 0}
    perm = list(range(len(both)))
    random.Random(5).shuffle(perm)
    c = compose(t5.model, t5.tok, [both[i] for i in perm], examples, params)
    n = len(both)
    assert [c.screening[perm.index(i)]["ce"] for i in range(n)] == [r["ce"] for r in a.screening]
    assert [perm[i] for i in c.selected] == a.selected
    assert [c.weights[perm.index(i)] for i in range(n)] == a.weights
    assert c.history == a.history
    kept = [a.screening[i]["sha256"] for i in a.selected]
    assert len(set(kept)) == len(kept) == 3  # one of each pair of copies at most


def screen(kit, candidates, examples, **kwargs):
    """screening.screen with the defaults of a job (l1 0.05, reference loss)."""
    scorer = Scorer(kit.model, kit.tok, examples)
    kwargs = {"l1": 0.05, "loss_norm": "reference", "batch": 4, "keep": 3} | kwargs
    return screening.screen(kit.model, scorer, candidates, **kwargs)


@pytest.mark.parametrize("prefetch", [False, True])
def test_candidates_are_streamed_in_chunks_under_the_memory_cap(
    t5, pool, examples, monkeypatch, prefetch
):
    """Directories are loaded a chunk at a time; besides the chunk only the candidate that
    opens the next one, the K best so far and the first (the reference for compatibility)
    stay loaded, and with prefetch the next chunk, read meanwhile."""
    alive, peak = set(), [0]
    load = screening.load_adapter

    def counting(path):
        a = load(path)
        alive.add(id(a))
        weakref.finalize(a, alive.discard, id(a))
        gc.collect()
        peak[0] = max(peak[0], len(alive))
        return a

    monkeypatch.setattr(screening, "load_adapter", counting)
    size = screening.adapter_bytes(t5.loaded(pool[:1])[0])
    monkeypatch.setattr(screening, "SCREEN_MAX_BYTES", 2 * size)  # two adapters a chunk
    chunks = []
    table, _ = screen(
        t5,
        pool,
        examples,
        batch=16,
        keep=1,
        prefetch=prefetch,
        on_chunk=lambda done, _: chunks.append(done),
    )
    assert chunks == [2, 4, 6]
    assert peak[0] <= (7 if prefetch else 5)
    unbounded, _ = screen(t5, t5.loaded(pool), examples, batch=16, keep=1)
    np.testing.assert_allclose([r.ce for r in table], [r.ce for r in unbounded], rtol=1e-5)


def test_prefetch_gives_the_same_table_as_reading_in_turn(t5, pool, examples):
    timings = {}
    ahead, kept_ahead = screen(t5, pool, examples, prefetch=True, timings=timings)
    in_turn, kept_in_turn = screen(t5, pool, examples, prefetch=False)
    assert [r.row() for r in ahead] == [r.row() for r in in_turn]
    assert [i for i, _ in kept_ahead] == [i for i, _ in kept_in_turn]
    assert set(timings) == {"read_s", "wait_s", "forward_s"}
    assert timings["read_s"] > 0 and timings["forward_s"] > 0


@pytest.mark.parametrize("prefetch", [False, True])
def test_an_incompatible_candidate_stops_screening(t5, pool, examples, prefetch):
    """A candidate that does not fit the others, read in the prefetch thread or not, raises
    in the caller; the model is left unwrapped."""
    other = t5.adapter("targets-k", targets=["k"])
    with pytest.raises(IncompatibleAdapters, match="targets-k"):
        screen(t5, pool + [other], examples, prefetch=prefetch)
    assert wrappers_left(t5.model) == 0


def test_a_copy_of_a_candidate_is_kept_once(t5, pool, examples, tmp_path):
    """Copies (same sha256) each get their row, but only the first in the canonical order
    may be kept for the search: a copy adds nothing to a mix."""
    twins = [Path(shutil.copytree(d, tmp_path / f"copy-{d.name}")) for d in pool]
    both = twins + pool
    table, kept = screen(t5, both, examples, keep=len(both))
    assert len(table) == len(both) and len({r.sha256 for r in table}) == len(pool)
    first = {}
    for i in sorted(range(len(both)), key=lambda i: screening.candidate_key(both[i])):
        first.setdefault(table[i].sha256, i)
    assert sorted(i for i, _ in kept) == sorted(first.values())
    res = compose(t5.model, t5.tok, both, examples, LoraHubParams(budget=12, top_k=4))
    assert sorted(res.selected) == sorted(first[table[i].sha256] for i in res.selected)
    assert len(res.selected) == 4


def test_one_hot_composition_is_the_identity_written_by_set_weights(t5, examples):
    """Each candidate's own A and B, as set_weights with the identity writes them, to the
    bit, also with mixed ranks and scalings."""
    adapters = t5.loaded(t5.adapters) + [t5.loaded([t5.adapter("r8", r=8, alpha=32)])[0]]
    mixed = LiveComposition(t5.model, adapters, population=len(adapters))
    mixed.set_weights(torch.eye(len(adapters), dtype=torch.float64))
    mixed.remove()
    alone = LiveComposition(t5.model, adapters, one_hot=True)
    alone.remove()
    assert alone.scale == mixed.scale and alone.active == len(adapters)
    assert torch.equal(alone.buffer, mixed.buffer)


def test_cancelled_while_screening(t5, pool, examples):
    seen = []
    with pytest.raises(Cancelled) as info:
        compose(
            t5.model,
            t5.tok,
            pool,
            examples,
            LoraHubParams(screen_batch=2),
            on_step=seen.append,
            should_stop=lambda: len(seen) >= 1,
        )
    assert info.value.step == 2 and [s.step for s in seen] == [2]
    assert wrappers_left(t5.model) == 0


@pytest.mark.parametrize("prior", [0.0, 0.5])
def test_the_search_pays_for_moving_away_from_the_screened_winner(kit, examples, prior):
    """Every search step's objective is CE + l1 · mean|w| over all N + prior · mean|w_K -
    one-hot| over the K searched: a mix pays for how far it moves from the winner."""
    params = LoraHubParams(budget=12, top_k=3, seed=0, prior=prior)
    res = compose(kit.model, kit.tok, kit.adapters, examples, params)
    winner = np.eye(3)[0]
    for h in res.history:
        w = np.asarray(h["weights"])
        l1 = params.l1 * np.abs(w).sum() / len(kit.adapters)
        assert h["loss"] == pytest.approx(h["ce"] + l1 + prior * np.abs(w - winner).mean())
    moved = [h for h in res.history if np.abs(np.asarray(h["weights"]) - winner).sum() > 0.1]
    assert moved  # the identity above is tested away from the winner too


def overflowing_copy(adapter_dir: Path, dest: Path) -> Path:
    """A copy of `adapter_dir` whose B matrices are so large that the forward pass
    overflows (finite weights: NaN and infinite ones are refused when an adapter loads)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(adapter_dir, dest)
    tensors = load_file(dest / WEIGHTS_NAME)
    huge = {k: torch.full_like(v, 3e38) if "lora_B" in k else v for k, v in tensors.items()}
    save_file(huge, dest / WEIGHTS_NAME)
    return dest


def test_a_candidate_whose_loss_is_not_finite_is_never_mixed(t5, pool, examples, tmp_path):
    """One adapter whose loss overflows among the candidates: its row says so, the others are
    searched and the result is theirs; with no finite candidate screening says why."""
    broken = overflowing_copy(pool[0], tmp_path / "nan")
    candidates = [broken, *pool]
    params = LoraHubParams(budget=12, top_k=len(candidates))
    res = compose(t5.model, t5.tok, candidates, examples, params)
    assert not math.isfinite(res.screening[0]["loss"])
    assert sorted(res.selected) == list(range(1, len(candidates)))
    assert math.isfinite(res.loss) and res.weights[0] == 0.0
    steps = []
    res = compose(t5.model, t5.tok, candidates, examples, params, on_step=steps.append)
    assert all(math.isfinite(s.best_loss) for s in steps)
    with pytest.raises(ValueError, match="No candidate gives a finite loss"):
        screen(t5, [broken], examples)
    assert wrappers_left(t5.model) == 0
