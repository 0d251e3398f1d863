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


def test_neutral_penalty_keeps_the_adapter_quiet_outside_its_domain(tiny_base, tmp_path):
    """With `neutral` examples the adapter's own output ΔW·x on them shrinks."""
    import torch
    from peft import PeftModel

    from composer.engine.examples import encode_examples
    from composer.engine.training import _lora_b_modules, merge_training_examples

    base_dir, _ = tiny_base
    task = synthetic.MERGE_TASKS[0]
    examples = merge_training_examples(task, 200, seed=0, suffix="")
    own_chars = set(synthetic.DOMAINS[task.domain])
    neutral = [ex for ex in examples if not set(ex.input) & own_chars]
    tok = load_tokenizer(base_dir)
    batch = encode_examples(tok, neutral[:50], causal=False)

    def delta_on_neutral(adapter_dir) -> float:
        model = PeftModel.from_pretrained(load_base_model(base_dir), adapter_dir).eval()
        outs = []
        hooks = [
            m.register_forward_hook(lambda _m, _a, o: outs.append(o.pow(2).mean()))
            for m in _lora_b_modules(model)
        ]
        with torch.no_grad():
            model(**batch)
        for h in hooks:
            h.remove()
        return float(torch.stack(outs).mean())

    kwargs = {"r": 8, "alpha": 16, "steps": 60, "lr": 1e-2, "target_modules": ("q", "v", "o")}
    train_lora(base_dir, examples, tmp_path / "plain", **kwargs)
    train_lora(
        base_dir, examples, tmp_path / "quiet", neutral=neutral, neutral_weight=100.0, **kwargs
    )
    assert delta_on_neutral(tmp_path / "quiet") < 0.5 * delta_on_neutral(tmp_path / "plain")


def test_ensure_suite_builds_once_into_the_cache_and_reuses_it(tmp_path, monkeypatch):
    from composer.engine import training
    from composer.engine.adapters import load_adapter

    micro = dataclasses.replace(TINY, base_steps=10, lora_steps=2, workers=1)
    monkeypatch.setattr(training.SuiteSpec, "for_kind", classmethod(lambda cls, k, quick: micro))
    monkeypatch.setenv("LORAHUB_CACHE", str(tmp_path))
    suite = training.ensure_suite("t5")
    assert suite.root == tmp_path / f"suite-{training.SUITE_VERSION}" / "t5"
    assert sorted(suite.adapters) == sorted(t.name for t in synthetic.TRAIN_TASKS)
    assert set(suite.heldout_tasks).isdisjoint(suite.adapters)
    adapter = load_adapter(suite.adapters["reverse@lower"])
    assert adapter.r == micro.lora_r and adapter.target_modules == ["q", "v"]
    assert not list(suite.root.parent.glob("*.tmp"))
    stamp = (suite.root / "manifest.json").stat().st_mtime_ns
    again = training.ensure_suite("t5")
    assert again.adapters == suite.adapters
    assert (suite.root / "manifest.json").stat().st_mtime_ns == stamp
    assert again.examples("reverse@digits", 3) == suite.examples("reverse@digits", 3)
