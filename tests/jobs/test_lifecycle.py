"""Claim once, recovery from dead workers, cancellation, finishing: the job state machine."""

import os
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from composer.lifecycle import (
    job_claim,
    job_finish,
    job_request_cancel,
    jobs_reap,
)
from composer.models import Job

Status = Job.Status


@pytest.fixture
def job(alice):
    return Job.objects.create(owner=alice, kind=Job.Kind.LEGO, parameters={"k": 4})


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_job_is_claimed_once(job):
    claimed = job_claim(job.pk, device="cpu", task_id="t1")
    assert claimed is not None
    assert (claimed.status, claimed.attempts, claimed.worker_pid) == (
        Status.RUNNING,
        1,
        os.getpid(),
    )
    assert claimed.device == "cpu" and claimed.heartbeat_at is not None
    # A redelivered message while the holder is alive finds the job taken.
    assert job_claim(job.pk, device="cpu", task_id="t1") is None
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Status.RUNNING, 1)


def test_finished_or_cancelled_jobs_are_not_claimed(job):
    job_request_cancel(job)
    job.refresh_from_db()
    assert job.status == Status.CANCELLED
    assert job_claim(job.pk, device="cpu") is None
    assert job_claim(123456, device="cpu") is None


def test_redelivered_message_of_a_dead_worker_resumes_within_attempts(job, settings):
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 2
    claimed = job_claim(job.pk, device="cpu")
    Job.objects.filter(pk=job.pk).update(worker_pid=dead_pid(), step=7)
    again = job_claim(job.pk, device="cpu")
    assert again is not None
    assert (again.status, again.attempts, again.worker_pid, again.step) == (
        Status.RUNNING,
        2,
        os.getpid(),
        0,
    )
    assert "stopped during attempt 1 of 2" in again.notes[0]
    assert claimed.attempts == 1


def test_dead_worker_after_last_attempt_fails_with_a_reason(job, settings):
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 1
    job_claim(job.pk, device="cpu")
    Job.objects.filter(pk=job.pk).update(worker_pid=dead_pid())
    assert job_claim(job.pk, device="cpu") is None
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert "stopped unexpectedly" in job.error and "attempt 1 of 1" in job.error
    assert job.finished_at is not None


def test_reaper_requeues_stale_jobs_and_leaves_live_ones(
    alice, settings, django_capture_on_commit_callbacks
):
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 2
    settings.COMPOSER_HEARTBEAT_STALE_SECONDS = 60
    now = timezone.now()
    common = {"owner": alice, "kind": Job.Kind.MERGE, "status": Status.RUNNING, "attempts": 1}
    # Another machine: only the heartbeat tells whether it is alive.
    stale = Job.objects.create(
        **common, worker_host="gpu-7", worker_pid=1, heartbeat_at=now - timedelta(seconds=61)
    )
    live = Job.objects.create(
        **common, worker_host="gpu-7", worker_pid=1, heartbeat_at=now - timedelta(seconds=5)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        outcome = jobs_reap()
    assert outcome == {stale.pk: Status.QUEUED}
    assert len(callbacks) == 1  # the re-queued job is sent again after commit
    stale.refresh_from_db()
    live.refresh_from_db()
    assert stale.status == Status.QUEUED and "gpu-7" in stale.notes[0]
    assert live.status == Status.RUNNING


def test_cancel_a_running_job_asks_its_worker(job):
    job_claim(job.pk, device="cpu")
    assert job_request_cancel(job) == Status.RUNNING
    job.refresh_from_db()
    assert job.cancel_requested and job.status == Status.RUNNING


def test_cancel_a_running_job_whose_worker_died_settles_it(job):
    job_claim(job.pk, device="cpu")
    Job.objects.filter(pk=job.pk).update(worker_pid=dead_pid())
    assert job_request_cancel(job) == Status.CANCELLED


def test_an_attempt_that_lost_its_job_cannot_finish_it(job, settings):
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 2
    first = job_claim(job.pk, device="cpu")
    Job.objects.filter(pk=job.pk).update(worker_pid=dead_pid())
    first.worker_pid = Job.objects.get(pk=job.pk).worker_pid
    second = job_claim(job.pk, device="cpu")
    assert not job_finish(first, Status.SUCCEEDED)
    assert job_finish(second, Status.SUCCEEDED)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.attempts == 2
