import pytest
import torch
from peft import PeftModel

from composer.engine.base_models import load_base_model
from composer.engine.baselines import merge
from composer.engine.compat import IncompatibleAdapters


@pytest.mark.parametrize("method", ["linear", "svd", "ties", "ties_svd", "magnitude_prune"])
def test_peft_methods_equal_peft_on_the_real_model(t5, method):
    """Our skeleton path gives exactly what peft gives on the loaded base model."""
    adapters = t5.loaded()
    weights = [0.5, 0.3, 0.2]
    ours = merge(method, adapters, weights=weights, density=0.5, seed=0)
    model = PeftModel.from_pretrained(load_base_model(t5.base), t5.adapters[0], adapter_name="x0")
    for i, d in enumerate(t5.adapters[1:], 1):
        model.load_adapter(d, adapter_name=f"x{i}")
    kwargs = {"density": 0.5} if method not in ("linear", "svd") else {}
    model.add_weighted_adapter(["x0", "x1", "x2"], weights, "m", combination_type=method, **kwargs)
    for name, m in ours.items():
        layer = model.base_model.model.get_submodule(name)
        torch.testing.assert_close(m.A, layer.lora_A["m"].weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m.B, layer.lora_B["m"].weight, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["dare_ties", "knots_dare_ties"])
def test_dare_is_seeded(t5, method):
    adapters = t5.loaded()
    a = merge(method, adapters, density=0.3, seed=1)
    b = merge(method, adapters, density=0.3, seed=1)
    c = merge(method, adapters, density=0.3, seed=2)
    assert all(torch.equal(a[n].delta(), b[n].delta()) for n in a)
    assert any(not torch.equal(a[n].delta(), c[n].delta()) for n in a)


def test_dare_keeps_everything_at_density_one(t5):
    adapters = t5.loaded()
    full, linear = merge("dare_linear", adapters, density=1.0), merge("linear", adapters)
    for n in full:
        torch.testing.assert_close(full[n].delta(), linear[n].delta())


def test_exact_merges_give_the_weighted_delta(t5):
    adapters = t5.loaded([t5.adapters[0], t5.adapter("r2_alpha2", r=2, alpha=2, seed=8)])
    w = [0.7, -1.3]
    for method in ("task_arithmetic", "cat"):
        merged = merge(method, adapters, weights=w)
        for name, m in merged.items():
            exact = sum(wi * a.modules[name].delta() for wi, a in zip(w, adapters, strict=False))
            torch.testing.assert_close(m.delta(), exact, rtol=1e-5, atol=1e-6)
            assert m.r == 6


def test_task_arithmetic_rank_k_is_the_best_approximation(t5):
    adapters = t5.loaded()
    merged = merge("task_arithmetic", adapters, weights=[1, 1, 1], rank=3)
    for name, m in merged.items():
        exact = sum(a.modules[name].delta() for a in adapters)
        U, S, Vh = torch.linalg.svd(exact)
        best = U[:, :3] @ torch.diag(S[:3]) @ Vh[:3]
        assert m.r == 3
        torch.testing.assert_close(m.delta(), best, rtol=1e-4, atol=1e-5)


def test_bad_merges(t5):
    mixed = t5.loaded([t5.adapters[0], t5.adapter("r2_alpha2", r=2, alpha=2, seed=8)])
    with pytest.raises(IncompatibleAdapters, match="needs equal ranks"):
        merge("linear", mixed)
    with pytest.raises(ValueError, match="unknown merge method 'average'"):
        merge("average", mixed)
    with pytest.raises(ValueError, match="3 weights for 2 adapters"):
        merge("cat", mixed, weights=[1, 2, 3])


def test_peft_never_sees_the_uploaders_patterns(t5, tmp_path):
    """peft matches rank_pattern / alpha_pattern keys with Python's backtracking `re`: a key
    that RE2 (which read the adapter) takes in linear time can hold a worker for hours there
    (`([\\w.]|[\\w.]|[\\w.])*Z` on a 40-character module path). peft gets each differing
    module's escaped path instead, with the rank and scale RE2 found."""
    import json
    import re
    import shutil

    from peft import LoraConfig

    from composer.engine.adapters import load_adapter, save_adapter
    from composer.engine.baselines import _lora_config

    folder = tmp_path / "patterned"
    shutil.copytree(t5.adapters[0], folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    evil = r"([\w.]|[\w.]|[\w.])*Z"
    config["rank_pattern"] = {evil: 8}
    config["alpha_pattern"] = {evil: 8, r"SelfAttention\.v": 3 * config["lora_alpha"]}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    patterned = load_adapter(folder)

    lora = _lora_config(LoraConfig, patterned)
    escaped = {re.escape(n) for n in patterned.modules}
    assert set(lora.rank_pattern) | set(lora.alpha_pattern) <= escaped
    assert lora.alpha_pattern  # the v modules' scale differs from the q modules'

    # The same modules saved with our own config merge identically.
    plain = load_adapter(
        save_adapter(
            tmp_path / "plain",
            patterned.modules,
            base_model=patterned.base_model,
            task_type=patterned.task_type,
        )
    )
    other = load_adapter(t5.adapters[1])
    ours = merge("ties", [patterned, other], density=0.5, seed=0)
    theirs = merge("ties", [plain, other], density=0.5, seed=0)
    for name, m in ours.items():
        torch.testing.assert_close(m.delta(), theirs[name].delta())
