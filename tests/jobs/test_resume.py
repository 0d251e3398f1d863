"""A worker stopped (a restart, a deploy) or killed in the middle of a LoraHub search: the
next attempt resumes from the search's checkpoint instead of starting over, and a restart
does not use up an attempt."""

import time

import pytest

from composer.engine.examples import Example
from composer.launch import job_launch
from composer.models import Job
from tests.jobs.conftest import job_wait, wait_for
from tests.jobs.test_worker_death import running_at_step

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

EXAMPLES = [Example("abc", "cba"), Example("hello", "olleh"), Example("lora", "arol")]
BUDGET = 400  # 3 candidates screened, 397 search steps: long enough to stop in between
# Deterministic for its seed (NGOpt picks CMA for this budget, which is not: see
# tests/engine/test_resume.py), so that a resumed run can be compared with a whole one.
OPTIMIZER = "OnePlusOne"


@pytest.fixture
def storage_dirs(jobs_env):
    """Catalog files go where the workers read them."""


@pytest.fixture
def workers(worker_factory):
    """Workers of one test, all stopped at its end (they share the test session's queue)."""
    started = []

    def start(**env):
        started.append(worker_factory(**env))
        return started[-1]

    yield start
    for w in started:
        w.stop()


def lorahub(alice, catalog) -> Job:
    return job_launch(
        owner=alice,
        kind=Job.Kind.LORAHUB,
        versions=[catalog[n].current_version for n in ("t5-a", "t5-b", "t5-c")],
        parameters={"budget": BUDGET, "seed": 0, "optimizer": OPTIMIZER},
        base_model=catalog["t5-a"].base_model,
        examples=EXAMPLES,
    )


def resumed_from(job) -> int:
    """The evaluations the job's result took from a checkpoint; they and the ones it made
    itself are the whole budget."""
    resumed = job.result["resumed"]
    taken = resumed["screened"] + resumed["searched"]
    assert taken + resumed["evaluated"] == BUDGET
    return taken


@pytest.mark.parametrize("signalled", ["main process", "process group"])
def test_a_stopped_workers_search_resumes_where_it_stopped(workers, alice, catalog, signalled):
    """`docker compose stop` (SIGTERM to the main process) or a stop sent to every process:
    the search saves its state at its next step and the job goes back to the queue, not
    counted as an attempt; the next worker makes only the evaluations left, and ends where
    an uninterrupted run ends."""
    env = {"COMPOSER_JOB_MAX_ATTEMPTS": 1, "COMPOSER_CHECKPOINT_SECONDS": 3600}
    first = workers(**env)
    job = running_at_step(lorahub(alice, catalog), 50, 1, first)

    t0 = time.monotonic()
    if signalled == "main process":
        assert first.docker_stop(grace=20), "the worker did not stop within its grace"
    else:
        first.stop()
        assert first.proc.returncode == 0, first.log_tail()
    assert time.monotonic() - t0 < 15
    job.refresh_from_db()
    assert (job.status, job.attempts, job.restarts) == (Job.Status.QUEUED, 1, 1), job.error
    # saved at the step it stopped at, though the periodic checkpoint is an hour away
    stopped_at = job.checkpoint["step"]
    assert 50 <= stopped_at < BUDGET and not job.checkpoint["finished"]
    assert f"stopped (restart or deploy) at step {stopped_at}" in job.notes[-1]

    second = workers(**env)
    job_wait(job, Job.FINISHED, timeout=120, worker=second)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.attempts, job.restarts, job.checkpoint) == (2, 1, None)
    # the evaluations made before the stop were not made again: in all, the budget
    assert resumed_from(job) == stopped_at
    assert job.step == BUDGET and len(job.history) >= BUDGET - stopped_at

    if signalled != "main process":
        return  # the comparison below once is enough
    whole = job_wait(lorahub(alice, catalog), Job.FINISHED, timeout=120, worker=second)
    assert whole.status == Job.Status.SUCCEEDED and "resumed" not in whole.result
    for key in ("weights", "loss", "best_weights", "history", "screening", "choice"):
        assert job.result[key] == whole.result[key], key


def test_a_killed_workers_search_resumes_from_its_last_checkpoint(workers, alice, catalog):
    """Killed without warning (a lost machine, the OOM killer): the next attempt loses only
    what followed the last periodic checkpoint, and the kill counts as an attempt."""
    env = {"COMPOSER_JOB_MAX_ATTEMPTS": 2, "COMPOSER_CHECKPOINT_SECONDS": 0.3}
    first = workers(**env)
    job = running_at_step(lorahub(alice, catalog), 50, 1, first)

    def checkpointed():
        job.refresh_from_db()
        return (job.checkpoint or {}).get("step", 0) >= 50

    wait_for(checkpointed, 60, message=first.log_tail())
    first.kill()
    job.refresh_from_db()
    saved = job.checkpoint["step"]
    assert job.step - saved < BUDGET / 2  # written every 0.3 s

    second = workers(**env)
    job_wait(job, Job.FINISHED, timeout=120, worker=second)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.attempts, job.restarts) == (2, 0)
    assert "stopped during attempt 1 of 2 without warning" in job.notes[0]
    assert f"resumes from step {saved}" in job.notes[0]
    assert resumed_from(job) == saved
