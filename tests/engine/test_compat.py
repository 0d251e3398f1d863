import pytest

from composer.engine import toy
from composer.engine.adapters import load_adapter
from composer.engine.compat import IncompatibleAdapters, check_against_model, check_compatible


def test_compatible_adapters_pass(t5):
    check_compatible(t5.loaded(), "lorahub")
    check_compatible(t5.loaded(), "linear")


def test_different_base_models(t5):
    other = load_adapter(t5.adapter("other_base", seed=5, base_model_name="google/flan-t5-large"))
    with pytest.raises(IncompatibleAdapters, match="different base models") as info:
        check_compatible([*t5.loaded(), other])
    assert "other_base: google/flan-t5-large" in str(info.value)
    with pytest.raises(IncompatibleAdapters, match="expected google/flan-t5-large"):
        check_compatible(t5.loaded(), base_model="google/flan-t5-large")


def test_different_targets_name_the_modules(t5):
    qk = load_adapter(t5.adapter("qk", seed=6, targets=("q", "k")))
    with pytest.raises(IncompatibleAdapters) as info:
        check_compatible([load_adapter(t5.adapters[0]), qk])
    msg = str(info.value)
    assert msg.startswith("qk targets different modules than a0")
    assert "SelfAttention.k" in msg and "which a0 does not" in msg
    assert "SelfAttention.v" in msg and "lacks" in msg


def test_shape_mismatch_names_module_and_shapes(t5, tmp_path):
    small = toy.build_tiny_t5(tmp_path / "small", d_model=32)
    odd = load_adapter(
        toy.make_random_adapter(small, tmp_path / "odd", r=4, alpha=8, base_model_name=str(t5.base))
    )
    with pytest.raises(
        IncompatibleAdapters, match=r"shape mismatch at decoder\.block\.0\..*q: "
    ) as info:
        check_compatible([load_adapter(t5.adapters[0]), odd])
    assert "(64, 64)" in str(info.value) and "(32, 32)" in str(info.value)
    with pytest.raises(IncompatibleAdapters, match="the base model has"):
        check_against_model([odd], t5.model)


def test_mixed_ranks_allowed_where_the_method_allows(t5):
    r2 = load_adapter(t5.adapter("r2", r=2, alpha=4, seed=7))
    mixed = [load_adapter(t5.adapters[0]), r2]
    for method in ("lorahub", "lego", "cat", "svd", "task_arithmetic"):
        check_compatible(mixed, method)
    with pytest.raises(IncompatibleAdapters, match="'ties' needs equal ranks .*a0: r=4, r2: r=2"):
        check_compatible(mixed, "ties")


def test_module_missing_from_the_base_model(llama, t5):
    with pytest.raises(IncompatibleAdapters, match="which the base model does not have"):
        check_against_model(t5.loaded()[:1], llama.model)
