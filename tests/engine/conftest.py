"""Tiny random T5 and Llama models with random LoRA adapters, built once per session."""

import pytest
import torch

from composer.engine import toy
from composer.engine.adapters import load_adapter
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.examples import Example

T5_TARGETS = ("q", "v")
LLAMA_TARGETS = ("q_proj", "v_proj")


class Kit:
    """A base model directory, its loaded model/tokenizer and adapters made for it."""

    def __init__(self, root, kind):
        self.root, self.kind = root, kind
        build = toy.build_tiny_t5 if kind == "t5" else toy.build_tiny_llama
        self.base = build(root / "base")
        self.targets = T5_TARGETS if kind == "t5" else LLAMA_TARGETS
        self.model = load_base_model(self.base)
        self.tok = load_tokenizer(self.base)
        self.adapters = [self.adapter(f"a{i}", seed=i + 1) for i in range(3)]

    def adapter(self, name, *, r=4, alpha=8, seed=0, targets=None, **kwargs):
        out = self.root / name
        if not out.exists():
            toy.make_random_adapter(
                self.base,
                out,
                r=r,
                alpha=alpha,
                target_modules=targets or self.targets,
                seed=seed,
                init_std=0.2,
                **kwargs,
            )
        return out

    def loaded(self, dirs=None):
        return [load_adapter(d) for d in (dirs or self.adapters)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny models gain nothing from threads, and the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def t5(tmp_path_factory):
    return Kit(tmp_path_factory.mktemp("t5"), "t5")


@pytest.fixture(scope="session")
def llama(tmp_path_factory):
    return Kit(tmp_path_factory.mktemp("llama"), "llama")


@pytest.fixture(params=["t5", "llama"])
def kit(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def examples():
    words = ["abc", "hello", "xyzzy", "lora", "merge"]
    return [Example(w, w[::-1]) for w in words]


def wrappers_left(model) -> int:
    """Forward hooks and instance `forward`s on `model`'s modules: 0 when it is clean."""
    return sum(len(m._forward_hooks) + ("forward" in vars(m)) for m in model.modules())
