"""The adapter page's "Use it" snippet runs as it is shown; the tokens page's setup lines."""

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hub.services.base_models import base_model_register

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
import torch
from safetensors.torch import load_file
expected = load_file({weights!r})
loaded = {{k: v for k, v in model.state_dict().items() if "lora_" in k}}
assert len(loaded) == len(expected) > 0
for key, tensor in expected.items():
    assert torch.equal(loaded[key.replace(".weight", ".default.weight")], tensor), key
print("snippet ran:", type(base).__name__, len(loaded), "LoRA tensors")
"""


def snippet(page: bytes) -> str:
    found = re.search(r'<code id="snippet">(.*?)</code>', page.decode(), re.DOTALL)
    return html.unescape(found[1])


@pytest.mark.slow
def test_the_snippet_of_a_private_adapter_runs(
    hub, alice_client, secret_lora, alice_read, tiny_base, adapter_dir_b, tmp_path
):
    base_model_register(secret_lora.base_model.identifier, tiny_base)
    host = urlsplit(hub).netloc
    code = snippet(alice_client.get("/alice/secret-lora", HTTP_HOST=host).content)
    assert f'os.environ["HF_ENDPOINT"] = "{hub}"' in code
    assert 'PeftModel.from_pretrained(base, "alice/secret-lora")' in code
    assert code.count("hf_...") == 1  # the token line of a private adapter
    script = code.replace("hf_...", alice_read) + CHECK.format(
        weights=str(adapter_dir_b / "adapter_model.safetensors")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(tmp_path / "hf-home"))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "snippet ran: LlamaForCausalLM" in result.stdout


def test_public_snippet_has_no_token_line_and_says_when_the_base_is_elsewhere(client, sql_lora):
    code = snippet(client.get("/alice/sql-lora").content)
    assert "HF_TOKEN" not in code
    assert "is not served by this hub" in code  # no files registered for its base model


def test_tokens_page_shows_setup_lines_with_the_new_token(alice_client):
    page = alice_client.post("/settings/tokens/", {"name": "laptop", "scope": "read"})
    token = page.context["new_token"]
    text = page.content.decode()
    lines = html.unescape(re.search(r'<code id="setup-lines">(.*?)</code>', text, re.S)[1])
    assert "export HF_ENDPOINT=http://testserver\n" in lines
    assert f"export HF_TOKEN={token}\n" in lines
    assert 'data-copy="#new-token"' in text and 'data-copy="#setup-lines"' in text
    # Shown once: the next visit has the endpoint line but no token.
    again = alice_client.get("/settings/tokens/").content.decode()
    assert token not in again and "HF_ENDPOINT=http://testserver" in again
