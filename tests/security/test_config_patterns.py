"""Patterns and values from uploaded configs: linear-time matching, clear refusals."""

import json
import re
import time

import pytest
import torch
from django.core.exceptions import ValidationError
from safetensors.torch import save_file

from composer.engine.adapters import module_scale
from hub.services.validation import validate_adapter_files

MODULE = "encoder.block.0.layer.0.SelfAttention.q"
EVIL = "(a+)+b"  # Python's re: 14 s against 28 a's, doubling with each more


def files(tmp_path, config: dict, rank: int = 2, module: str = MODULE) -> dict:
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", **config}) if isinstance(config, dict) else config
    )
    prefix = f"base_model.model.{module}"
    tensors = {
        f"{prefix}.lora_A.weight": torch.zeros(rank, 8),
        f"{prefix}.lora_B.weight": torch.zeros(8, rank),
    }
    save_file(tensors, tmp_path / "adapter_model.safetensors")
    return {n: tmp_path / n for n in ("adapter_config.json", "adapter_model.safetensors")}


@pytest.mark.parametrize("key", ["target_modules", "rank_pattern", "alpha_pattern"])
def test_catastrophic_pattern_costs_microseconds(tmp_path, key):
    """A module named like the pattern's worst case: matching is linear with RE2."""
    module = "a" * 40 + "c"
    config = {"r": 2, "lora_alpha": 4, "target_modules": [module]}
    if key == "target_modules":
        config[key] = f"{EVIL}|{module}"
    else:
        config[key] = {EVIL: 2}
    started = time.process_time()
    meta = validate_adapter_files(files(tmp_path, config, module=module))
    assert meta.modules == [module]
    assert module_scale(config, module, 2) == 2.0  # the engine's alpha_pattern path too
    assert time.process_time() - started < 2  # backtracking: days at 40 characters


@pytest.mark.parametrize(
    "config, message",
    [
        ({"target_modules": "("}, "not a regular expression RE2 accepts"),
        ({"target_modules": ["q"], "rank_pattern": {"(": 2}}, "rank_pattern: '(' is not"),
        ({"target_modules": ["q"], "alpha_pattern": {"(": 2}}, "alpha_pattern: '(' is not"),
        ({"target_modules": ["q"], "alpha_pattern": {"(?=q)q": 2}}, "no backreferences"),
        ({"target_modules": ["q"], "alpha_pattern": {"q": "x"}}, "positive numbers"),
        ({"target_modules": ["q"], "rank_pattern": {"q": 0}}, "whole numbers from 1"),
        ({"target_modules": ["q"], "r": 2**31}, "r must be a whole number from 1 to 1,048,576"),
        ({"target_modules": ["q"], "lora_alpha": 1e300}, "lora_alpha must be a positive"),
    ],
)
def test_bad_patterns_and_values_are_refused(tmp_path, config, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        validate_adapter_files(files(tmp_path, {"r": 2, "lora_alpha": 4, **config}))


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"peft_type": "LORA", "r": 2, "lora_alpha": NaN, "target_modules": ["q"]}', "NaN"),
        ('{"peft_type": "LORA", "r": 2, "lora_alpha": Infinity}', "Infinity is not"),
        ('{"peft_type": "LORA", "r": 2, "lora_alpha": 1e999}', "not finite"),
        ('{"peft_type": "LORA", "x": "\\u0000"}', "NUL"),
        ('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested more than 32"),
        ('{"x": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001, "nested more than 32"),
    ],
)
def test_config_json_is_strict(tmp_path, text, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        validate_adapter_files(files(tmp_path, text))


def test_an_upload_with_a_bad_pattern_is_a_400(alice_client, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    paths = files(
        tmp_path, {"r": 2, "lora_alpha": 4, "target_modules": ["q"], "rank_pattern": {"(": 2}}
    )
    response = alice_client.post(
        reverse("hub:adapter_new"),
        {"name": "bad", "files": [SimpleUploadedFile(n, p.read_bytes()) for n, p in paths.items()]},
    )
    assert response.status_code == 400
    assert "rank_pattern: &#x27;(&#x27; is not a regular expression" in response.content.decode()
