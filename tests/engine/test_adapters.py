import json

import pytest
import torch
from peft import PeftModel
from safetensors.torch import save_file

from composer.engine.adapters import AdapterError, LoraModule, load_adapter, save_adapter
from composer.engine.base_models import load_base_model


def _logits(model, tok):
    enc = tok(["some input", "more"], padding=True, return_tensors="pt")
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            return model(**enc, decoder_input_ids=enc.input_ids[:, :3]).logits
        return model(**enc).logits


def test_load_reads_modules_shapes_and_scale(t5):
    a = load_adapter(t5.adapters[0])
    assert a.r == 4 and a.alpha == 8 and a.target_modules == ["q", "v"]
    assert a.base_model == str(t5.base) and a.task_type == "SEQ_2_SEQ_LM"
    assert len(a.sha256) == 64
    m = a.modules["encoder.block.0.layer.0.SelfAttention.q"]
    assert m.A.shape == (4, 64) and m.B.shape == (64, 4) and m.scale == 2.0
    assert len(a.modules) == 12  # 2 encoder + 2 decoder blocks (self + cross attention) × q, v


def test_round_trip_loads_with_peft_and_gives_identical_outputs(kit, tmp_path):
    a = load_adapter(kit.adapters[1])
    out = save_adapter(tmp_path / "copy", a.modules, base_model=a.base_model, task_type=a.task_type)
    again = load_adapter(out)
    for name, m in a.modules.items():
        assert torch.equal(again.modules[name].A, m.A) and torch.equal(again.modules[name].B, m.B)
        assert again.modules[name].scale == m.scale
    original = PeftModel.from_pretrained(load_base_model(kit.base), kit.adapters[1])
    copied = PeftModel.from_pretrained(load_base_model(kit.base), out)
    assert torch.equal(_logits(original, kit.tok), _logits(copied, kit.tok))


def test_per_module_ranks_and_scales_are_written_as_patterns(t5, tmp_path):
    a = load_adapter(t5.adapters[0])
    gen = torch.Generator().manual_seed(0)
    modules = dict(a.modules)
    odd = "decoder.block.1.layer.0.SelfAttention.v"
    modules[odd] = LoraModule(
        A=torch.randn(6, 64, generator=gen), B=torch.randn(64, 6, generator=gen), scale=0.5
    )
    out = save_adapter(tmp_path / "mixed", modules, base_model="tiny", task_type="SEQ_2_SEQ_LM")
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["rank_pattern"] == {odd: 6} and cfg["alpha_pattern"] == {odd: 3}
    model = PeftModel.from_pretrained(load_base_model(t5.base), out)
    for name, m in modules.items():
        layer = model.base_model.model.get_submodule(name)
        torch.testing.assert_close(layer.get_delta_weight("default"), m.delta())


def test_pickle_weights_are_refused_without_loading(t5, tmp_path):
    d = tmp_path / "pickled"
    d.mkdir()
    (d / "adapter_config.json").write_text((t5.adapters[0] / "adapter_config.json").read_text())
    (d / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(AdapterError, match="only safetensors weights are accepted"):
        load_adapter(d)


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing_dir", "adapter directory not found"),
        ("no_config", "no adapter_config.json"),
        ("bad_json", "unreadable JSON"),
        ("not_lora", "only LORA is supported"),
        ("dora", "DoRA adapters are not supported"),
        ("no_weights", "no adapter_model.safetensors"),
        ("corrupt_weights", "unreadable safetensors file"),
        ("lonely_A", "has no lora_B weight"),
        ("foreign_tensor", "unsupported tensor"),
    ],
)
def test_broken_adapters_give_one_line_errors(t5, tmp_path, breakage, message):
    d = tmp_path / "broken"
    if breakage != "missing_dir":
        d.mkdir()
        cfg = json.loads((t5.adapters[0] / "adapter_config.json").read_text())
        cfg.update({"not_lora": {"peft_type": "IA3"}, "dora": {"use_dora": True}}.get(breakage, {}))
        if breakage != "no_config":
            text = "{nope" if breakage == "bad_json" else json.dumps(cfg)
            (d / "adapter_config.json").write_text(text)
        weights = (t5.adapters[0] / "adapter_model.safetensors").read_bytes()
        if breakage == "corrupt_weights":
            weights = weights[:100]
        if breakage in ("lonely_A", "foreign_tensor"):
            key = "base_model.model.encoder.block.0.layer.0.SelfAttention.q"
            tensors = {f"{key}.lora_A.weight": torch.zeros(4, 64)}
            if breakage == "foreign_tensor":
                tensors = {f"{key}.weight": torch.zeros(64, 64)}
            save_file(tensors, str(d / "adapter_model.safetensors"))
        elif breakage != "no_weights":
            (d / "adapter_model.safetensors").write_bytes(weights)
    with pytest.raises(AdapterError, match=message) as info:
        load_adapter(d)
    assert "\n" not in str(info.value)
