"""One write accounting for every path that stores bytes, and a storage quota per user.
After the 60-an-hour write limit imports, LFS staging, publishing and card edits still
wrote, and one account could store ~120 GB an hour; API tokens were unlimited."""

import base64
import hashlib
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.urls import reverse

from hfapi import staging, views_lfs
from hfapi.models import RepoReservation, Transfer
from hfapi.tokens import token_create
from hfapi.transfers import transfer_launch
from hfapi.views_lfs import _ticket
from hub.models import Adapter, Blob
from hub.services.quota import storage_used
from tests.hub.conftest import uploads

CONTENT = b"staged lfs object " * 64
OID = hashlib.sha256(CONTENT).hexdigest()


def _files_size(directory) -> int:
    return sum(
        (directory / f).stat().st_size for f in ("adapter_config.json", "adapter_model.safetensors")
    )


@pytest.fixture
def quota_of_one(settings, adapter_dirs):
    """A quota that holds the r4 adapter's files (and the README.md written for them) and
    little more."""
    settings.LORAHUB_USER_QUOTA_BYTES = _files_size(adapter_dirs["r4"]) + 1000
    return settings.LORAHUB_USER_QUOTA_BYTES


def test_a_new_adapter_past_the_quota_is_refused_before_it_is_stored(
    db, alice, make_adapter, quota_of_one
):
    first = make_adapter(alice, "first", "r4")
    stored = sum(f.blob.size for f in first.current_version.files.select_related("blob"))
    assert storage_used(alice) == stored <= quota_of_one
    blobs = Blob.objects.count()
    with pytest.raises(ValidationError) as refused:
        make_adapter(alice, "second", "r8")
    message = " ".join(refused.value.messages)
    assert "storage quota" in message and "you use" in message, message
    assert Blob.objects.count() == blobs and not Adapter.objects.filter(name="second").exists()


def test_staged_objects_count_towards_the_quota(db, alice, make_adapter, quota_of_one):
    staging.stage_stream(alice.pk, OID, len(CONTENT), [CONTENT])
    assert storage_used(alice) == len(CONTENT)
    with pytest.raises(ValidationError, match="storage quota"):
        make_adapter(alice, "first", "r4")


def test_a_full_account_is_refused_uploads_before_the_body_is_read(
    alice_client, alice, make_adapter, adapter_dirs, settings
):
    make_adapter(alice, "first", "r4")
    settings.LORAHUB_USER_QUOTA_BYTES = storage_used(alice)
    files = uploads(adapter_dirs["r8"])
    response = alice_client.post(reverse("hub:adapter_new"), {"name": "more", "files": files})
    assert response.status_code == 413
    assert "storage quota" in response.content.decode()
    assert not Adapter.objects.filter(name="more").exists()


def test_an_api_commit_past_the_quota_stores_nothing(client, alice, adapter_dirs, settings):
    RepoReservation.objects.create(owner=alice, name="api")
    token = token_create(user=alice, name="w", scope="write")[1]
    settings.LORAHUB_USER_QUOTA_BYTES = 1000
    lines = [{"key": "header", "value": {"summary": "first"}}]
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        content = base64.b64encode((adapter_dirs["r4"] / name).read_bytes()).decode()
        lines.append({"key": "file", "value": {"path": name, "content": content}})
    response = client.post(
        "/api/models/alice/api/commit/main",
        "\n".join(json.dumps(line) for line in lines),
        content_type="application/x-ndjson",
        **_bearer(token),
    )
    assert response.status_code == 400 and "storage quota" in response.json()["error"]
    assert not Adapter.objects.exists() and not Blob.objects.exists()


def _bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _batch(client, token: str, objects: list[dict]):
    body = {"operation": "upload", "transfers": ["basic"], "objects": objects}
    return client.post(
        "/alice/big.git/info/lfs/objects/batch",
        json.dumps(body),
        content_type="application/json",
        **_bearer(token),
    )


def test_lfs_staging_is_a_write_within_the_quota(client, alice, settings):
    RepoReservation.objects.create(owner=alice, name="big")
    token = token_create(user=alice, name="w", scope="write")[1]
    settings.LORAHUB_USER_QUOTA_BYTES = 2 * len(CONTENT)
    # Announced sizes past the quota: no upload link.
    response = _batch(client, token, [{"oid": "a" * 64, "size": 3 * len(CONTENT)}])
    assert response.status_code == 413 and "storage quota" in response.json()["error"]
    response = _batch(client, token, [{"oid": OID, "size": len(CONTENT)}])
    assert response.status_code == 200 and "actions" in response.json()["objects"][0]
    # Filled meanwhile (by another upload): the link's upload is refused unstored.
    settings.LORAHUB_USER_QUOTA_BYTES = len(CONTENT) - 1
    upload = reverse("hfapi:lfs_upload", args=[_ticket(alice.pk, OID, len(CONTENT))])
    response = client.generic("PUT", upload, CONTENT)
    assert response.status_code == 413 and not staging.is_staged(alice.pk, OID, len(CONTENT))
    # Past the hourly write limit, no more links.
    settings.LORAHUB_USER_QUOTA_BYTES = 10 * len(CONTENT)
    settings.LORAHUB_WRITES_PER_HOUR = 2  # the two batches above were counted
    assert _batch(client, token, [{"oid": OID, "size": len(CONTENT)}]).status_code == 429


def test_staged_objects_per_user_are_bounded(client, alice, monkeypatch):
    monkeypatch.setattr(views_lfs, "MAX_STAGED_OBJECTS", 1)
    RepoReservation.objects.create(owner=alice, name="big")
    token = token_create(user=alice, name="w", scope="write")[1]
    staging.stage_stream(alice.pk, OID, len(CONTENT), [CONTENT])
    response = _batch(client, token, [{"oid": "b" * 64, "size": 10}])
    assert response.status_code == 400 and "commit first" in response.json()["error"]
    # What is staged already takes no more room: the client is told to skip it.
    assert _batch(client, token, [{"oid": OID, "size": len(CONTENT)}]).status_code == 200


def test_a_used_upload_link_does_not_write_again(client, alice):
    upload = reverse("hfapi:lfs_upload", args=[_ticket(alice.pk, OID, len(CONTENT))])
    assert client.generic("PUT", upload, CONTENT).status_code == 200
    name = staging.staged_name(alice.pk, OID)
    written = default_storage.get_modified_time(name)
    assert client.generic("PUT", upload, CONTENT).status_code == 200
    assert default_storage.get_modified_time(name) == written


def test_imports_are_writes_and_reserve_room(db, alice, settings):
    settings.LORAHUB_MAX_FILE_BYTES = 1000
    settings.LORAHUB_USER_QUOTA_BYTES = 1000
    transfer_launch(user=alice, kind=Transfer.Kind.IMPORT, repo_id="someone/a", name="a")
    # The first may bring up to 1000 bytes: the quota has no room for a second.
    with pytest.raises(ValidationError, match="imports in progress"):
        transfer_launch(user=alice, kind=Transfer.Kind.IMPORT, repo_id="someone/b", name="b")
    Transfer.objects.update(status=Transfer.Status.FAILED)
    settings.LORAHUB_WRITES_PER_HOUR = 1  # the first launch was counted, not the refused
    with pytest.raises(ValidationError, match="the limit"):
        transfer_launch(user=alice, kind=Transfer.Kind.IMPORT, repo_id="someone/c", name="c")
    assert Transfer.objects.count() == 1


def test_card_edits_are_writes(alice_client, alice, make_adapter, settings):
    adapter = make_adapter(alice, "edited", "r4")
    settings.LORAHUB_WRITES_PER_HOUR = 1
    url = reverse("hub:adapter_edit", args=["alice", "edited"])
    data = {"description": "# One", "task": "", "license": "", "tags": ""}
    assert alice_client.post(url, data).status_code == 302
    response = alice_client.post(url, {**data, "description": "# Two"})
    assert response.status_code == 429 and "the limit" in response.content.decode()
    adapter.refresh_from_db()
    assert adapter.description == "# One"


def test_tokens_per_user_are_limited(alice_client, alice, settings):
    settings.LORAHUB_MAX_TOKENS_PER_USER = 2
    url = reverse("hfapi:tokens")
    statuses = [
        alice_client.post(url, {"name": f"t{i}", "scope": "read"}).status_code for i in range(3)
    ]
    assert statuses == [200, 200, 400]
    assert alice.access_tokens.count() == 2
    with pytest.raises(ValidationError, match="revoke one"):
        token_create(user=alice, name="t", scope="read")
