"""Registered base models served by identifier: transformers loads one with only HF_ENDPOINT."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

from hub.models import BaseModel
from hub.services.base_models import base_model_register
from hub.services.storage import file_sha256

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

repo_id, local_weights = sys.argv[1:]
model = AutoModelForCausalLM.from_pretrained(repo_id)
tokenizer = AutoTokenizer.from_pretrained(repo_id)
expected = load_file(local_weights)
state = model.state_dict()
assert expected and all(torch.equal(state[k], v) for k, v in expected.items())
print("loaded", repo_id, len(expected), "tensors;", tokenizer("abc=")["input_ids"])
"""


@pytest.fixture
def tiny_llama(db, tiny_base) -> BaseModel:
    return base_model_register("lorahub-tiny-llama", tiny_base)


def _client_env(hub: str, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub, HF_HOME=str(home), PYTHONPATH=str(ROOT))
    return env


@pytest.mark.slow
def test_from_pretrained_by_identifier(hub, tiny_llama, tiny_base, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, "lorahub-tiny-llama", str(tiny_base / "model.safetensors")],
        env=_client_env(hub, tmp_path / "hf-home"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded lorahub-tiny-llama" in result.stdout


def test_model_info_tree_and_errors(hub, tiny_llama, tiny_base, tmp_path):
    api = HfApi(endpoint=hub, token=False)
    info = api.model_info("lorahub-tiny-llama")
    assert info.sha == tiny_llama.commit
    local = {p.name: p for p in tiny_base.iterdir()}
    listed = {s.rfilename: s.lfs.sha256 for s in info.siblings}
    assert set(listed) == set(local)
    with open(local["config.json"], "rb") as fh:
        assert listed["config.json"] == file_sha256(fh)
    assert {f.path for f in api.list_repo_tree("lorahub-tiny-llama")} == set(local)
    path = hf_hub_download(
        "lorahub-tiny-llama", "config.json", endpoint=hub, cache_dir=tmp_path, revision=info.sha
    )
    assert Path(path).read_bytes() == local["config.json"].read_bytes()
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("lorahub-tiny-llama", "nope.json", endpoint=hub, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        api.model_info("lorahub-tiny-llama", revision="v9")


def test_a_resumed_download_gets_the_rest(client, tiny_llama, tiny_base):
    weights = (tiny_base / "model.safetensors").read_bytes()
    response = client.get(
        "/lorahub-tiny-llama/resolve/main/model.safetensors", HTTP_RANGE="bytes=100-"
    )
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == weights[100:]


def test_an_adapter_cannot_shadow_a_base_model(client, alice, tiny_base, adapter_dir):
    from hub.services.adapters import adapter_create

    files = {p.name: p for p in adapter_dir.iterdir()}
    adapter_create(owner=alice, name="sql-lora", files=files)  # before the registration
    base_model_register("alice/sql-lora", tiny_base)
    with pytest.raises(ValidationError, match="base model's identifier"):
        adapter_create(owner=alice, name="SQL-Lora", files=files)
    info = client.get("/api/models/alice/sql-lora").json()
    assert info["sha"] == BaseModel.objects.get(identifier="alice/sql-lora").commit
    assert "model.safetensors" in {s["rfilename"] for s in info["siblings"]}
    # An unregistered name still reaches the adapter routes.
    assert client.get("/api/models/alice/other").status_code == 404


def test_registration_refuses_pickles_and_non_models(db, tiny_base, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_base / "config.json").read_bytes())
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ValidationError, match="pickle"):
        base_model_register("pickled", folder)
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(ValidationError, match="safetensors"):
        base_model_register("pickled", folder)
    assert not BaseModel.objects.filter(identifier="pickled").exists()


def test_register_again_keeps_or_replaces_the_revision(db, tiny_base, tmp_path):
    first = base_model_register("m", tiny_base)
    assert base_model_register("m", tiny_base).commit == first.commit
    folder = tmp_path / "m"
    folder.mkdir()
    for p in tiny_base.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "generation_config.json").write_text("{}")
    second = base_model_register("m", folder)
    assert second.commit != first.commit
    assert second.files.get(filename="generation_config.json").blob.size == 2


def test_command_imports_from_an_upstream_hub(hub, tiny_llama, capsys):
    call_command("base_model_register", "copy/tiny", "--from-hub", "lorahub-tiny-llama",
                 "--endpoint", hub)  # fmt: skip
    copy = BaseModel.objects.get(identifier="copy/tiny")
    assert copy.commit == tiny_llama.commit
    assert copy.source == f"{hub} lorahub-tiny-llama@{tiny_llama.commit}"


def test_command_says_when_the_upstream_is_unreachable(db):
    dead = "http://127.0.0.1:8219"  # nothing listens there
    with pytest.raises(CommandError, match="Could not reach"):
        call_command("base_model_register", "x", "--from-hub", "a/b", "--endpoint", dead)
    assert not BaseModel.objects.filter(identifier="x").exists()


def test_admin_action_registers_a_folder(db, client, tiny_base, settings, tmp_path):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    settings.MEDIA_ROOT = tmp_path
    ready = BaseModel.objects.create(identifier="org/ready", local_path=str(tiny_base))
    empty = BaseModel.objects.create(identifier="org/empty", local_path=str(tmp_path))
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        reverse("admin:hub_basemodel_changelist"),
        {"action": "register_files", "_selected_action": [ready.pk, empty.pk], "index": 0},
        follow=True,
    )
    text = response.content.decode()
    assert "Base model org/ready: files registered." in text and "has no config.json" in text
    ready.refresh_from_db()
    empty.refresh_from_db()
    assert ready.commit and ready.files.filter(filename="model.safetensors").exists()
    assert not empty.commit
