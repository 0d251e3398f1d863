"""Protections that once had no test able to notice their removal; each test here was
checked by deleting the protection it names and watching it fail."""

import hashlib
import io
import stat
import time
import zipfile
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.urls import reverse

from composer.models import Job
from hfapi import staging
from hfapi.views_lfs import TICKET_MAX_AGE, _ticket
from hub.services.zips import _extract_one

CONTENT = b"lfs object content " * 100
OID = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def bobs_finished_job(bob):
    """A succeeded job WITH a result: the owner check, not a missing file, must say 404."""
    job = Job.objects.create(owner=bob, kind=Job.Kind.LEGO, status=Job.Status.SUCCEEDED)
    job.result_file.save("result.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18))
    return job


def test_job_result_download_is_the_owners_only(client, alice, bob, bobs_finished_job):
    url = reverse("composer:download", args=[bobs_finished_job.pk])
    client.force_login(bob)
    assert client.get(url).status_code == 200  # the result exists and its owner gets it
    client.force_login(alice)
    assert client.get(url).status_code == 404


def _put(client, ticket: str, body: bytes):
    return client.generic("PUT", reverse("hfapi:lfs_upload", args=[ticket]), body)


def test_lfs_upload_checks_sha256_and_size(client, alice):
    response = _put(client, _ticket(alice.pk, OID, len(CONTENT)), b"X" + CONTENT[1:])
    assert response.status_code == 400 and "sha256" in response.json()["error"]
    response = _put(client, _ticket(alice.pk, OID, len(CONTENT)), CONTENT + b"more")
    assert response.status_code == 400
    assert not staging.is_staged(alice.pk, OID, len(CONTENT))
    assert _put(client, _ticket(alice.pk, OID, len(CONTENT)), CONTENT).status_code == 200
    assert staging.is_staged(alice.pk, OID, len(CONTENT))


def test_lfs_upload_link_signature_and_expiry(client, alice):
    ticket = _ticket(alice.pk, OID, len(CONTENT))
    forged = ticket[:-3] + ("AAA" if not ticket.endswith("AAA") else "BBB")
    response = _put(client, forged, CONTENT)
    assert response.status_code == 403 and "invalid or has expired" in response.json()["error"]
    with mock.patch("time.time", return_value=time.time() - TICKET_MAX_AGE - 60):
        old = _ticket(alice.pk, OID, len(CONTENT))
    response = _put(client, old, CONTENT)
    assert response.status_code == 403 and "invalid or has expired" in response.json()["error"]
    assert not staging.is_staged(alice.pk, OID, len(CONTENT))


def test_zip_entry_that_is_a_symbolic_link_is_refused(alice_client, adapter_dirs):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            zf.writestr(f"a/{name}", (adapter_dirs["r4"] / name).read_bytes())
        link = zipfile.ZipInfo("a/README.md")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("a.zip", buffer.getvalue())
    response = alice_client.post(reverse("hub:adapter_new"), {"name": "linked", "files": [upload]})
    assert response.status_code == 400
    assert "is a symbolic link; refused" in response.content.decode()


def test_zip_extraction_stops_at_the_cap(tmp_path):
    """zipfile stops an entry at its declared size; the extractor's own cap stops it at the
    per-file limit even when the declared size is past it (declared sizes are checked
    first, so this is the last line)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big", b"\0" * (8 * 1024 * 1024))
    with zipfile.ZipFile(buffer) as zf:
        with pytest.raises(ValidationError, match="expands beyond"):
            _extract_one(zf, zf.getinfo("big"), tmp_path / "big", 1024 * 1024)
    assert (tmp_path / "big").stat().st_size <= 1024 * 1024
