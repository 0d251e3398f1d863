import json

import pytest
import torch
from peft import PeftModel

from composer.engine.adapters import LoraAdapter, LoraModule, load_adapter
from composer.engine.base_models import load_base_model
from composer.engine.baselines import merge
from composer.engine.cli import main
from composer.engine.knots import aligned


def _adapter(modules: dict[str, LoraModule]) -> LoraAdapter:
    return LoraAdapter(path=None, config={"r": 1}, modules=modules)


def test_the_shared_basis_reproduces_every_input(t5):
    """ΔW_i = U Σ V_iᵀ for each input, with mixed ranks and weights folded in."""
    adapters = t5.loaded([t5.adapters[0], t5.adapter("r2_alpha2", r=2, alpha=2, seed=8)])
    w = [0.7, -1.3]
    for name in adapters[0].modules:
        mods = [a.modules[name] for a in adapters]
        US, V = aligned(mods, w)
        assert V.shape == (2, mods[0].d_in, US.shape[1])
        for i, m in enumerate(mods):
            torch.testing.assert_close(US @ V[i].T, w[i] * m.delta(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["knots_ties", "knots_dare_ties"])
def test_one_adapter_at_full_rank_and_density_one_is_itself(t5, method):
    (adapter,) = t5.loaded(t5.adapters[:1])
    merged = merge(method, [adapter], weights=[1.0], density=1.0, rank=4)
    for name, m in merged.items():
        assert m.r == 4 and m.scale == 1.0
        torch.testing.assert_close(m.delta(), adapter.modules[name].delta(), rtol=1e-4, atol=1e-5)


def test_one_adapter_below_density_one_is_trimmed(t5):
    (adapter,) = t5.loaded(t5.adapters[:1])
    merged = merge("knots_ties", [adapter], weights=[1.0], density=0.5, rank=4)
    for name, m in merged.items():
        exact = adapter.modules[name].delta()
        err = (m.delta() - exact).norm() / exact.norm()
        assert 0.05 < err < 0.9  # half of V's entries dropped: changed, not lost


def test_disjoint_inputs_at_density_one_add_up(t5):
    """Inputs reading disjoint input features have no entry of V in common: TIES keeps each
    entry of its single owner, so the merge is the exact sum (task arithmetic)."""
    gen = torch.Generator().manual_seed(0)
    A1, A2 = torch.zeros(2, 8), torch.zeros(3, 8)
    A1[:, :4], A2[:, 4:] = torch.randn(2, 4, generator=gen), torch.randn(3, 4, generator=gen)
    m1 = LoraModule(A=A1, B=torch.randn(6, 2, generator=gen), scale=2.0)
    m2 = LoraModule(A=A2, B=torch.randn(6, 3, generator=gen), scale=0.5)
    ins = [_adapter({"x": m1}), _adapter({"x": m2})]
    merged = merge("knots_ties", ins, weights=[1.0, 1.0], density=1.0, rank=5)["x"]
    torch.testing.assert_close(merged.delta(), m1.delta() + m2.delta(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["knots_ties", "knots_dare_ties"])
@pytest.mark.parametrize("disjoint", ["mean", "sum"])
def test_the_merged_update_scales_as_lambda(t5, method, disjoint):
    """ΔW'(λ) = λ ΔW'(1); trim, sign election and the disjoint merge are blind to a common
    scale, so uniform weights c give what λ = c gives (up to rounding, which can move a value
    near a trim or sign threshold)."""
    adapters = t5.loaded()
    kw = {"density": 0.6, "rank": 12, "seed": 1, "disjoint": disjoint}  # 12 = Σ r: no cut
    one = merge(method, adapters, weights=[1.0] * 3, **kw)
    lam = merge(method, adapters, weights=[1.0] * 3, scaling_coef=2.5, **kw)
    weighted = merge(method, adapters, weights=[2.5] * 3, **kw)
    for name, m in one.items():
        torch.testing.assert_close(lam[name].delta(), 2.5 * m.delta(), rtol=1e-4, atol=1e-5)
        diff = weighted[name].delta() - lam[name].delta()
        assert diff.norm() <= 1e-3 * lam[name].delta().norm()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_the_scaling_coefficient_must_be_positive_and_finite(t5, bad):
    with pytest.raises(ValueError, match="scaling coefficient must be positive"):
        merge("knots_ties", t5.loaded(), scaling_coef=bad)


def test_a_hand_checked_case():
    """d_out = 1: the shared basis is one number (U Σ = ±‖[w1 w2]‖), V_i = w_i / (U Σ), so
    TIES acts on the two rows themselves. w1 = [3, -2, 0, 1], w2 = [-1, 4, 0, 2]:
    density 1: signs elected from the sums [2, 2, 0, 3] -> [+, +, +, +] (0 counts as +);
    agreeing means: [3, 4, (no agreeing value) 0, (1 + 2) / 2] = [3, 4, 0, 1.5];
    agreeing sums: [3, 4, 0, 3];
    density 0.5: trimmed to [3, -2, 0, 0] and [0, 4, 0, 2]; sums [3, 2, 0, 2] -> [3, 4, 0, 2].
    """
    w1, w2 = torch.tensor([[3.0, -2.0, 0.0, 1.0]]), torch.tensor([[-1.0, 4.0, 0.0, 2.0]])
    ins = [_adapter({"x": LoraModule(A=w, B=torch.ones(1, 1), scale=1.0)}) for w in (w1, w2)]
    kw = {"weights": [1.0, 1.0], "rank": 1}
    full = merge("knots_ties", ins, density=1.0, **kw)["x"]
    full_sum = merge("knots_ties", ins, density=1.0, disjoint="sum", **kw)["x"]
    half = merge("knots_ties", ins, density=0.5, **kw)["x"]
    torch.testing.assert_close(full.delta(), torch.tensor([[3.0, 4.0, 0.0, 1.5]]))
    torch.testing.assert_close(full_sum.delta(), torch.tensor([[3.0, 4.0, 0.0, 3.0]]))
    torch.testing.assert_close(half.delta(), torch.tensor([[3.0, 4.0, 0.0, 2.0]]))


def test_the_result_is_a_peft_adapter_of_the_chosen_rank(t5, tmp_path, capsys):
    out = tmp_path / "knots"
    args = ["--method", "knots_ties", "--density", "0.7", "--rank", "3", "--out", str(out)]
    args += ["--scaling-coef", "1.5", "--disjoint", "sum"]
    assert main(["merge", "--adapters", *map(str, t5.adapters), *args]) == 0
    res = json.loads(capsys.readouterr().out)
    params = {"density": 0.7, "rank": 3, "seed": 0, "scaling_coef": 1.5, "disjoint": "sum"}
    assert res["output"]["r"] == 3 and res["params"] == params
    merged = load_adapter(out)
    assert merged.ranks == {3} and merged.alpha == 3
    model = PeftModel.from_pretrained(load_base_model(t5.base), out)
    for name, m in merged.modules.items():
        layer = model.base_model.model.get_submodule(name)
        lora = layer.lora_B["default"].weight @ layer.lora_A["default"].weight
        torch.testing.assert_close(lora, m.delta())
