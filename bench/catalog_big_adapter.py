"""A large but valid PEFT LoRA adapter (safetensors + adapter_config.json), written streaming.

Shapes follow a Llama-2-7B LoRA on the attention projections: for each of 32 layers and
q/k/v/o, lora_A is [r, hidden] and lora_B is [hidden, r]. With hidden=4096, r=128 and
float32 that is 32 * 4 * 2 * 128 * 4096 * 4 bytes = 512 MiB. The file is cached under
~/.cache/lorahub/ by a version key, so it is written once.
"""

import json
import struct
from pathlib import Path

import numpy as np

VERSION = "big-adapter-v1"
BASE_MODEL = "meta-llama/Llama-2-7b-hf"
HIDDEN, LAYERS, RANK = 4096, 32, 128
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
CACHE = Path.home() / ".cache" / "lorahub" / VERSION


def tensor_shapes(
    layers: int = LAYERS, hidden: int = HIDDEN, rank: int = RANK
) -> dict[str, tuple[int, int]]:
    shapes = {}
    for layer in range(layers):
        for module in MODULES:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            shapes[f"{prefix}.lora_A.weight"] = (rank, hidden)  # [r, in_features]
            shapes[f"{prefix}.lora_B.weight"] = (hidden, rank)  # [out_features, r]
    return shapes


def adapter_config(rank: int = RANK) -> dict:
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": BASE_MODEL,
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.0,
        "target_modules": list(MODULES),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
    }


def write_safetensors(path: Path, shapes: dict[str, tuple[int, int]], seed: int = 0) -> None:
    """Header, then each float32 tensor generated and written row block by row block."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        size = 4 * shape[0] * shape[1]
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for rows, cols in shapes.values():
            for start in range(0, rows, 1024):
                block = rng.standard_normal((min(1024, rows - start), cols), dtype=np.float32)
                f.write((block * 0.02).astype("<f4").tobytes())


def big_adapter() -> Path:
    """The cached adapter directory (adapter_model.safetensors, adapter_config.json)."""
    weights = CACHE / "adapter_model.safetensors"
    if not weights.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = weights.with_suffix(".partial")
        write_safetensors(partial, tensor_shapes())
        partial.rename(weights)
    (CACHE / "adapter_config.json").write_text(json.dumps(adapter_config(), indent=2))
    return CACHE
