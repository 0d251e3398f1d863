"""The whole cycle on a real S3-compatible server (`rclone serve s3`), with no file system
storage anywhere: MEDIA_ROOT points at a folder that never exists, in the web process and
in the worker, which has a work directory of its own.

Upload, download (large files by a presigned redirect to the store), zip, job inputs and
results, publish, the Hub API's LFS upload and resolve, and the sweeps of leftovers.
"""

import hashlib
import io
import zipfile
from datetime import timedelta

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from composer.models import Job
from hub.models import Adapter
from tests.jobs.conftest import job_wait, publish_toys, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]
celery = pytest.mark.celery
FILES = ("adapter_config.json", "adapter_model.safetensors")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def follow_to_store(response, s3) -> bytes:
    """A redirect to a presigned link of the store, fetched as a client would."""
    assert response.status_code == 302, response
    link = response["Location"]
    assert link.startswith(s3.endpoint_url) and "X-Amz-Signature=" in link
    fetched = requests.get(link, timeout=30)
    assert fetched.status_code == 200
    # Without the signature the store refuses: the link is the only way in.
    assert requests.get(link.split("?")[0], timeout=30).status_code in (400, 403)
    return fetched.content


def test_leftovers_are_swept_from_the_bucket(on_s3, alice):
    """A bucket has no folders: the sweeps list its names under blobs/, jobs/ and hfapi-lfs/.
    Stored files go when the ledger marks them; a file it does not mention stays."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    from hfapi.staging import clear_stale, stage_stream
    from hub.models import Installation
    from hub.services.storage_ledger import intents_record
    from hub.services.storage_sweep import MARKER, installation_check, ledger_sweep, unknown_files

    def stored_after_intent(name: str, content: bytes) -> str:
        intents_record([name])
        return default_storage.save(name, ContentFile(content))

    job = Job.objects.create(owner=alice, kind=Job.Kind.LEGO, status=Job.Status.SUCCEEDED)
    kept = default_storage.save(f"jobs/{job.pk}/lego.zip", ContentFile(b"zip"))
    Job.objects.filter(pk=job.pk).update(result_file=kept)
    orphan_result = stored_after_intent(f"jobs/{job.pk}/lego-orphan.zip", b"z")
    orphan_blob = stored_after_intent("blobs/ab/cd/" + "ab" * 32, b"rolled back")
    unknown = default_storage.save("blobs/cd/ef/" + "cd" * 32, ContentFile(b"by hand"))
    stage_stream(alice.pk, sha(b"staged"), 6, [b"staged"])
    everything = timedelta(minutes=-1)  # a grace period every file has passed

    assert sorted(ledger_sweep(everything)) == sorted([orphan_blob, orphan_result])
    assert clear_stale(timezone.now() - everything) == 1
    assert unknown_files() == [unknown]
    assert on_s3.keys() == {kept, unknown, MARKER}
    assert installation_check() == Installation.objects.get().uid  # the marker, read back


def test_upload_download_and_zip_through_the_bucket(on_s3, client, alice, toys):
    folder = toys / "adapters" / "t5-a"
    client.force_login(alice)
    files = [SimpleUploadedFile(n, (folder / n).read_bytes()) for n in FILES]
    r = client.post(reverse("hub:adapter_new"), {"name": "on-s3", "files": files})
    assert r.status_code == 302, r.content.decode()[-2000:]
    adapter = Adapter.objects.get(name="on-s3")
    weights = (folder / "adapter_model.safetensors").read_bytes()
    assert f"blobs/{sha(weights)[:2]}/{sha(weights)[2:4]}/{sha(weights)}" in on_s3.keys()

    base = f"/{adapter.full_name}"
    big = client.get(f"{base}/resolve/main/adapter_model.safetensors")
    assert big["ETag"] == f'"{sha(weights)}"' and big["X-Repo-Commit"]
    assert follow_to_store(big, on_s3) == weights
    small = client.get(f"{base}/resolve/main/adapter_config.json")  # under the threshold
    assert small.status_code == 200
    assert b"".join(small.streaming_content) == (folder / "adapter_config.json").read_bytes()

    archive = client.get(f"{base}/archive/main.zip")
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as zf:
        assert zf.read("on-s3/adapter_model.safetensors") == weights


@celery
def test_jobs_read_inputs_and_write_results_through_the_bucket(
    on_s3, worker_factory, jobs_env, settings, client, alice, bob, toys, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "no-media-here"  # jobs_env pointed it elsewhere
    catalog = publish_toys(bob, toys, ["t5-a", "t5-b"])
    worker = worker_factory(
        **on_s3.env(),
        MEDIA_ROOT=tmp_path / "no-media-on-the-worker",
        COMPOSER_WORK_DIR=tmp_path / "worker-work",
    )
    client.force_login(alice)
    r = client.post(
        reverse("composer:new", args=["lego"]),
        {"adapters": [catalog[n].pk for n in ("t5-a", "t5-b")], "k": 6},
    )
    assert r.status_code == 302, r.content.decode()[-2000:]
    job = job_wait(Job.objects.get(), Job.FINISHED, timeout=180, worker=worker)
    try:
        assert job.status == Job.Status.SUCCEEDED, job.error
        assert job.result_file.name in on_s3.keys()
        # The worker fetched its inputs into its own bounded cache, by sha256.
        cached = {p.name for p in (tmp_path / "worker-work" / "blobs").iterdir()}
        weights = [
            catalog[n].current_version.files.get(filename=FILES[1]).blob_id
            for n in ("t5-a", "t5-b")
        ]
        assert set(weights) <= cached
        assert not (tmp_path / "no-media-on-the-worker").exists()

        result = follow_to_store(client.get(reverse("composer:download", args=[job.pk])), on_s3)
        with zipfile.ZipFile(io.BytesIO(result)) as zf:
            merged = zf.read("adapter_model.safetensors")

        r = client.post(reverse("composer:publish", args=[job.pk]), {"name": "merged-on-s3"})
        assert r.status_code == 302, r.content.decode()[-2000:]
        published = Adapter.objects.get(name="merged-on-s3")
        resolved = client.get(f"/{published.full_name}/resolve/main/adapter_model.safetensors")
        assert follow_to_store(resolved, on_s3) == merged
    finally:
        worker.stop()


def test_hub_api_lfs_upload_and_resolve_through_the_bucket(
    on_s3, live_server, alice, toys, settings, monkeypatch, tmp_path
):
    from huggingface_hub import HfApi, constants, hf_hub_download

    from hfapi.tokens import token_create

    settings.LORAHUB_API_LFS_THRESHOLD = 4000
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    token = token_create(user=alice, name="laptop", scope="write")[1]
    hf = HfApi(endpoint=live_server.url, token=token)
    folder = toys / "adapters" / "t5-b"
    hf.create_repo("lfs-on-s3")
    hf.upload_folder(repo_id="alice/lfs-on-s3", folder_path=folder)
    weights = (folder / "adapter_model.safetensors").read_bytes()
    assert len(weights) > 4000  # went through LFS, then into the bucket
    assert any(key.endswith(sha(weights)) and key.startswith("blobs/") for key in on_s3.keys())

    path = hf_hub_download(
        "alice/lfs-on-s3",
        "adapter_model.safetensors",
        endpoint=live_server.url,
        token=token,
        cache_dir=tmp_path / "hf-cache",
    )
    with open(path, "rb") as fh:
        assert fh.read() == weights


def holder(job, workers):
    """The worker whose pool child runs `job`."""
    import psutil

    parent = psutil.Process(job.worker_pid).ppid()
    return next(w for w in workers if w.proc.pid == parent)


@celery
def test_two_workers_without_a_shared_disk_share_jobs_and_one_survives_the_others_death(
    on_s3, worker_factory, jobs_env, settings, alice, bob, toys, tmp_path
):
    from tests.jobs.test_reliability import LONG, lorahub, running_at_step

    settings.MEDIA_ROOT = tmp_path / "no-media-here"
    catalog = publish_toys(bob, toys, ["t5-a", "t5-b"])
    workers = [
        worker_factory(
            **on_s3.env(),
            MEDIA_ROOT=tmp_path / f"no-media-on-worker-{n}",
            COMPOSER_WORK_DIR=tmp_path / f"worker-{n}",
            COMPOSER_MAINTENANCE_SECONDS=1,
        )
        for n in (1, 2)
    ]
    try:
        doomed = running_at_step(lorahub(alice, catalog, budget=LONG), 2, workers[0])
        first = holder(doomed, workers)
        other = workers[1 - workers.index(first)]
        finishing = running_at_step(lorahub(bob, catalog, budget=300), 1, other)
        assert holder(finishing, workers) is other  # the jobs went to both workers

        first.kill()  # the machine with the long job is lost mid-job
        job_wait(finishing, Job.FINISHED, timeout=180, worker=other)
        assert (finishing.status, finishing.attempts) == (Job.Status.SUCCEEDED, 1)
        assert finishing.result_file.name in on_s3.keys()

        # The survivor settles the lost job and runs it again (then it is cancelled here).
        def again():
            doomed.refresh_from_db()
            return doomed.status == Job.Status.RUNNING and doomed.attempts == 2

        wait_for(again, 180, message=other.log_tail())
        assert holder(doomed, workers) is other and "stopped during attempt 1" in doomed.notes[0]
        from composer.lifecycle import job_request_cancel

        job_request_cancel(doomed)
        job_wait(doomed, Job.FINISHED, timeout=120, worker=other)
        # Each worker fetched the inputs into its own cache; no media folder anywhere.
        for n in (1, 2):
            assert any((tmp_path / f"worker-{n}" / "blobs").iterdir())
            assert not (tmp_path / f"no-media-on-worker-{n}").exists()
    finally:
        for w in workers:
            w.stop()


@celery
def test_a_trial_reads_its_adapter_through_the_bounded_cache(
    on_s3, fast_lane, jobs_env, broker_url, worker_dirs, settings, alice, bob, toys, tmp_path
):
    from composer.models import Trial
    from composer.try_it import trial_launch
    from tests.jobs.worker import Worker

    settings.MEDIA_ROOT = tmp_path / "no-media-here"  # jobs_env pointed it elsewhere
    from hub.models import AdapterVersion

    adapter = publish_toys(bob, toys, ["llama-a"])["llama-a"]
    version = AdapterVersion.objects.get(pk=adapter.current_version_id)  # its base, updated
    work = tmp_path / "fast-work"
    worker = Worker(
        broker_url,
        worker_dirs / "media",
        work,
        worker_dirs / "logs",
        fast_lane,
        **on_s3.env(),
        MEDIA_ROOT=tmp_path / "no-media-on-the-worker",
        HF_HUB_OFFLINE="0",
    ).start()
    try:
        trial = trial_launch(user=alice, text="hello", version=version)

        def finished():
            trial.refresh_from_db()
            return trial.is_finished

        wait_for(finished, 120, message=worker.log_tail())
        assert trial.status == Trial.Status.DONE, trial.error
        # Its files came into the worker's sha256-keyed cache only, and its folder is gone.
        blobs = {f.blob_id for f in version.files.all()}
        assert blobs <= {p.name for p in (work / "blobs").iterdir()}
        assert sorted(p.name for p in work.iterdir() if p.name != "base-models") == [
            "blobs",
            "jobs",
        ]
        assert not any((work / "jobs").iterdir())
        assert not (tmp_path / "no-media-on-the-worker").exists()
    finally:
        worker.stop()
