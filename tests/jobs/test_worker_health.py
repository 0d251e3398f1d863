"""A worker with too little disk (or memory) for a job declines it, with real workers: the
job waits with the reason on its page and in the worker's heartbeat, and another worker
runs it; the sick worker fails nobody's job. A disk with less free space than the worker
needs is simulated by needing more than any disk has."""

import pytest
from django.urls import reverse

from composer.launch import job_launch
from composer.models import Job, WorkerBeat
from tests.jobs.conftest import job_wait, wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]
FULL = {"COMPOSER_MIN_FREE_DISK_BYTES": 10**18, "COMPOSER_DECLINE_PAUSE_SECONDS": 0.5}


@pytest.fixture
def storage_dirs(jobs_env):
    """Catalog files go where the workers read them."""


def lego(owner, catalog) -> Job:
    return job_launch(
        owner=owner,
        kind=Job.Kind.LEGO,
        versions=[catalog[n].current_version for n in ("t5-a", "t5-b")],
        parameters={"k": 6},
    )


def test_a_worker_without_disk_declines_jobs_which_wait_for_another(
    worker_factory, jobs_env, worker_dirs, client, alice, catalog, tmp_path
):
    sick = worker_factory(
        **FULL, COMPOSER_WORK_DIR=tmp_path / "sick", COMPOSER_MAINTENANCE_SECONDS=1
    )
    jobs = [lego(alice, catalog) for _ in range(2)]

    def declined():
        for job in jobs:
            job.refresh_from_db()
        return any("too little free disk" in j.waiting for j in jobs)

    wait_for(declined, 60, message=sick.log_tail())
    assert all(j.status == Job.Status.QUEUED and j.attempts == 0 and not j.error for j in jobs)
    waiting = next(j for j in jobs if j.waiting)
    assert waiting.waiting.startswith("Waiting: the worker on ")
    beat = WorkerBeat.objects.get(name__endswith=str((tmp_path / "sick").resolve()))
    assert "too little free disk" in beat.problem and beat.free_disk is not None
    client.force_login(alice)
    page = client.get(reverse("composer:status", args=[waiting.pk])).content.decode()
    assert "too little free disk" in page

    healthy = worker_factory(COMPOSER_WORK_DIR=tmp_path / "healthy")
    for job in jobs:
        job_wait(job, Job.FINISHED, timeout=120, worker=healthy)
        assert (job.status, job.attempts, job.waiting) == (Job.Status.SUCCEEDED, 1, ""), job.error
    # The healthy worker ran them: the sick one never claimed a job.
    assert " started (message sent" not in sick.log_tail(100000)
    sick.stop()
    healthy.stop()
