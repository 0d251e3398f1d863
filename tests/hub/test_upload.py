"""Uploading in the browser's way (multipart POST) and getting the same adapter back."""

import io
import zipfile

import pytest
import torch
from django.urls import reverse

from hub.models import Adapter, AdapterFile, Blob
from tests.hub.conftest import assert_swept_after_the_grace, folder_zip, uploads


def post_new(client, adapter_dir, name="summarizer", **extra):
    data = {"name": name, "files": uploads(adapter_dir), "license": "mit", "tags": "news, t5"}
    data.update(extra)
    return client.post(reverse("hub:adapter_new"), data)


def download(client, url) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, url
    return b"".join(response.streaming_content)


def test_upload_reads_metadata_from_files(alice_client, adapter_dirs, media_root):
    response = post_new(alice_client, adapter_dirs["r8"], task="summarization")
    assert response.status_code == 302
    assert response["Location"] == "/alice/summarizer"
    adapter = Adapter.objects.get(owner__username="alice", name="summarizer")
    version = adapter.current_version
    assert (version.number, version.peft_type, version.r, version.lora_alpha) == (1, "LORA", 8, 16)
    assert sorted(version.target_modules) == ["k", "o", "q", "v"]
    assert version.dtype == "float32"
    assert adapter.base_model.identifier == "lorahub/tiny-t5"
    assert adapter.task == "summarization"
    assert sorted(t.name for t in adapter.tags.all()) == ["news", "t5"]
    assert len(version.commit) == 40 and int(version.commit, 16) >= 0
    # Parameter count: T5 with 2 encoder + 2 decoder blocks; q,k,v,o in self-attention and
    # (decoder) cross-attention = 4 * (2 + 2 * 2) = 24 modules, each A [8, 64] + B [64, 8].
    assert version.param_count == 24 * (8 * 64 + 64 * 8)
    # Files are content-addressed: sizes and sha256 from the bytes.
    import hashlib

    weights = (adapter_dirs["r8"] / "adapter_model.safetensors").read_bytes()
    stored = version.files.get(filename="adapter_model.safetensors")
    assert stored.blob.sha256 == hashlib.sha256(weights).hexdigest()
    assert stored.blob.size == len(weights)
    assert (media_root / stored.blob.storage_name).read_bytes() == weights
    # The README became the model card (front matter stripped).
    assert adapter.description.startswith("# Model Card")
    page = alice_client.get(adapter.get_absolute_url()).content.decode()
    assert stored.blob.sha256 in page and "q_proj" not in page and "<code>k</code>" in page


@pytest.mark.slow
def test_downloaded_files_and_zip_load_with_peft(alice_client, adapter_dirs, tiny_t5, tmp_path):
    from peft import PeftModel

    from composer.engine.base_models import load_base_model

    assert post_new(alice_client, adapter_dirs["r4"]).status_code == 302
    # Single files at main.
    single = tmp_path / "single"
    single.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        url = reverse("hub:adapter_resolve", args=["alice", "summarizer", "main", name])
        (single / name).write_bytes(download(alice_client, url))
    # The whole folder as a zip.
    url = reverse("hub:adapter_archive", args=["alice", "summarizer", "main"])
    with zipfile.ZipFile(io.BytesIO(download(alice_client, url))) as zf:
        assert sorted(zf.namelist()) == [
            "summarizer/README.md",
            "summarizer/adapter_config.json",
            "summarizer/adapter_model.safetensors",
        ]
        zf.extractall(tmp_path / "unzipped")

    reference = PeftModel.from_pretrained(load_base_model(tiny_t5), adapter_dirs["r4"])
    expected = {k: v for k, v in reference.state_dict().items() if "lora_" in k}
    for folder in (single, tmp_path / "unzipped" / "summarizer"):
        model = PeftModel.from_pretrained(load_base_model(tiny_t5), folder)
        got = {k: v for k, v in model.state_dict().items() if "lora_" in k}
        assert got.keys() == expected.keys() and len(got) == 24
        assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_zip_upload_with_folder(alice_client, adapter_dirs):
    archive = io.BytesIO(folder_zip(adapter_dirs["r4"]))
    archive.name = "my-adapter.zip"
    response = alice_client.post(reverse("hub:adapter_new"), {"name": "zipped", "files": archive})
    assert response.status_code == 302
    version = Adapter.objects.get(name="zipped").current_version
    assert sorted(version.files.values_list("filename", flat=True)) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert version.r == 4


def test_reupload_adds_version_and_old_stays_downloadable(alice_client, adapter_dirs):
    post_new(alice_client, adapter_dirs["r4"])
    v1_weights = (adapter_dirs["r4"] / "adapter_model.safetensors").read_bytes()
    url = reverse("hub:adapter_new_version", args=["alice", "summarizer"])
    response = alice_client.post(
        url, {"files": uploads(adapter_dirs["r8"]), "message": "more capacity"}
    )
    assert response.status_code == 302
    adapter = Adapter.objects.get(name="summarizer")
    v2, v1 = adapter.versions.all()
    assert adapter.current_version == v2 and (v2.number, v2.r, v1.r) == (2, 8, 4)
    assert v2.message == "more capacity" and v1.commit != v2.commit
    for revision in (v1.commit, v1.commit[:7], "v1"):
        got = download(
            alice_client,
            reverse(
                "hub:adapter_resolve",
                args=["alice", "summarizer", revision, "adapter_model.safetensors"],
            ),
        )
        assert got == v1_weights
    main = download(
        alice_client,
        reverse(
            "hub:adapter_resolve", args=["alice", "summarizer", "main", "adapter_model.safetensors"]
        ),
    )
    assert main == (adapter_dirs["r8"] / "adapter_model.safetensors").read_bytes()
    page = alice_client.get(adapter.get_absolute_url()).content.decode()
    assert "more capacity" in page and v1.short_commit in page and v2.short_commit in page
    old_page = alice_client.get(reverse("hub:adapter_revision", args=["alice", "summarizer", "v1"]))
    assert "You are looking at version 1" in old_page.content.decode()
    # Identical files again: refused, no version added.
    response = alice_client.post(url, {"files": uploads(adapter_dirs["r8"])})
    assert response.status_code == 400
    assert "identical to the current version (v2)" in response.content.decode()
    assert adapter.versions.count() == 2


def test_same_content_is_stored_once(alice_client, bob, adapter_dirs, media_root):
    post_new(alice_client, adapter_dirs["r4"], name="one")
    post_new(alice_client, adapter_dirs["r4"], name="two")
    assert AdapterFile.objects.count() == 6
    assert Blob.objects.count() == 3
    stored = [p for p in media_root.rglob("*") if p.is_file()]
    assert len(stored) == 3


def test_downloads_are_counted(client, alice, make_adapter):
    adapter = make_adapter(alice, "counted")
    owner = ["alice", "counted"]
    download(client, reverse("hub:adapter_archive", args=[*owner, "main"]))
    download(
        client, reverse("hub:adapter_resolve", args=[*owner, "main", "adapter_model.safetensors"])
    )
    download(client, reverse("hub:adapter_resolve", args=[*owner, "main", "adapter_config.json"]))
    adapter.refresh_from_db()
    assert adapter.downloads == 2  # the weights and the zip; a config fetch is not a download


def test_unknown_revision_and_file_are_404(client, alice, make_adapter):
    make_adapter(alice, "a")
    for revision, name in (("v9", "adapter_config.json"), ("0" * 40, "adapter_config.json"),
                           ("main", "secrets.txt"), ("main", "../../settings.py")):  # fmt: skip
        url = f"/alice/a/resolve/{revision}/{name}"
        assert client.get(url).status_code == 404, url


def test_owner_edits_and_deletes(alice_client, alice, make_adapter, media_root):
    adapter = make_adapter(alice, "editable", tags=["old"])
    edit = reverse("hub:adapter_edit", args=["alice", "editable"])
    refused = alice_client.post(edit, {"license": "not-a-license", "tags": "fresh"})
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    assert [t.name for t in adapter.tags.all()] == ["old"]
    response = alice_client.post(
        edit,
        {"description": "# New card", "task": "translation", "license": "mit", "tags": "fresh"},
    )
    assert response.status_code == 302
    adapter.refresh_from_db()
    assert (adapter.description, adapter.task, adapter.license) == (
        "# New card",
        "translation",
        "mit",
    )
    assert [t.name for t in adapter.tags.all()] == ["fresh"]
    # Files are only removed once nothing references them.
    make_adapter(alice, "sharing-blobs")
    delete = reverse("hub:adapter_delete", args=["alice", "editable"])
    refused = alice_client.post(delete, {"confirm": "wrong"})
    assert refused.status_code == 400 and "name to confirm" in refused.content.decode()
    assert alice_client.post(delete, {"confirm": "editable"}).status_code == 302
    assert not Adapter.objects.filter(name="editable").exists()
    # Still used by sharing-blobs: its two files and the README.md written from its fields.
    assert Blob.objects.count() == 3
    delete = reverse("hub:adapter_delete", args=["alice", "sharing-blobs"])
    assert alice_client.post(delete, {"confirm": "sharing-blobs"}).status_code == 302
    assert Blob.objects.count() == 0
    # The two files, sharing-blobs' README.md and editable's two (created, then edited).
    assert_swept_after_the_grace(media_root, 5)


def test_new_version_for_another_base_model_is_refused(
    alice_client, alice, make_adapter, adapter_dirs
):
    import json

    from django.core.files.uploadedfile import SimpleUploadedFile

    make_adapter(alice, "pinned")
    config = json.loads((adapter_dirs["r4"] / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "google/flan-t5-large"
    files = [
        SimpleUploadedFile("adapter_config.json", json.dumps(config).encode()),
        SimpleUploadedFile(
            "adapter_model.safetensors",
            (adapter_dirs["r4"] / "adapter_model.safetensors").read_bytes(),
        ),
    ]
    url = reverse("hub:adapter_new_version", args=["alice", "pinned"])
    response = alice_client.post(url, {"files": files})
    assert response.status_code == 400
    assert "These files are for google/flan-t5-large" in response.content.decode()
    assert Adapter.objects.get(name="pinned").versions.count() == 1


def test_base_model_from_form_when_config_names_a_path(alice_client, adapter_dirs):
    import json

    from django.core.files.uploadedfile import SimpleUploadedFile

    config = json.loads((adapter_dirs["r4"] / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/home/me/checkpoints/t5"
    weights = (adapter_dirs["r4"] / "adapter_model.safetensors").read_bytes()

    def files():
        return [
            SimpleUploadedFile("adapter_config.json", json.dumps(config).encode()),
            SimpleUploadedFile("adapter_model.safetensors", weights),
        ]

    response = alice_client.post(reverse("hub:adapter_new"), {"name": "local", "files": files()})
    assert response.status_code == 400
    assert "enter the base model" in response.content.decode()
    data = {"name": "local", "files": files(), "base_model": "google/flan-t5-small"}
    assert alice_client.post(reverse("hub:adapter_new"), data).status_code == 302
    assert Adapter.objects.get(name="local").base_model.identifier == "google/flan-t5-small"


def test_blob_race_keeps_one_copy(alice, make_adapter, adapter_dirs, media_root, monkeypatch):
    """Two uploads of the same new content at once: the second finds the row at insert time,
    deletes its own copy and uses the first."""
    from hub.services.storage import blob_store

    make_adapter(alice, "first")
    before = sorted(p for p in media_root.rglob("*") if p.is_file())
    real_filter = Blob.objects.filter
    monkeypatch.setattr(Blob.objects, "filter", lambda *a, **k: real_filter(*a, **k).none())
    blob, written = blob_store(adapter_dirs["r4"] / "adapter_model.safetensors")
    monkeypatch.undo()
    assert written is None
    assert blob == Blob.objects.get(storage_name=blob.storage_name)
    assert sorted(p for p in media_root.rglob("*") if p.is_file()) == before


def test_sweep_deletes_files_of_rolled_back_uploads_only(
    alice, bob, make_adapter, adapter_dirs, media_root
):
    """An upload inside a transaction that fails later leaves stored files no row names,
    and their intents (committed before the files were stored): blobs_sweep deletes them
    once past the grace period, and nothing else."""
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from hub.models import StorageEntry

    def stored() -> set[str]:
        files = {str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file()}
        return files - {".lorahub/installation"}

    make_adapter(alice, "kept")
    kept = stored()
    with pytest.raises(RuntimeError), transaction.atomic():
        make_adapter(bob, "rolled-back", key="r8")
        raise RuntimeError("a later step of the same transaction failed")
    orphans = stored() - kept
    assert orphans and not Adapter.objects.filter(name="rolled-back").exists()
    if connection.vendor == "sqlite":  # one writer: the intent went with the rollback
        return  # the files are kept, unknown to the database (tests/jobs/test_sweep.py)
    # Within the grace period (an upload may still be committing): spared.
    call_command("blobs_sweep", stdout=StringIO())
    assert stored() == kept | orphans
    StorageEntry.objects.filter(name__in=orphans).update(since=timezone.now() - timedelta(hours=1))
    out = StringIO()
    call_command("blobs_sweep", "--grace-minutes", "30", stdout=out)
    assert stored() == kept
    assert f"stored: {len(orphans)} deleted" in out.getvalue()
    # What is left still downloads.
    for blob in Blob.objects.all():
        assert (media_root / blob.storage_name).stat().st_size == blob.size
