"""Publishing through the real client: each commit becomes a catalog version."""

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RepositoryNotFoundError

from hub.models import Adapter, AdapterVersion, Blob


def test_create_upload_change_delete(api, alice_write, adapter_dir, adapter_dir_b, tmp_path):
    hf = api(alice_write)
    url = hf.create_repo("my-lora")
    assert url.repo_id == "alice/my-lora"
    assert hf.model_info("alice/my-lora").siblings == []
    assert hf.create_repo("my-lora", exist_ok=True).repo_id == "alice/my-lora"
    with pytest.raises(HfHubHTTPError) as info:
        hf.create_repo("my-lora")
    assert info.value.response.status_code == 409

    first = hf.upload_folder(repo_id="alice/my-lora", folder_path=adapter_dir, commit_message="v1")
    adapter = Adapter.objects.get(owner__username="alice", name="my-lora")
    assert adapter.current_version.commit == first.oid
    assert adapter.current_version.message == "v1"
    assert hf.model_info("alice/my-lora").sha == first.oid

    card = b"---\nbase_model: lorahub-test/tiny-llama\nlibrary_name: peft\n---\n# My LoRA\n"
    second = hf.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id="alice/my-lora")
    adapter.refresh_from_db()
    assert adapter.current_version.number == 2 and adapter.current_version.commit == second.oid
    assert adapter.description == "# My LoRA"
    # The weights are carried over from the first version, not uploaded again.
    files = dict(adapter.current_version.files.values_list("filename", "blob_id"))
    assert files == dict(
        AdapterVersion.objects.get(commit=first.oid).files.values_list("filename", "blob_id")
    ) | {"README.md": files["README.md"]}

    third = hf.delete_file("README.md", repo_id="alice/my-lora")
    assert sorted(hf.list_repo_files("alice/my-lora")) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    commits = hf.list_repo_commits("alice/my-lora")
    assert [c.commit_id for c in commits] == [third.oid, second.oid, first.oid]

    hf.delete_repo("alice/my-lora")
    assert not Adapter.objects.filter(name="my-lora").exists()
    with pytest.raises(RepositoryNotFoundError):
        hf.model_info("alice/my-lora")


def test_large_files_go_through_lfs(api, alice_write, adapter_dir, settings, monkeypatch):
    """Above the threshold files take the LFS batch API (basic transfer, signed PUT)."""
    from huggingface_hub import constants

    settings.LORAHUB_API_LFS_THRESHOLD = 1000
    # hf_xet is installed: without this the client would upload large files with Xet
    # (tests/hfapi/test_xet.py); this test is about the LFS batch API.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    hf = api(alice_write)
    hf.create_repo("big-lora", private=True)
    commit = hf.upload_folder(repo_id="alice/big-lora", folder_path=adapter_dir)
    version = AdapterVersion.objects.get(commit=commit.oid)
    assert version.adapter.private is True
    weights = (adapter_dir / "adapter_model.safetensors").read_bytes()
    blob = version.files.get(filename="adapter_model.safetensors").blob
    assert blob.size == len(weights) > 1000
    from django.core.files.storage import default_storage

    # Staged LFS objects are dropped once committed.
    assert not default_storage.exists(f"hfapi-lfs/{version.adapter.owner_id}/{blob.sha256}")
    # Unchanged LFS files are skipped by the client: re-uploading makes no new version.
    again = hf.upload_folder(repo_id="alice/big-lora", folder_path=adapter_dir)
    assert again.oid == commit.oid and version.adapter.versions.count() == 1


def test_hostile_commits_are_refused_and_change_nothing(api, alice_write, sql_lora, tmp_path):
    hf = api(alice_write)
    head = sql_lora.current_version.commit
    blobs = Blob.objects.count()
    with pytest.raises(BadRequestError) as info:
        hf.upload_file(
            path_or_fileobj=b"\x80\x04\x95 pickle",
            path_in_repo="adapter_model.bin",
            repo_id="alice/sql-lora",
        )
    assert "pickle" in str(info.value)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(BadRequestError) as info:
        hf.upload_folder(repo_id="alice/sql-lora", folder_path=bad)
    assert "adapter_model.safetensors" in str(info.value)
    with pytest.raises(BadRequestError):
        hf.upload_file(path_or_fileobj=b"{}", path_in_repo="sub/x.json", repo_id="alice/sql-lora")
    # The client refuses "../" paths itself; the server refuses them too.
    import httpx2

    raw = b'{"key":"header","value":{"summary":"x"}}\n' + (
        b'{"key":"file","value":{"path":"../../etc/x","content":"eA==","encoding":"base64"}}\n'
    )
    response = httpx2.post(
        f"{hf.endpoint}/api/models/alice/sql-lora/commit/main",
        content=raw,
        headers={"Authorization": f"Bearer {alice_write}"},
    )
    assert response.status_code == 400 and "../../etc/x" in response.json()["error"]
    sql_lora.refresh_from_db()
    assert sql_lora.current_version.commit == head and sql_lora.versions.count() == 1
    assert Blob.objects.count() == blobs


def test_writes_need_the_owners_write_token(api, sql_lora, alice_read, bob_write, adapter_dir):
    op = [CommitOperationAdd("README.md", b"# hi\n")]
    with pytest.raises(HfHubHTTPError) as info:
        api(alice_read).create_commit("alice/sql-lora", op, commit_message="x")
    assert info.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as info:
        api(bob_write).create_commit("alice/sql-lora", op, commit_message="x")
    assert info.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError):
        api(bob_write).delete_repo("alice/sql-lora")
    assert Adapter.objects.filter(pk=sql_lora.pk).exists()
    assert sql_lora.versions.count() == 1


def test_session_cookie_never_authorises_an_api_write(sql_lora, alice):
    """The API is CSRF-exempt only because it ignores cookies: a logged-in browser session
    (what a cross-site form would ride on) gets no write access."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    body = b'{"key":"header","value":{"summary":"x"}}\n'
    response = browser.post(
        "/api/models/alice/sql-lora/commit/main", body, content_type="application/x-ndjson"
    )
    assert response.status_code == 401
    response = browser.post("/api/repos/create", {"name": "x"}, content_type="application/json")
    assert response.status_code == 401
    assert sql_lora.versions.count() == 1
    assert not Adapter.objects.filter(name="x").exists()


def test_oversized_inline_file_is_refused(hub, alice_write, sql_lora, settings):
    import base64

    import httpx2

    settings.LORAHUB_API_LFS_THRESHOLD = 1000
    content = base64.b64encode(b"x" * 200_000).decode()
    raw = (
        b'{"key":"header","value":{"summary":"big"}}\n'
        + b'{"key":"file","value":{"path":"README.md","content":"'
        + content.encode()
        + b'","encoding":"base64"}}\n'
    )
    response = httpx2.post(
        f"{hub}/api/models/alice/sql-lora/commit/main",
        content=raw,
        headers={"Authorization": f"Bearer {alice_write}"},
    )
    assert response.status_code == 413 and "Git LFS" in response.json()["error"]
    assert sql_lora.versions.count() == 1


def test_stale_staged_lfs_objects_are_cleared(alice, settings, tmp_path):
    import os
    import time

    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from hfapi import staging

    settings.MEDIA_ROOT = tmp_path
    data = b"staged bytes"
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    staging.stage_stream(alice.pk, sha, len(data), [data])
    assert staging.is_staged(alice.pk, sha, len(data))
    call_command("hfapi_clear_staging", hours=1)
    assert staging.is_staged(alice.pk, sha, len(data))  # fresh: kept
    old = time.time() - 2 * 3600
    os.utime(default_storage.path(staging.staged_name(alice.pk, sha)), (old, old))
    call_command("hfapi_clear_staging", hours=1)
    assert not staging.is_staged(alice.pk, sha, len(data))
