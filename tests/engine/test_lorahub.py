import numpy as np
import pytest
import torch
from peft import PeftModel, set_peft_model_state_dict

from composer.engine import lorahub
from composer.engine.base_models import load_base_model
from composer.engine.examples import encode_examples
from composer.engine.lorahub import (
    Cancelled,
    LiveComposition,
    LoraHubParams,
    Scorer,
    StepInfo,
    compose,
)
from tests.engine.conftest import wrappers_left

W = [0.7, -0.4, 1.2]


def REF(**kwargs) -> LoraHubParams:
    """The paper's search (the default is the screened mode, tested in test_screening)."""
    return LoraHubParams(mode="reference", **kwargs)


def peft_composed(kit, w):
    """The reference composition: A' = Σ w A, B' = Σ w B loaded into peft's own LoRA layers."""
    model = PeftModel.from_pretrained(load_base_model(kit.base), kit.adapters[0])
    adapters = kit.loaded()
    state = {}
    for name in adapters[0].modules:
        for part in ("A", "B"):
            mixed = sum(
                wi * getattr(a.modules[name], part) for wi, a in zip(w, adapters, strict=True)
            )
            state[f"base_model.model.{name}.lora_{part}.weight"] = mixed
    set_peft_model_state_dict(model, state)
    return model.eval()


def hf_loss(model, tok, examples):
    causal = not model.config.is_encoder_decoder
    with torch.no_grad():
        return float(model(**encode_examples(tok, examples, causal=causal)).loss)


def live_losses(kit, W_rows, examples, tokens=None, **scorer_kwargs):
    live = LiveComposition(kit.model, kit.loaded(), population=len(W_rows), tokens=tokens)
    try:
        live.set_weights(torch.tensor(W_rows))
        scorer = Scorer(kit.model, kit.tok, examples, **scorer_kwargs)
        assert bool(live.folds) == (tokens is not None)
        return (
            scorer.losses(len(W_rows), norm="token").tolist(),
            scorer.losses(len(W_rows), norm="reference").tolist(),
        )
    finally:
        live.remove()


@pytest.mark.parametrize("tokens", [None, 1000], ids=["added", "folded"])
def test_composed_in_place_equals_peft_reference(kit, examples, tokens):
    """Added to each module's output, or folded into a copy of its weight (small modules,
    one candidate at a time), the composition is peft's."""
    weights = {k: v.clone() for k, v in kit.model.state_dict().items()}
    reference = peft_composed(kit, W)
    expected = hf_loss(reference, kit.tok, examples)
    token, ref = live_losses(kit, [W], examples, tokens=tokens)
    assert token[0] == pytest.approx(expected, rel=1e-5)
    # the reference implementation's value: batch mean token CE / number of examples
    assert ref[0] == pytest.approx(expected / len(examples), rel=1e-5)
    assert wrappers_left(kit.model) == 0
    for k, v in kit.model.state_dict().items():
        assert torch.equal(v, weights[k]), k


def test_which_modules_fold(monkeypatch):
    """Folding pays where a module's weight costs less to rewrite than the LoRA products of
    the tokens it sees; only plain Linears fold, within a memory cap."""
    small, large = torch.nn.Linear(64, 64), torch.nn.Linear(768, 768)
    assert lorahub._fold_pays(small, 64, 64, tokens=35)
    assert not lorahub._fold_pays(large, 768, 768, tokens=35)  # a T5-base shape, 5 examples
    assert lorahub._fold_pays(large, 768, 768, tokens=5000)
    assert not lorahub._fold_pays(small, 64, 64, tokens=None)

    class Subclass(torch.nn.Linear):
        pass

    assert not lorahub._fold_pays(Subclass(64, 64), 64, 64, tokens=35)
    small.forward = lambda x: x  # wrapped by someone else
    assert not lorahub._fold_pays(small, 64, 64, tokens=35)


def test_folded_weights_stay_under_the_memory_cap(t5, monkeypatch):
    adapters = t5.loaded()
    first = t5.model.get_submodule(sorted(adapters[0].modules)[0]).weight.nbytes
    monkeypatch.setattr(lorahub, "FOLD_MAX_BYTES", 3 * first)
    live = LiveComposition(t5.model, adapters, tokens=1000)
    try:
        assert sum(len(base) for base, *_ in live.folds) == 3
        assert len(live.names) > 3
    finally:
        live.remove()
    folded = LiveComposition(t5.model, adapters, population=2, tokens=1000)
    folded.remove()
    assert not folded.folds  # several candidates at a time: always added


def test_embeddings_looked_up_once_give_the_same_losses(kit, examples, monkeypatch):
    rows = torch.randn(2, 3, generator=torch.Generator().manual_seed(1)).tolist()
    assert Scorer(kit.model, kit.tok, examples).embed_once
    once = live_losses(kit, rows, examples, batch_size=3)
    monkeypatch.setattr(lorahub, "EMBED_MAX_BYTES", 0)
    assert not Scorer(kit.model, kit.tok, examples).embed_once
    per_forward = live_losses(kit, rows, examples, batch_size=3)
    np.testing.assert_allclose(once, per_forward, rtol=1e-6)


def test_a_module_keeps_its_own_forward_wrapper(kit, examples):
    """A targeted module already wrapped (as accelerate does) is wrapped on top of that,
    and gets its own wrapper back afterwards."""
    adapters = kit.loaded()
    name = sorted(adapters[0].modules)[0]
    module = kit.model.get_submodule(name)
    calls = []
    original = module.forward

    def counting(x, *args, **kwargs):
        calls.append(x.shape)
        return original(x, *args, **kwargs)

    module.forward = counting
    try:
        reference = hf_loss(peft_composed(kit, W), kit.tok, examples)
        token, _ = live_losses(kit, [W], examples)
        assert token[0] == pytest.approx(reference, rel=1e-5) and calls
        assert vars(module)["forward"] is counting
    finally:
        del module.forward
    assert wrappers_left(kit.model) == 0


def test_reference_loss_sums_batch_means(t5, examples):
    reference = peft_composed(t5, W)
    batches = [examples[i : i + 2] for i in range(0, len(examples), 2)]
    expected = sum(hf_loss(reference, t5.tok, b) for b in batches) / len(examples)
    _, ref = live_losses(t5, [W], examples, batch_size=2)
    assert ref[0] == pytest.approx(expected, rel=1e-5)


def test_zero_weights_give_the_base_model_loss(kit, examples):
    base = hf_loss(kit.model, kit.tok, examples)
    res = compose(kit.model, kit.tok, kit.loaded(), examples, REF(budget=2))
    first = res.history[0]
    assert first["weights"] == [0.0, 0.0, 0.0]  # the search starts from w = 0
    assert first["ce"] == pytest.approx(base / len(examples), rel=1e-6)
    assert first["loss"] == first["ce"]  # mean|0| = 0


def test_population_losses_equal_one_by_one(kit, examples):
    rows = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)).tolist()
    together, _ = live_losses(kit, rows, examples, batch_size=3)
    one_by_one = [live_losses(kit, [row], examples, batch_size=3)[0][0] for row in rows]
    np.testing.assert_allclose(together, one_by_one, rtol=1e-5)
    assert len(set(np.round(together, 6))) == 4  # the candidates really differ


def test_callback_history_and_l1_term(t5, examples):
    steps: list[StepInfo] = []
    params = REF(budget=6, l1=0.3)
    res = compose(t5.model, t5.tok, t5.loaded(), examples, params, on_step=steps.append)
    assert [s.step for s in steps] == list(range(1, 7)) and all(s.budget == 6 for s in steps)
    assert [s.loss for s in steps] == [h["loss"] for h in res.history]
    for s in steps:
        assert s.loss == pytest.approx(s.ce + 0.3 * np.mean(np.abs(s.weights)))
        assert s.best_loss == min(x.loss for x in steps[: s.step])
    best = min(steps, key=lambda s: s.loss)
    assert res.best_loss == best.loss and res.best_weights == best.weights
    assert all(abs(w) <= 1.5 for s in steps for w in s.weights)
    assert res.optimizer == "NGOpt/Cobyla"  # the reference's sequential path
    assert res.loss == pytest.approx(res.ce + 0.3 * np.mean(np.abs(res.weights)))


def test_deterministic_for_a_seed(t5, examples):
    def run(seed, **kw):
        p = REF(budget=6, seed=seed, **kw)
        return compose(t5.model, t5.tok, t5.loaded(), examples, p)

    a, b = run(0), run(0)
    assert a.history == b.history and a.weights == b.weights
    pop = dict(optimizer="TwoPointsDE", population=3)
    c, d, e = run(0, **pop), run(0, **pop), run(1, **pop)
    assert c.history == d.history and len(c.history) == 6
    assert c.history != e.history


def test_cancellation_within_one_step_leaves_the_model_clean(llama, examples):
    seen = []
    with pytest.raises(Cancelled) as info:
        compose(
            llama.model,
            llama.tok,
            llama.loaded(),
            examples,
            REF(budget=20),
            on_step=seen.append,
            should_stop=lambda: len(seen) >= 3,
        )
    assert info.value.step == 3 and len(seen) == 3
    assert wrappers_left(llama.model) == 0


def test_pick_best_and_bad_params(t5, examples):
    res = compose(t5.model, t5.tok, t5.loaded(), examples, REF(budget=5, pick="best"))
    assert res.weights == res.best_weights and res.loss == pytest.approx(res.best_loss)
    for bad, msg in [
        (dict(budget=0), "budget"),
        (dict(optimizer="Nope"), "unknown nevergrad optimizer"),
        (dict(loss_norm="x"), "loss_norm"),
        (dict(mode="x"), "mode"),
        (dict(guard="x"), "guard"),
        (dict(top_k=0), "top_k"),
        (dict(prior=-1.0), "prior"),
        (dict(prior=float("nan")), "prior"),  # every mix's loss would be NaN
        (dict(l1=float("nan")), "l1"),
        (dict(bound=float("inf")), "bound"),
    ]:
        with pytest.raises(ValueError, match=msg):
            compose(t5.model, t5.tok, t5.loaded(), examples, LoraHubParams(**bad))


def test_mixed_ranks_and_scales_fold_into_b(t5, examples):
    dirs = [t5.adapters[0], t5.adapter("r2_alpha2", r=2, alpha=2, seed=8)]  # scales 2 and 1
    adapters = t5.loaded(dirs)
    live = LiveComposition(t5.model, adapters)
    try:
        mods = live.modules([0.5, -1.0])
    finally:
        live.remove()
    assert live.scale == 1.0
    for name, m in mods.items():
        a, b = adapters[0].modules[name], adapters[1].modules[name]
        assert m.r == 4
        torch.testing.assert_close(m.A[:2], 0.5 * a.A[:2] - b.A)
        torch.testing.assert_close(m.A[2:], 0.5 * a.A[2:])
        torch.testing.assert_close(m.B[:, :2], 0.5 * 2 * a.B[:, :2] - 1 * b.B)


def test_ngopt_runs_past_its_metamodel_switch(t5, examples):
    """With a large budget NGOpt fits a metamodel on the losses; the run must still finish."""
    res = compose(t5.model, t5.tok, t5.loaded(), examples, REF(budget=200, seed=0))
    assert len(res.history) == 200
    assert res.best_loss <= res.history[0]["loss"]


def test_reference_mode_is_the_papers_search(kit, examples):
    """`mode="reference"`: NGOpt from w = 0, each evaluation told CE + l1 · mean|w|, the
    optimiser's recommendation returned. The loop is written out here on its own."""
    import nevergrad as ng

    adapters = kit.loaded()
    res = compose(kit.model, kit.tok, adapters, examples, REF(budget=12, seed=3))
    scorer = Scorer(kit.model, kit.tok, examples)
    live = LiveComposition(kit.model, adapters, tokens=scorer.tokens)
    try:
        param = ng.p.Array(init=np.zeros(3), lower=-1.5, upper=1.5)
        param.random_state = np.random.RandomState(3)
        opt = ng.optimizers.registry["NGOpt"](parametrization=param, budget=12, num_workers=1)
        losses = []
        for _ in range(12):
            cand = opt.ask()
            live.set_weights(torch.tensor(np.asarray(cand.value)[None]))
            losses.append(float(scorer.losses(1)[0]) + 0.05 * float(np.mean(np.abs(cand.value))))
            opt.tell(cand, losses[-1])
        final = opt.provide_recommendation().value.tolist()
    finally:
        live.remove()
    assert [h["loss"] for h in res.history] == losses
    assert res.weights == final and res.screening is None
