"""Moving an installation's stored files between the file system and an S3-compatible store
(`manage.py storage_copy`), against a real server (`rclone serve s3`)."""

import hashlib
import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from composer.models import Job
from hfapi.staging import stage_stream
from hub.models import Blob
from hub.services.storage import blob_path
from tests.s3_server import S3Server

pytestmark = pytest.mark.django_db
FS = {"BACKEND": "django.core.files.storage.FileSystemStorage"}


@pytest.fixture
def s3(settings, tmp_path):
    """An empty bucket, the "s3" store beside the file system's "fs"."""
    server = S3Server(tmp_path / "s3").start()
    settings.LORAHUB_STORES = {"fs": FS, "s3": server.storage()}
    yield server
    server.stop()


@pytest.fixture
def stored(alice, make_adapter):
    """Files of an installation: two adapters, a job result and a staged Hub API upload."""
    make_adapter(alice, "one", key="r4")
    make_adapter(alice, "two", key="r8", description="A second one.")
    job = Job.objects.create(owner=alice, kind=Job.Kind.MERGE, status=Job.Status.SUCCEEDED)
    job.result_file = default_storage.save(
        f"jobs/{job.pk}/merge-job{job.pk}.zip", ContentFile(b"a result " * 1000)
    )
    job.save()
    staged = b"an LFS object uploaded ahead of its commit"
    stage_stream(alice.pk, hashlib.sha256(staged).hexdigest(), len(staged), [staged])
    return job


def copy(*args) -> str:
    """The command's output; its errors are raised (CommandError) with what it wrote."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("storage_copy", *args, stdout=out, stderr=err)
    except CommandError as error:
        raise CommandError(f"{error}\n{err.getvalue()}") from None
    return out.getvalue()


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def summary(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_copy_to_s3_resumes_then_the_site_runs_on_s3(s3, stored, settings, client, alice, tmp_path):
    on_disk = files(Path(settings.MEDIA_ROOT))
    kinds = {name.split("/")[0] for name in on_disk}
    assert kinds == {"blobs", "jobs", "hfapi-lfs"} and len(on_disk) == 8
    bucket = Path(s3.folder / s3.bucket)

    output = copy("--from", "fs", "--to", "s3")
    assert files(bucket) == on_disk
    size = sum(map(len, on_disk.values()))
    assert summary(output) == f"fs -> s3: 8 copied ({size:,} bytes), 0 there already, 0 failed"
    assert files(Path(settings.MEDIA_ROOT)) == on_disk  # the source is left as it was

    assert summary(copy("--from", "fs", "--to", "s3")).startswith("fs -> s3: 0 copied (0 bytes), 8")

    # A run interrupted before its last two copies.
    weights = Blob.objects.order_by("-size").first()
    for name in (weights.storage_name, stored.result_file.name):
        storages.create_storage(s3.storage()).delete(name)
    output = copy("--from", "fs", "--to", "s3")
    assert summary(output).startswith("fs -> s3: 2 copied")
    assert f"copied {weights.storage_name}" in output
    assert files(bucket) == on_disk

    # Switched: the site reads everything from the bucket, and no media folder is left.
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage()}
    settings.MEDIA_ROOT = nowhere = tmp_path / "no-media-here"
    client.force_login(alice)
    for name in ("one", "two"):
        response = client.get(f"/alice/{name}/resolve/main/adapter_model.safetensors")
        assert response.status_code == 200
        sha = hashlib.sha256(b"".join(response.streaming_content)).hexdigest()
        assert on_disk[blob_path(sha)] and response["ETag"] == f'"{sha}"'
    result = client.get(reverse("composer:download", args=[stored.pk]))
    assert b"".join(result.streaming_content) == on_disk[stored.result_file.name]
    assert not nowhere.exists()


def test_a_copy_unlike_its_source_is_refused_or_replaced(s3, stored, settings):
    media, bucket = Path(settings.MEDIA_ROOT), Path(s3.folder / s3.bucket)
    weights = Blob.objects.order_by("-size").first()
    # The stored file no longer has the content its sha256 names (a damaged disk).
    good = (media / weights.storage_name).read_bytes()
    (media / weights.storage_name).write_bytes(bytes(b ^ 1 for b in good))
    with pytest.raises(CommandError, match=f"failed {weights.storage_name}: the copy"):
        copy("--from", "fs", "--to", "s3")
    assert weights.storage_name not in files(bucket)  # the bad copy was removed
    assert len(files(bucket)) == 7

    # Repaired; a copy of the same size but other content is only seen with --verify.
    (media / weights.storage_name).write_bytes(good)
    unlike = ContentFile(bytes(b ^ 1 for b in good))
    assert (
        storages.create_storage(s3.storage()).save(weights.storage_name, unlike)
        == weights.storage_name
    )
    assert summary(copy("--from", "fs", "--to", "s3")).startswith("fs -> s3: 0 copied")
    output = copy("--from", "fs", "--to", "s3", "--verify")
    assert summary(output).startswith("fs -> s3: 1 copied") and weights.storage_name in output
    assert files(bucket) == files(media)


def test_copy_back_from_s3_to_the_file_system_resumes(s3, settings, alice, make_adapter):
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage()}
    make_adapter(alice, "on-s3")
    staged = b"an LFS object staged in the bucket"
    stage_stream(alice.pk, hashlib.sha256(staged).hexdigest(), len(staged), [staged])
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists()
    assert summary(copy("--from", "s3", "--to", "fs")).startswith("s3 -> fs: 4 copied")
    in_bucket = files(Path(s3.folder / s3.bucket))
    assert files(media) == in_bucket
    # A copy cut short (a run killed while writing it) is made again.
    weights = Blob.objects.order_by("-size").first()
    (media / weights.storage_name).write_bytes(in_bucket[weights.storage_name][:1000])
    output = copy("--from", "s3", "--to", "fs")
    assert summary(output).startswith("s3 -> fs: 1 copied") and weights.storage_name in output
    assert files(media) == in_bucket


def test_a_store_that_is_not_configured_is_named(settings):
    settings.LORAHUB_STORES = {"fs": FS}
    with pytest.raises(CommandError, match="No store 's3'.*LORAHUB_S3_BUCKET"):
        copy("--from", "fs", "--to", "s3")


def test_a_name_that_leads_out_of_a_store_is_reported_and_the_rest_copied(s3, stored, settings):
    weights = Blob.objects.order_by("-size").first()
    Blob.objects.filter(pk=weights.pk).update(storage_name="../../outside")
    Job.objects.filter(pk=stored.pk).update(result_file="/etc/hostname")
    with pytest.raises(CommandError) as refused:
        copy("--from", "fs", "--to", "s3")
    report = str(refused.value)
    assert "2 files were not copied" in report
    assert "failed ../../outside: a store refuses the name" in report
    assert "failed /etc/hostname: a store refuses the name" in report
    bucket = files(Path(s3.folder / s3.bucket))
    assert len(bucket) == 6 and weights.storage_name not in bucket
    assert not any(".." in name or "hostname" in name for name in bucket)

    # The bucket reads ../../outside as its key "outside"; the file system refuses the name.
    storages.create_storage(s3.storage()).save("outside", ContentFile(b"planted"))
    settings.MEDIA_ROOT = media = Path(settings.MEDIA_ROOT).with_name("copied-back")
    with pytest.raises(CommandError) as refused:
        copy("--from", "s3", "--to", "fs")
    assert "failed ../../outside: a store refuses the name" in str(refused.value)
    assert "failed /etc/hostname: not in the source store" in str(refused.value)
    assert files(media) == bucket and not (media.parent / "outside").exists()
    assert "outside" in files(Path(s3.folder / s3.bucket))
