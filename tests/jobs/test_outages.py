"""Outages of the store on real services: an S3 server (`rclone serve s3`) stopped and
started again here, real workers with work folders of their own.

A result written while the store is away is kept on the worker's disk and stored when the
store is back (run once); a worker that dies while saving leaves it for the next attempt
on its disk; a job's start tries again while the store is away; uploads during an outage
answer 503 and keep nothing."""

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from composer.models import Job
from hub.models import Adapter, Blob
from tests.jobs.conftest import job_wait, publish_toys, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]
celery = pytest.mark.celery
FILES = ("adapter_config.json", "adapter_model.safetensors")
SAVING = "Saving result: the file store is unreachable"
BUDGET = 400  # steps: a few seconds on the tiny model, time to stop the store meanwhile
# Workers try the store again quickly here (production: from 1 s up to 30 s apart).
RETRY = {
    "COMPOSER_RETRY_FIRST_PAUSE_SECONDS": 0.2,
    "COMPOSER_RETRY_MAX_PAUSE_SECONDS": 1,
    "COMPOSER_RESULT_SAVE_SECONDS": 300,
    "COMPOSER_START_RETRY_SECONDS": 300,
    "COMPOSER_MAINTENANCE_SECONDS": 1,
}


def s3_worker(worker_factory, s3, work, **env):
    return worker_factory(
        **s3.env(), **RETRY, MEDIA_ROOT=work / "no-media", COMPOSER_WORK_DIR=work, **env
    )


def lego(owner, catalog) -> Job:
    from composer.launch import job_launch

    versions = [catalog[n].current_version for n in ("t5-a", "t5-b")]
    return job_launch(owner=owner, kind=Job.Kind.LEGO, versions=versions, parameters={"k": 6})


def lorahub(owner, catalog, budget=BUDGET) -> Job:
    from tests.jobs.test_reliability import lorahub as launch

    return launch(owner, catalog, budget)


def phase_is(job, prefix: str, worker):
    def seen():
        job.refresh_from_db()
        if job.is_finished:
            pytest.fail(f"job {job.pk} ended {job.status}: {job.error}\n{worker.log_tail()}")
        return job.phase.startswith(prefix)

    wait_for(seen, 180, message=f"the job never showed {prefix!r}\n{worker.log_tail()}")
    return job


def kept(work) -> list[str]:
    folder = work / "kept-results"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@celery
def test_a_result_written_while_the_store_is_away_is_stored_when_it_is_back(
    on_s3, worker_factory, jobs_env, settings, alice, bob, toys, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "no-media-here"  # jobs_env pointed it elsewhere
    catalog = publish_toys(bob, toys, ["t5-a", "t5-b"])
    work = tmp_path / "worker"
    worker = s3_worker(worker_factory, on_s3, work)
    try:
        job = lorahub(alice, catalog)
        wait_for(lambda: job_step(job) >= 1, 180, message=worker.log_tail())
        on_s3.stop()  # the inputs are read; the result's write meets the store away
        phase_is(job, SAVING, worker)
        assert job.status == Job.Status.RUNNING and not job.error
        assert kept(work) == [f"job-{job.pk}.json", f"job-{job.pk}.zip"]

        on_s3.start()
        job_wait(job, Job.FINISHED, timeout=120, worker=worker)
        assert (job.status, job.attempts, job.step, job.phase) == (
            Job.Status.SUCCEEDED, 1, BUDGET, ""
        ), job.error  # fmt: skip
        assert job.result_file.name in on_s3.keys()
        assert kept(work) == []  # stored: the worker's copy is gone
    finally:
        worker.stop()


def job_step(job) -> int:
    job.refresh_from_db()
    return job.step if job.status == Job.Status.RUNNING else 0


@celery
def test_a_worker_that_dies_while_saving_leaves_the_result_for_the_next_attempt(
    on_s3, worker_factory, jobs_env, settings, alice, bob, toys, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "no-media-here"
    catalog = publish_toys(bob, toys, ["t5-a", "t5-b"])
    work = tmp_path / "worker"
    worker = s3_worker(worker_factory, on_s3, work)
    job = lorahub(alice, catalog)
    wait_for(lambda: job_step(job) >= 1, 180, message=worker.log_tail())
    on_s3.stop()
    phase_is(job, SAVING, worker)
    worker.kill()  # the machine restarts while the store is away
    on_s3.start()

    again = s3_worker(worker_factory, on_s3, work)  # the same machine, the same disk
    try:
        job_wait(job, Job.FINISHED, timeout=180, worker=again)
        assert (job.status, job.attempts, job.step) == (Job.Status.SUCCEEDED, 2, BUDGET)
        assert "earlier attempt kept on this disk" in again.log_tail(20000)
        assert job.history[-1]["step"] == BUDGET  # the first attempt"s progress, kept
        assert job.result_file.name in on_s3.keys() and kept(work) == []
    finally:
        again.stop()


@celery
def test_a_submit_while_the_store_is_away_is_503_and_a_start_waits_for_it(
    on_s3, worker_factory, jobs_env, settings, client, alice, bob, toys, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "no-media-here"
    catalog = publish_toys(bob, toys, ["t5-a", "t5-b"])
    worker = s3_worker(worker_factory, on_s3, tmp_path / "worker")  # an empty input cache
    try:
        cache.clear()  # no shapes cached (by sha256): the submit reads them from the store
        on_s3.stop()
        client.force_login(alice)
        r = client.post(
            reverse("composer:new", args=["lego"]),
            {"adapters": [catalog[n].pk for n in ("t5-a", "t5-b")], "k": 6},
        )
        assert r.status_code == 503 and "briefly unreachable" in r.content.decode()
        assert not Job.objects.exists()  # nothing half-written

        job = lego(alice, catalog)  # submitted just before the outage
        wait_for(
            lambda: "fetching stored file" in worker.log_tail(20000),
            120,
            message=worker.log_tail(),
        )
        job.refresh_from_db()
        assert job.status == Job.Status.RUNNING, job.error
        on_s3.start()
        job_wait(job, Job.FINISHED, timeout=120, worker=worker)
        assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1), job.error
    finally:
        worker.stop()


def test_an_upload_while_the_store_is_away_answers_503_and_keeps_nothing(
    on_s3, client, alice, toys
):
    folder = toys / "adapters" / "t5-a"
    client.force_login(alice)
    before = on_s3.keys()
    on_s3.stop()
    files = [SimpleUploadedFile(n, (folder / n).read_bytes()) for n in FILES]
    r = client.post(reverse("hub:adapter_new"), {"name": "in-outage", "files": files})
    assert r.status_code == 503, r.content.decode()[-2000:]
    assert "file store is briefly unreachable" in r.content.decode()
    assert r["Retry-After"]
    on_s3.start()
    assert not Adapter.objects.filter(name="in-outage").exists()
    assert not Blob.objects.exists() and on_s3.keys() == before

    # The same upload, the store back: it goes through.
    files = [SimpleUploadedFile(n, (folder / n).read_bytes()) for n in FILES]
    r = client.post(reverse("hub:adapter_new"), {"name": "in-outage", "files": files})
    assert r.status_code == 302, r.content.decode()[-2000:]


def test_the_hub_api_answers_503_json_while_the_store_is_away(on_s3, client, alice, toys):
    catalog = publish_toys(alice, toys, ["t5-a"])
    on_s3.stop()
    base = f"/{catalog['t5-a'].full_name}"
    r = client.get(f"{base}/resolve/main/adapter_config.json")
    assert r.status_code == 503
    assert "unreachable" in r.content.decode()
