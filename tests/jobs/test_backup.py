"""`manage.py backup DIR` and `manage.py restore DIR`: the database, then every stored file
it names; restored into an empty installation, every file downloads byte-identically."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from composer.models import Job
from hub.models import Adapter, Blob, Installation
from hub.services.adapters import adapter_delete
from hub.services.storage_sweep import MARKER
from tests.jobs.test_sweep import attempt_result, stored

pytestmark = pytest.mark.django_db(transaction=True)


def downloads(client, alice) -> dict[str, bytes]:
    """Every file of the site through its download views: each adapter's files, alice's
    job results."""
    got = {}
    for adapter in Adapter.objects.select_related("current_version"):
        for file in adapter.current_version.files.all():
            url = f"/{adapter.full_name}/resolve/main/{file.filename}"
            response = client.get(url)
            assert response.status_code == 200, url
            got[url] = b"".join(response.streaming_content)
    client.force_login(alice)
    for job in Job.objects.exclude(result_file=""):
        url = reverse("composer:download", args=[job.pk])
        response = client.get(url)
        assert response.status_code == 200, url
        got[url] = b"".join(response.streaming_content)
    client.logout()
    return got


def run(command: str, folder: Path) -> str:
    out = StringIO()
    call_command(command, str(folder), stdout=out)
    return out.getvalue()


def test_a_backup_restores_into_an_empty_installation(client, alice, catalog, tmp_path, settings):
    attempt_result(Job.objects.create(owner=alice, kind=Job.Kind.LEGO), tmp_path)
    adapter_delete(adapter=catalog["t5-qk"])  # its file stays for the grace: not backed up
    call_command("blobs_sweep", stdout=StringIO())  # the installation's id, in its store
    uid = Installation.objects.get().uid
    before = downloads(client, alice)
    assert len(before) == 13  # 4 adapters' 3 files (README.md written from the fields), a result

    folder = tmp_path / "backup"
    text = run("backup", folder)
    # 6 blobs (T5 configs are one), 2 READMEs (one per base model), a result
    assert "the database and 9 stored files" in text
    with pytest.raises(CommandError, match="not empty"):
        run("backup", folder)
    with pytest.raises(CommandError, match=r"not empty: its database holds rows"):
        run("restore", folder)

    # An empty installation: a new database (migrated, no rows) and an empty store.
    call_command("flush", "--noinput")
    settings.MEDIA_ROOT = tmp_path / "new-media"
    assert not Adapter.objects.exists() and not stored()
    text = run("restore", folder)
    assert "checked the sha256 of 9 stored files" in text
    assert downloads(client, alice) == before
    assert Installation.objects.get().uid == uid
    with default_storage.open(MARKER) as fh:
        assert fh.read().decode() == uid
    # The restored installation sweeps its own store; restoring again is refused.
    out = StringIO()
    call_command("blobs_sweep", "--grace-minutes", "-1", stdout=out)
    assert "stored: 0 deleted" in out.getvalue()
    assert downloads(client, alice) == before
    with pytest.raises(CommandError, match="not empty"):
        run("restore", folder)


def test_a_lost_database_is_restored_beside_its_own_store(client, alice, catalog, tmp_path):
    """The database volume is lost, the bucket is not: the backup's rows come back beside
    the installation's own store, and a file stored after the backup stays (unknown)."""
    call_command("blobs_sweep", stdout=StringIO())
    before = downloads(client, alice)
    folder = tmp_path / "backup"
    run("backup", folder)
    later = attempt_result(Job.objects.create(owner=alice, kind=Job.Kind.LEGO), tmp_path)
    call_command("flush", "--noinput")
    with pytest.raises(CommandError, match="looks empty or new"):
        call_command("blobs_sweep", stdout=StringIO())
    text = run("restore", folder)
    assert "checked the sha256 of 10 stored files" in text and "copied" not in text
    assert downloads(client, alice) == before
    out = StringIO()
    call_command("blobs_sweep", "--grace-minutes", "-1", "--report-unknown", stdout=out)
    assert f"unknown {later}" in out.getvalue() and default_storage.exists(later)


def test_a_restore_checks_every_file_and_refuses_a_store_with_other_files(
    alice, catalog, tmp_path, settings
):
    folder = tmp_path / "backup"
    run("backup", folder)
    call_command("flush", "--noinput")
    # A store with a file of its own: refused before anything is written.
    settings.MEDIA_ROOT = tmp_path / "other-media"
    default_storage.save("blobs/00/00/" + "0" * 64, ContentFile(b"another installation's"))
    with pytest.raises(CommandError, match="its store holds blobs/00/00/"):
        run("restore", folder)
    assert not Blob.objects.exists()
    # A backed-up file that was altered: its copy is refused, and no row is loaded.
    settings.MEDIA_ROOT = tmp_path / "new-media"
    altered = next(p for p in (folder / "files" / "blobs").rglob("*") if p.is_file())
    altered.write_bytes(altered.read_bytes()[:-1] + b"!")
    with pytest.raises(CommandError, match="nothing was restored into the database"):
        run("restore", folder)
    assert not Blob.objects.exists()
