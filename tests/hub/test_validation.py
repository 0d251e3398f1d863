"""validate_adapter_files on its own: the peft config features it understands."""

import json

import pytest
import torch
from django.core.exceptions import ValidationError
from safetensors.torch import save_file

from hub.services.validation import validate_adapter_files

Q = "base_model.model.encoder.block.{}.layer.0.SelfAttention.q"
V = "base_model.model.encoder.block.{}.layer.0.SelfAttention.v"


def write(tmp_path, config: dict, tensors: dict) -> dict:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", **config}))
    save_file(tensors, tmp_path / "adapter_model.safetensors")
    return {name: tmp_path / name for name in ("adapter_config.json", "adapter_model.safetensors")}


def lora(prefix: str, r: int, d_in: int = 64, d_out: int = 64, dtype=torch.float32) -> dict:
    return {
        f"{prefix}.lora_A.weight": torch.zeros(r, d_in, dtype=dtype),
        f"{prefix}.lora_B.weight": torch.zeros(d_out, r, dtype=dtype),
    }


def test_rank_pattern_and_bfloat16(tmp_path):
    tensors = {
        **lora(Q.format(0), 4, dtype=torch.bfloat16),
        **lora(V.format(0), 2, dtype=torch.bfloat16),
    }
    config = {"r": 4, "lora_alpha": 8, "target_modules": ["q", "v"], "rank_pattern": {"v": 2}}
    meta = validate_adapter_files(write(tmp_path, config, tensors))
    assert (meta.r, meta.dtype, meta.param_count) == (4, "bfloat16", 4 * 128 + 2 * 128)
    assert meta.modules == [
        Q.format(0).removeprefix("base_model.model."),
        V.format(0).removeprefix("base_model.model."),
    ]


def test_rank_pattern_mismatch(tmp_path):
    tensors = {**lora(Q.format(0), 4), **lora(V.format(0), 4)}
    config = {"r": 4, "lora_alpha": 8, "target_modules": ["q", "v"], "rank_pattern": {"v": 2}}
    with pytest.raises(ValidationError, match="says rank r=2"):
        validate_adapter_files(write(tmp_path, config, tensors))


def test_regex_target_modules(tmp_path):
    tensors = {**lora(Q.format(0), 4), **lora(Q.format(1), 4)}
    config = {"r": 4, "lora_alpha": 4, "target_modules": r".*block\.0.*\.q"}
    with pytest.raises(
        ValidationError,
        match="block.1.layer.0.SelfAttention.q' has LoRA weights but is not in target_modules",
    ):
        validate_adapter_files(write(tmp_path, config, tensors))
    config["target_modules"] = r".*\.q"
    assert validate_adapter_files(write(tmp_path, config, tensors)).target_modules == r".*\.q"


def test_open_files_are_rewound(tmp_path):
    files = write(
        tmp_path, {"r": 2, "lora_alpha": 2, "target_modules": ["q"]}, lora(Q.format(0), 2)
    )
    with (
        open(files["adapter_config.json"], "rb") as c,
        open(files["adapter_model.safetensors"], "rb") as w,
    ):
        meta = validate_adapter_files({"adapter_config.json": c, "adapter_model.safetensors": w})
        assert c.tell() == 0 and w.tell() == 0
    assert (
        meta.sizes["adapter_model.safetensors"] == files["adapter_model.safetensors"].stat().st_size
    )


@pytest.mark.parametrize(
    "config, message",
    [
        ({"r": 0, "lora_alpha": 8, "target_modules": ["q"]}, "r must be a whole number from 1"),
        ({"r": 2, "lora_alpha": "8", "target_modules": ["q"]}, "lora_alpha must be a positive"),
        ({"r": 2, "lora_alpha": 8, "target_modules": []}, "target_modules must be"),
        ({"r": 2, "lora_alpha": 8, "target_modules": "(["}, "not a regular expression RE2 accepts"),
    ],
)
def test_config_values(tmp_path, config, message):
    with pytest.raises(ValidationError, match=message):
        validate_adapter_files(write(tmp_path, config, lora(Q.format(0), 2)))
