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


def test_a_hand_checked_case():
    """d_out = 1: the shared basis is one number (U Σ = ±‖[w1 w2]‖), V_i = w_i / (U Σ), so
    TIES acts on the two rows themselves. w1 = [3, -2, 0, 1], w2 = [-1, 4, 0, 2]:
    density 1: signs elected from the sums [2, 2, 0, 3] -> [+, +, +, +] (0 counts as +);
    agreeing means: [3, 4, (no agreeing value) 0, (1 + 2) / 2] = [3, 4, 0, 1.5];
    density 0.5: trimmed to [3, -2, 0, 0] and [0, 4, 0, 2]; sums [3, 2, 0, 2] -> [3, 4, 0, 2].
    """
    w1, w2 = torch.tensor([[3.0, -2.0, 0.0, 1.0]]), torch.tensor([[-1.0, 4.0, 0.0, 2.0]])
    ins = [_adapter({"x": LoraModule(A=w, B=torch.ones(1, 1), scale=1.0)}) for w in (w1, w2)]
    full = merge("knots_ties", ins, weights=[1.0, 1.0], density=1.0, rank=1)["x"]
    half = merge("knots_ties", ins, weights=[1.0, 1.0], density=0.5, rank=1)["x"]
    torch.testing.assert_close(full.delta(), torch.tensor([[3.0, 4.0, 0.0, 1.5]]))
    torch.testing.assert_close(half.delta(), torch.tensor([[3.0, 4.0, 0.0, 2.0]]))


def test_the_result_is_a_peft_adapter_of_the_chosen_rank(t5, tmp_path, capsys):
    out = tmp_path / "knots"
    args = ["--method", "knots_ties", "--density", "0.7", "--rank", "3", "--out", str(out)]
    assert main(["merge", "--adapters", *map(str, t5.adapters), *args]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["output"]["r"] == 3 and res["params"] == {"density": 0.7, "rank": 3, "seed": 0}
    merged = load_adapter(out)
    assert merged.ranks == {3} and merged.alpha == 3
    model = PeftModel.from_pretrained(load_base_model(t5.base), out)
    for name, m in merged.modules.items():
        layer = model.base_model.model.get_submodule(name)
        lora = layer.lora_B["default"].weight @ layer.lora_A["default"].weight
        torch.testing.assert_close(lora, m.delta())
