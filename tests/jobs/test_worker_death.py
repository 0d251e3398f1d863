"""A worker that dies in the middle of a job: the job is run again or failed with a reason,
never left "running", and the next worker runs new jobs."""

import os
import signal

import pytest

from composer.engine.examples import Example
from composer.launch import job_launch
from composer.models import Job
from tests.jobs.conftest import job_wait, wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

EXAMPLES = [Example("abc", "cba"), Example("hello", "olleh"), Example("lora", "arol")]


@pytest.fixture
def storage_dirs(jobs_env):
    """Catalog files go where the workers read them."""


def lorahub(alice, catalog, budget: int) -> Job:
    versions = [catalog[n].current_version for n in ("t5-a", "t5-b")]
    return job_launch(
        owner=alice,
        kind=Job.Kind.LORAHUB,
        versions=versions,
        parameters={"budget": budget, "seed": 0, "optimizer": "NGOpt"},
        base_model=catalog["t5-a"].base_model,
        examples=EXAMPLES,
    )


def running_at_step(job, step: int, attempt: int, worker) -> Job:
    def ready():
        job.refresh_from_db()
        return job.status == Job.Status.RUNNING and job.attempts == attempt and job.step >= step

    wait_for(ready, 180, message=f"job {job.pk} attempt {attempt}\n{worker.log_tail()}")
    return job


def test_killed_workers_jobs_are_rerun_then_failed_and_new_jobs_still_run(
    worker_factory, alice, catalog
):
    first = worker_factory(COMPOSER_JOB_MAX_ATTEMPTS=2)
    job = running_at_step(lorahub(alice, catalog, budget=5000), 2, 1, first)

    # The whole worker dies (machine lost, OOM killer on the group): its message stays
    # unacknowledged in Redis. The next worker that starts settles the job and re-queues it.
    first.kill()
    second = worker_factory(COMPOSER_JOB_MAX_ATTEMPTS=2)
    running_at_step(job, 2, 2, second)
    assert "stopped during attempt 1 of 2" in job.notes[0]

    # Now only the worker child dies: Celery requeues the message (acks late, reject on
    # worker lost); the redelivered message finds the job's runner dead and no attempt left.
    os.kill(job.worker_pid, signal.SIGKILL)
    job_wait(job, Job.FINISHED, timeout=60, worker=second)
    assert job.status == Job.Status.FAILED
    assert "stopped unexpectedly" in job.error and "attempt 2 of 2" in job.error

    # The same worker (a fresh child) runs the next job.
    after = job_wait(lorahub(alice, catalog, budget=3), Job.FINISHED, worker=second)
    assert after.status == Job.Status.SUCCEEDED, after.error
    assert after.attempts == 1
