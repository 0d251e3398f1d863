"""The default composition mode: screen every candidate, search the K best from the best."""

import gc
import random
import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from composer.engine import screening
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
    one example: without the guard it is returned, with it the screened winner is."""
    params = dict(budget=40, top_k=3, seed=0)
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


def test_candidates_are_streamed_in_chunks_under_the_memory_cap(t5, pool, examples, monkeypatch):
    """Directories are loaded a chunk at a time; besides the chunk only the K best so far
    (and the first, the reference for compatibility) stay loaded."""
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
    params = LoraHubParams(budget=6, top_k=1, screen_batch=16)
    res = compose(
        t5.model, t5.tok, pool, examples, params, on_step=lambda info: chunks.append(info.step)
    )
    assert chunks == [2, 4, 6]
    # chunk (2) + the one that did not fit + the best kept + the first
    assert peak[0] <= 5
    unbounded = compose(t5.model, t5.tok, t5.loaded(pool), examples, params)
    np.testing.assert_allclose(
        [r["ce"] for r in res.screening], [r["ce"] for r in unbounded.screening], rtol=1e-5
    )


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
