"""Training on the synthetic tasks: losses fall and a task adapter beats the base model."""

import dataclasses
import json

import pytest

from composer.engine import synthetic
from composer.engine.base_models import load_base_model, load_tokenizer
from composer.engine.evaluate import evaluate_model
from composer.engine.training import SuiteSpec, train_base, train_lora

TINY = dataclasses.replace(
    SuiteSpec.for_kind("t5"),
    d_model=48,
    num_layers=1,
    num_heads=2,
    d_ff=96,
    base_steps=150,
    base_batch=32,
    base_lr=5e-3,
)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "base"
    info = train_base(TINY, out)
    return out, info


def _scores(model, tok, examples) -> tuple[float, float]:
    res = evaluate_model(model, tok, examples, batch_size=100)
    return res["loss"], res["exact_match"]


def test_base_training_reduces_loss_and_saves_a_loadable_model(tiny_base):
    base_dir, info = tiny_base
    assert info["steps"] == 150
    assert info["final_loss"] < 0.7 * info["first_loss"]
    model = load_base_model(base_dir)
    assert model.config.dropout_rate == 0.0
    assert model.config.d_model == 48


def test_task_adapter_beats_the_base_model_on_its_task(tiny_base, tmp_path):
    base_dir, _ = tiny_base
    task = synthetic.get_task("first@lower")
    info = train_lora(base_dir, task.examples(500, seed=0), tmp_path / "first", steps=120, lr=1e-2)
    assert info["final_loss"] < info["first_loss"]
    saved = json.loads((tmp_path / "first" / "training.json").read_text())
    assert saved["examples"] == 500
    assert (tmp_path / "first" / "adapter_model.safetensors").is_file()

    from peft import PeftModel

    test = task.examples(100, seed=99)
    tok = load_tokenizer(base_dir)
    base = load_base_model(base_dir)
    base_loss, base_em = _scores(base, tok, test)
    tuned = PeftModel.from_pretrained(load_base_model(base_dir), tmp_path / "first").eval()
    tuned_loss, tuned_em = _scores(tuned, tok, test)
    assert tuned_loss < 0.7 * base_loss
    assert tuned_em > base_em
