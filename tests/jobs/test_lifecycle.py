"""Claim once, recovery from dead workers, cancellation, finishing: the job state machine."""

import os
import subprocess
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from composer.lifecycle import (
    JobLimitReached,
    held_by_cap,
    job_check_limit,
    job_claim,
    job_claim_next,
    job_finish,
    job_mark_sent,
    job_request_cancel,
    jobs_reap,
    jobs_to_send,
    queue_order,
    queue_position,
)
from composer.models import Job
from tests.jobs.conftest import race
from tests.services import require

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


def test_a_dead_workers_job_resumes_within_attempts(job, settings):
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 2
    claimed = job_claim(job.pk, device="cpu")
    Job.objects.filter(pk=job.pk).update(worker_pid=dead_pid(), step=7)
    assert jobs_reap() == {job.pk: Status.QUEUED}
    again = job_claim_next(device="cpu")
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
    assert jobs_reap() == {job.pk: Status.FAILED}
    assert job_claim_next(device="cpu") is None
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert "stopped unexpectedly" in job.error and "attempt 1 of 1" in job.error
    assert job.finished_at is not None


def test_a_dead_workers_job_whose_result_was_stored_succeeds_and_never_runs_again(job, settings):
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 2  # attempts are left: without the result, re-queued
    job_claim(job.pk, device="cpu")
    Job.objects.filter(pk=job.pk).update(
        worker_pid=dead_pid(), result_file="jobs/1/lego-job1.zip", phase="Saving result"
    )
    assert jobs_reap() == {job.pk: Status.SUCCEEDED}
    job.refresh_from_db()
    assert (job.status, job.attempts, job.phase) == (Status.SUCCEEDED, 1, "")
    assert job.result_file.name == "jobs/1/lego-job1.zip" and job.finished_at is not None


def test_restarts_do_not_use_up_attempts_and_the_error_says_what_happened(job, settings):
    """Workers asked to stop (a restart, a deploy) then killed past their stop grace: the
    job is queued again however often, keeping its checkpoint; a kill without warning uses
    the attempt, and the error tells the two apart."""
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 1
    checkpoint = {"step": 9, "total": 40}
    for n in (1, 2, 3):
        claimed = job_claim_next(device="cpu")
        assert (claimed.pk, claimed.worker_stopping) == (job.pk, False)
        Job.objects.filter(pk=job.pk).update(
            worker_pid=dead_pid(), worker_stopping=True, step=11, checkpoint=checkpoint
        )
        assert jobs_reap() == {job.pk: Status.QUEUED}
        job.refresh_from_db()
        assert (job.attempts, job.restarts, job.checkpoint) == (n, n, checkpoint)
        assert "stopped (restart or deploy) at step 11" in job.notes[-1]
        assert "resumes from step 9" in job.notes[-1]
    job_claim_next(device="cpu")
    Job.objects.filter(pk=job.pk).update(worker_pid=dead_pid())  # no stop asked: killed
    assert jobs_reap() == {job.pk: Status.FAILED}
    job.refresh_from_db()
    assert "killed without warning" in job.error and "attempt 1 of 1" in job.error
    assert "out of memory" in job.error and "stopped 3 times by a restart" in job.error
    assert job.checkpoint is None  # nothing resumes a finished job


def test_a_released_job_is_queued_with_its_checkpoint(job, settings):
    from composer.lifecycle import job_release

    settings.COMPOSER_JOB_MAX_ATTEMPTS = 1
    claimed = job_claim(job.pk, device="cpu")
    assert job_release(claimed, {"step": 5}) == Status.QUEUED
    job.refresh_from_db()
    assert (job.status, job.restarts, job.checkpoint, job.sent_at) == (
        Status.QUEUED,
        1,
        {"step": 5},
        None,
    )
    assert "at step 5" in job.notes[-1]
    again = job_claim_next(device="cpu")  # the attempt was not used up
    assert again.attempts == 2 and again.checkpoint == {"step": 5}
    assert job_release(claimed, None) is None  # the old attempt can no longer write
    assert job_finish(again, Status.SUCCEEDED)
    job.refresh_from_db()
    assert job.checkpoint is None


def test_reaper_requeues_stale_jobs_and_leaves_live_ones(alice, settings):
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
    assert jobs_reap() == {stale.pk: Status.QUEUED}
    assert jobs_to_send() == ([stale.pk], [])  # re-queued, its message is sent again
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
    jobs_reap()
    second = job_claim(job.pk, device="cpu")
    assert not job_finish(first, Status.SUCCEEDED)
    assert job_finish(second, Status.SUCCEEDED)
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.attempts == 2


def queued(owner, minutes_ago: float) -> Job:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return Job.objects.create(owner=owner, kind=Job.Kind.LEGO, queued_at=at)


def test_the_queue_takes_users_in_turn(alice, bob, django_user_model, settings):
    settings.COMPOSER_MAX_RUNNING_JOBS_PER_USER = 2
    carol = django_user_model.objects.create_user("carol", password="pw")
    # alice queued three jobs first, then bob and carol one each; carol has one running.
    a = [queued(alice, 10 - i) for i in range(3)]
    b = queued(bob, 5)
    c = queued(carol, 4)
    Job.objects.create(owner=carol, kind=Job.Kind.LEGO, status=Status.RUNNING)
    order = list(queue_order().values_list("pk", flat=True))
    assert order == [a[0].pk, b.pk, a[1].pk, c.pk, a[2].pk]
    # alice's third waits for one of her first two to end: it has no place yet
    assert [queue_position(j) for j in (a[0], b, a[1], c, a[2])] == [1, 2, 3, 4, None]
    assert held_by_cap(a[2]) == {"running": 0, "earlier": 2, "cap": 2}
    assert [held_by_cap(j) for j in (a[0], b, a[1], c)] == [None] * 4
    # Workers take them in that order, each job once, while the owner has fewer than
    # COMPOSER_MAX_RUNNING_JOBS_PER_USER running: alice's third waits for one of hers.
    claimed = [job_claim_next(device="cpu") for _ in range(6)]
    assert [j.pk if j else None for j in claimed] == [*order[:4], None, None]
    assert queue_position(a[0]) is None
    assert job_claim(a[2].pk, device="cpu") is None  # a message sent for it: left queued
    assert queue_position(a[2]) is None  # held: no place until one of alice's ends
    job_finish(claimed[0], Status.SUCCEEDED)
    assert queue_position(a[2]) == 1
    assert job_claim_next(device="cpu").pk == a[2].pk


@pytest.mark.django_db(transaction=True)
def test_two_workers_cannot_both_take_a_users_last_running_slot(alice, settings):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    settings.COMPOSER_MAX_RUNNING_JOBS_PER_USER = 1
    jobs = [queued(alice, 2), queued(alice, 1)]
    claims = race(*(lambda job=job: job_claim(job.pk, device="cpu") for job in jobs))
    assert sum(c is not None for c in claims) == 1
    assert Job.objects.filter(owner=alice, status=Status.RUNNING).count() == 1


def test_unsent_and_stale_queued_jobs_are_sent_again(alice, settings):
    settings.COMPOSER_QUEUED_STALE_SECONDS = 60
    never_sent = queued(alice, 1)
    sent_long_ago = queued(alice, 30)
    sent_now = queued(alice, 30)
    for job in (sent_long_ago, sent_now):
        job_mark_sent(job.pk, "t")
    Job.objects.filter(pk=sent_long_ago.pk).update(sent_at=timezone.now() - timedelta(seconds=61))
    assert jobs_to_send() == ([never_sent.pk], [sent_long_ago.pk])


def test_a_job_killed_past_its_time_limit_fails_once_with_that_reason(job, settings):
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 3
    settings.CELERY_TASK_TIME_LIMIT = 60
    job_claim(job.pk, device="cpu")
    started = timezone.now() - timedelta(seconds=61)
    Job.objects.filter(pk=job.pk).update(worker_pid=dead_pid(), started_at=started)
    assert jobs_reap() == {job.pk: Status.FAILED}
    job.refresh_from_db()
    assert job.attempts == 1 and "ran past its time limit (60 s" in job.error


def test_a_user_at_the_job_limit_is_refused(alice, bob, settings):
    settings.COMPOSER_MAX_ACTIVE_JOBS_PER_USER = 2
    queued(alice, 1)
    Job.objects.create(owner=alice, kind=Job.Kind.LEGO, status=Status.RUNNING)
    Job.objects.create(owner=alice, kind=Job.Kind.LEGO, status=Status.FAILED)
    with pytest.raises(JobLimitReached, match=r"2 jobs queued or running.*\(2\)"):
        job_check_limit(alice)
    job_check_limit(bob)
