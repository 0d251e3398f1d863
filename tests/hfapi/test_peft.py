"""peft loads an adapter by repo id from this hub, with only HF_ENDPOINT (and HF_TOKEN) set."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
import torch
from peft import PeftModel
from safetensors.torch import load_file
from composer.engine.base_models import load_base_model

base_dir, repo_id, local_weights = sys.argv[1:]
model = PeftModel.from_pretrained(load_base_model(base_dir), repo_id)
expected = load_file(local_weights)
loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
assert len(loaded) == len(expected) > 0, (len(loaded), len(expected))
for key, tensor in expected.items():
    name = key.replace(".weight", ".default.weight")
    assert torch.equal(loaded[name], tensor), key
print("loaded", repo_id, len(loaded), "tensors")
"""


@pytest.mark.slow
def test_peft_from_pretrained_by_repo_id(
    hub, secret_lora, alice_read, tiny_base, adapter_dir_b, tmp_path
):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_ENDPOINT=hub,
        HF_TOKEN=alice_read,  # the adapter is private: alice's read token opens it
        HF_HOME=str(tmp_path / "hf-home"),
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(tiny_base),
            "alice/secret-lora",
            str(adapter_dir_b / "adapter_model.safetensors"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded alice/secret-lora" in result.stdout
