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


def files(
    tmp_path, config: dict, rank: int = 2, module: str = MODULE, modules=(), tensors=None
) -> dict:
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", **config}) if isinstance(config, dict) else config
    )
    if tensors is None:
        tensors = {}
        for m in modules or [module]:
            tensors[f"base_model.model.{m}.lora_A.weight"] = torch.zeros(rank, 8)
            tensors[f"base_model.model.{m}.lora_B.weight"] = torch.zeros(8, rank)
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


def test_pattern_keys_are_counted(tmp_path):
    """10,000 keys against 150 modules held a web worker 45 s: at most 256 keys."""
    config = {"r": 2, "lora_alpha": 4, "target_modules": ["q"]}
    rank_pattern = {f"layers.{i}.k": 2 for i in range(257)}
    with pytest.raises(ValidationError, match="at most 256 patterns"):
        validate_adapter_files(files(tmp_path, {**config, "rank_pattern": rank_pattern}))
    rank_pattern.popitem()
    validate_adapter_files(files(tmp_path, {**config, "rank_pattern": rank_pattern}))


def test_keys_times_modules_is_bounded_before_matching(tmp_path):
    """Keys × characters of module paths over MAX_PATTERN_WORK is refused at upload, and by
    the engine when it loads such an adapter."""
    modules = [f"layers.{i:03}." + "a" * 189 for i in range(200)]  # 40,000 characters
    patterns = {f"x{i}": 2 for i in range(101)}  # × 101 keys: 4.04 million
    config = {"r": 2, "lora_alpha": 4, "target_modules": modules, "rank_pattern": patterns}
    with pytest.raises(ValidationError, match="more matching than accepted"):
        validate_adapter_files(files(tmp_path, config, modules=modules))
    patterns.popitem()  # 100 keys: 4 million, accepted
    validate_adapter_files(files(tmp_path, config, modules=modules))

    from composer.engine.adapters import AdapterError, modules_from_state_dict

    tensors = {
        f"base_model.model.{m}.lora_{side}.weight": torch.zeros(2, 2)
        for m in modules
        for side in "AB"
    }
    alpha_pattern = {f"x{i}": 2 for i in range(101)}
    with pytest.raises(AdapterError, match="more matching than accepted"):
        modules_from_state_dict(tensors, {"r": 2, "lora_alpha": 4, "alpha_pattern": alpha_pattern})


def test_the_first_matching_key_wins_as_in_peft():
    """One pass over all keys (an RE2 set) answers what peft's key-by-key loop answers."""
    from peft.utils.other import get_pattern_key

    from composer.engine.patterns import PatternMatcher

    patterns = {
        r"layers\.1\..*": 1,
        "q": 2,
        "self_attn.q": 3,
        r"layers\.[0-9]+\.mlp\.(up|down)": 4,
        "v|k": 5,
    }
    matcher = PatternMatcher(patterns)
    modules = [
        "model.layers.0.self_attn.q",
        "model.layers.1.self_attn.q",
        "model.layers.2.mlp.up",
        "model.layers.2.mlp.gate",
        "model.layers.3.self_attn.k",
        "q",
        "xq",
        "model.layers.12.self_attn.q",
    ]
    for module in modules:
        key = get_pattern_key(list(patterns), module)
        assert matcher.value(module, None) == patterns.get(key), module


def test_target_lists_match_dotted_tails():
    from composer.engine.patterns import is_targeted

    targets = {"q", "self_attn.v", "layers.0.mlp.up"}
    assert is_targeted("model.layers.3.self_attn.q", targets)
    assert is_targeted("q", targets)
    assert is_targeted("model.layers.3.self_attn.v", targets)
    assert is_targeted("model.layers.0.mlp.up", targets)
    assert not is_targeted("model.layers.1.mlp.up", targets)
    assert not is_targeted("model.layers.3.self_attn.xq", targets)
    assert not is_targeted("model.layers.3.attn.v", targets)


def commit_one_file(client, user, adapter, path: str, content: bytes):
    """A Hub API commit of one inline file to `adapter` (main), with a write token."""
    import base64

    from hfapi.tokens import token_create

    token = token_create(user=user, name="w", scope="write")[1]
    encoded = base64.b64encode(content).decode()
    lines = [
        '{"key": "header", "value": {"summary": "s"}}',
        json.dumps({"key": "file", "value": {"path": path, "content": encoded}}),
    ]
    return client.post(
        f"/api/models/{adapter.full_name}/commit/main",
        "\n".join(lines),
        content_type="application/x-ndjson",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_an_api_commit_with_too_many_pattern_keys_is_a_400(client, alice, make_adapter):
    adapter = make_adapter(alice, "c")
    config = {
        **adapter.current_version.config,
        "rank_pattern": {f"layers.{i}.k": 2 for i in range(257)},
    }
    response = commit_one_file(
        client, alice, adapter, "adapter_config.json", json.dumps(config).encode()
    )
    assert response.status_code == 400
    assert "at most 256 patterns" in response.json()["error"]
    assert adapter.versions.count() == 1


@pytest.mark.parametrize(
    "a, b, message",
    [
        (torch.zeros(2, 8, dtype=torch.int8), torch.zeros(8, 2), "lora_A is I8"),
        (torch.zeros(2, 8), torch.zeros(8, 2, dtype=torch.int32), "lora_B I32"),
        (torch.zeros(2, 0), torch.zeros(8, 2), "is empty"),
        (torch.zeros(2, 8), torch.zeros(0, 2), "is empty"),
    ],
)
def test_integer_and_empty_weights_are_refused(tmp_path, a, b, message):
    prefix = f"base_model.model.{MODULE}"
    tensors = {f"{prefix}.lora_A.weight": a, f"{prefix}.lora_B.weight": b}
    config = {"r": 2, "lora_alpha": 4, "target_modules": ["q"]}
    with pytest.raises(ValidationError, match=re.escape(message)):
        validate_adapter_files(files(tmp_path, config, tensors=tensors))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_the_engine_refuses_nan_and_infinite_weights(tmp_path, value):
    """An upload's check reads only the header; the values are checked where a job reads
    them."""
    from composer.engine.adapters import AdapterError, load_adapter

    config = {"r": 2, "lora_alpha": 4, "target_modules": ["q"]}
    b = torch.zeros(8, 2)
    b[3, 1] = value
    prefix = f"base_model.model.{MODULE}"
    tensors = {f"{prefix}.lora_A.weight": torch.zeros(2, 8), f"{prefix}.lora_B.weight": b}
    files(tmp_path, config, tensors=tensors)
    with pytest.raises(AdapterError, match="NaN or infinite"):
        load_adapter(tmp_path)


def test_the_engine_refuses_empty_weights(tmp_path):
    from composer.engine.adapters import AdapterError, load_adapter

    prefix = f"base_model.model.{MODULE}"
    tensors = {
        f"{prefix}.lora_A.weight": torch.zeros(0, 8),
        f"{prefix}.lora_B.weight": torch.zeros(8, 0),
    }
    files(tmp_path, {"r": 2, "lora_alpha": 4, "target_modules": ["q"]}, tensors=tensors)
    with pytest.raises(AdapterError, match="empty"):
        load_adapter(tmp_path)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_an_upload_with_nan_or_infinite_weights_is_refused(tmp_path, dtype, value):
    """Read where the bytes already are: the request's own upload, in bounded chunks."""
    config = {"r": 2, "lora_alpha": 4, "target_modules": ["q"]}
    b = torch.zeros(8, 2, dtype=dtype)
    b[7, 1] = value
    prefix = f"base_model.model.{MODULE}"
    tensors = {
        f"{prefix}.lora_A.weight": torch.ones(2, 8, dtype=dtype),
        f"{prefix}.lora_B.weight": b,
    }
    with pytest.raises(ValidationError, match="holds NaN or infinite values"):
        validate_adapter_files(files(tmp_path, config, tensors=tensors))
    b[7, 1] = 65504  # the largest float16: finite
    validate_adapter_files(files(tmp_path, config, tensors=tensors))


def test_float8_nan_is_found():
    import io

    from safetensors.torch import save

    from hub.services.safetensors_header import first_nonfinite, read_safetensors_header

    for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        t = torch.tensor([1.0, 448.0 if dtype == torch.float8_e4m3fn else 57344.0]).to(dtype)
        data = save({"x": t})
        f = io.BytesIO(data)
        tensors = read_safetensors_header(f, len(data), filename="w", max_header_bytes=1 << 20)
        assert first_nonfinite(f, tensors) is None  # the largest finite value
        data = save({"x": torch.tensor([1.0, float("nan")]).to(dtype)})
        f = io.BytesIO(data)
        tensors = read_safetensors_header(f, len(data), filename="w", max_header_bytes=1 << 20)
        assert first_nonfinite(f, tensors) == "x"


def test_an_api_commit_with_nan_weights_is_a_400(client, alice, make_adapter):
    from safetensors.torch import save

    from hub.services.shapes import blob_tensor_shapes

    adapter = make_adapter(alice, "n")
    weights = adapter.current_version.files.get(filename="adapter_model.safetensors").blob
    tensors = {k: torch.zeros(v) for k, v in blob_tensor_shapes(weights, "w").items()}
    next(iter(tensors.values()))[0, 0] = float("nan")
    response = commit_one_file(client, alice, adapter, "adapter_model.safetensors", save(tensors))
    assert response.status_code == 400
    assert "holds NaN or infinite values" in response.json()["error"]
    assert adapter.versions.count() == 1


def test_an_upload_with_too_many_pattern_keys_is_a_400(alice_client, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    rank_pattern = {f"layers.{i}.k": 2 for i in range(257)}
    config = {"r": 2, "lora_alpha": 4, "target_modules": ["q"], "rank_pattern": rank_pattern}
    paths = files(tmp_path, config)
    response = alice_client.post(
        reverse("hub:adapter_new"),
        {
            "name": "many",
            "files": [SimpleUploadedFile(n, p.read_bytes()) for n, p in paths.items()],
        },
    )
    assert response.status_code == 400 and "at most 256 patterns" in response.content.decode()
