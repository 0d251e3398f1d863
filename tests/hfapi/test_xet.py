"""Large files through Xet with the client as a default install has it (no env variable)."""

import os

import pytest

from hub.models import AdapterVersion


@pytest.fixture
def default_client(monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.utils._runtime import is_xet_available

    assert "HF_HUB_DISABLE_XET" not in os.environ
    assert not constants.HF_HUB_DISABLE_XET and is_xet_available()


def test_small_lfs_file_through_xet(api, alice_write, adapter_dir, settings, default_client):
    settings.LORAHUB_API_LFS_THRESHOLD = 1000
    hf = api(alice_write)
    hf.create_repo("xet-lora")
    commit = hf.upload_folder(repo_id="alice/xet-lora", folder_path=adapter_dir)
    version = AdapterVersion.objects.get(commit=commit.oid)
    weights = (adapter_dir / "adapter_model.safetensors").read_bytes()
    blob = version.files.get(filename="adapter_model.safetensors").blob
    assert blob.size == len(weights)
