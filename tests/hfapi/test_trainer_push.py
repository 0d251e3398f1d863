"""What a training run pushes: Trainer(push_to_hub=True) with its checkpoint pushes and
tokenizer.push_to_hub, through the real clients; the repository's bounds and the marking
of pickles (detected by their first bytes, never unpickled)."""

import io
import subprocess
import sys

import pytest
from django.core.exceptions import ValidationError

from hub.models import Adapter
from hub.services.adapters import adapter_create
from tests.hfapi.conftest import client_env, files_of

TRAIN = """
import sys
import torch
from peft import LoraConfig, get_peft_model
from transformers import Trainer, TrainingArguments
from composer.engine.base_models import load_base_model
from composer.engine.toy import byte_tokenizer

base_dir, repo_id, out_dir, other_repo = sys.argv[1:]
base = load_base_model(base_dir)
base.name_or_path = "lorahub-test/tiny-llama"  # what the adapter's config will name
model = get_peft_model(
    base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
)
tok = byte_tokenizer()
ids = torch.tensor(tok("walker=reklaw")["input_ids"])
data = [{"input_ids": ids, "labels": ids} for _ in range(8)]
args = TrainingArguments(
    output_dir=out_dir, max_steps=2, save_steps=1, per_device_train_batch_size=2,
    report_to="none", use_cpu=True, push_to_hub=True, hub_model_id=repo_id,
    hub_strategy="checkpoint", hub_always_push=True, logging_steps=1,
)
trainer = Trainer(model=model, args=args, train_dataset=data, processing_class=tok)
trainer.train()
trainer.push_to_hub()
tok.push_to_hub(other_repo)
print("pushed", repo_id)
"""


@pytest.mark.slow
def test_trainer_and_tokenizer_push(hub, api, alice_write, sql_lora, tiny_base, tmp_path, client):
    result = subprocess.run(
        [sys.executable, "-c", TRAIN, str(tiny_base), "alice/trained", str(tmp_path / "out")]
        + ["alice/sql-lora"],
        env=client_env(hub, alice_write, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    hf = api(alice_write)
    files = set(hf.list_repo_files("alice/trained"))
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= files
    assert {"tokenizer_config.json", "training_args.bin"} <= files
    assert "last-checkpoint/adapter_model.safetensors" in files  # a checkpoint push
    assert "last-checkpoint/optimizer.pt" in files
    assert "tokenizer_config.json" in hf.list_repo_files("alice/sql-lora")

    # The pickle is offered for download and marked, in the API and on the page.
    info = hf.model_info("alice/trained")
    marked = {f["path"] for f in info.security_repo_status["filesWithIssues"]}
    assert {"training_args.bin", "last-checkpoint/optimizer.pt"} <= marked
    assert "adapter_model.safetensors" not in marked
    tree = {f.path: f for f in hf.list_repo_tree("alice/trained", recursive=True)}
    assert tree["training_args.bin"].security["status"] == "caution"
    assert tree["adapter_config.json"].security is None
    page = client.get("/alice/trained").content.decode()
    assert page.count("never loaded by LoRA Hub") >= 2  # training_args.bin, optimizer.pt...
    assert hf.hf_hub_download("alice/trained", "training_args.bin", cache_dir=tmp_path / "c")


def with_files(adapter_dir, extra: dict[str, bytes]) -> dict:
    return files_of(adapter_dir) | {name: io.BytesIO(data) for name, data in extra.items()}


def refused(alice, files) -> str:
    with pytest.raises(ValidationError) as info:
        adapter_create(owner=alice, name="run", files=files)
    assert not Adapter.objects.filter(name="run").exists()
    return " ".join(info.value.messages)


def test_a_pickle_under_another_name_is_refused(alice, adapter_dir):
    # protocol 4 pickle and torch.save's zip, named like a tokenizer file
    for head in (b"\x80\x04\x95\x00", b"PK\x03\x04rest"):
        message = refused(alice, with_files(adapter_dir, {"tokenizer.json": head}))
        assert "is a pickle" in message
    # The Trainer's own pickles are kept, under their names.
    files = with_files(adapter_dir, {"training_args.bin": b"PK\x03\x04x", "vocab.json": b"{}"})
    adapter = adapter_create(owner=alice, name="run", files=files)
    assert set(adapter.current_version.files.values_list("filename", flat=True)) >= {
        "training_args.bin",
        "vocab.json",
    }


@pytest.mark.parametrize(
    "path, message",
    [
        ("model.safetensors", "full model"),
        ("pytorch_model.bin", "full model"),
        ("adapter_model.bin", "pickle file"),
        ("checkpoint-1/../x.json", "not an accepted file path"),
        ("checkpoint-1/notes.exe", "Unexpected file"),
        ("other/tokenizer.json", "Unexpected file"),
        ("runs/a/b/c/d/events.out.tfevents.1", "Unexpected file"),
    ],
)
def test_files_a_run_does_not_write_are_refused(alice, adapter_dir, path, message):
    assert message in refused(alice, with_files(adapter_dir, {path: b"{}"}))


def test_a_repository_is_bounded(alice, adapter_dir, settings):
    extra = {f"checkpoint-{i}/trainer_state.json": b"{}" for i in range(3)}
    settings.LORAHUB_MAX_REPO_FILES = 4  # the adapter's two files and two more
    assert "at most 4" in refused(alice, with_files(adapter_dir, extra))
    settings.LORAHUB_MAX_REPO_FILES = 200
    size = sum(p.stat().st_size for p in files_of(adapter_dir).values())
    settings.LORAHUB_MAX_REPO_BYTES = size + 10
    big = {"runs/x/events.out.tfevents.1": b"\x00" * 11}
    assert "holds at most" in refused(alice, with_files(adapter_dir, big))


def test_a_pickle_is_marked_in_the_api_and_on_the_page(api, alice, adapter_dir, client, tmp_path):
    files = with_files(adapter_dir, {"training_args.bin": b"PK\x03\x04x", "vocab.json": b"{}"})
    adapter_create(owner=alice, name="run", files=files)
    hf = api()
    status = hf.model_info("alice/run").security_repo_status
    assert [f["path"] for f in status["filesWithIssues"]] == ["training_args.bin"]
    tree = {f.path: f for f in hf.list_repo_tree("alice/run")}
    assert tree["training_args.bin"].security["status"] == "caution"
    assert tree["vocab.json"].security is None
    page = client.get("/alice/run").content.decode()
    assert page.count("never loaded by LoRA Hub") == 1
    path = hf.hf_hub_download("alice/run", "training_args.bin", cache_dir=tmp_path)
    assert open(path, "rb").read() == b"PK\x03\x04x"  # offered as stored


def test_jobs_never_get_the_pickles(alice, adapter_dir):
    from composer.inputs import flat_files

    extra = {"training_args.bin": b"PK\x03\x04x", "last-checkpoint/optimizer.pt": b"PK\x03\x04"}
    adapter = adapter_create(owner=alice, name="run", files=with_files(adapter_dir, extra))
    names = {name for name, _ in flat_files(adapter.current_version)}
    assert names == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
