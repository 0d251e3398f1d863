"""Jobs are never lost, with real workers on a Redis of this module's own (flushed, frozen
and restarted here, never the shared one): lost messages are sent again, an unreachable
broker at submit keeps the job, limits are the worker's, a dropped database connection
costs nothing, a write the database refuses fails the job once, every worker settles dead
workers' jobs (on any host) and sweeps leftovers by itself, two workers given messages for
the same job run it once, and one user's jobs never run more than
COMPOSER_MAX_RUNNING_JOBS_PER_USER at once."""

import os
import shutil
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.urls import reverse
from django.utils import timezone

from composer.dispatch import job_send, jobs_maintain
from composer.engine.examples import Example
from composer.launch import job_launch
from composer.lifecycle import job_claim_next, job_request_cancel, jobs_reap
from composer.models import Job
from tests.jobs.conftest import job_wait, wait_for
from tests.jobs.form_data import lorahub_data
from tests.jobs.redis_server import RedisServer
from tests.jobs.worker import celery_sending_to, reset_producers
from tests.services import require

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]
Status = Job.Status
EXAMPLES = [Example("abc", "cba"), Example("hello", "olleh"), Example("lora", "arol")]
LONG = 5000  # steps: tens of seconds on the tiny model, always cancelled or stopped first


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    require(shutil.which("redis-server") is not None, "redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_broker(own_redis, job_queue):
    with celery_sending_to(own_redis.url, job_queue):
        yield own_redis


@pytest.fixture
def storage_dirs(settings, own_broker, worker_dirs):
    """Catalog files go where the workers read them; messages go to this module's Redis."""
    settings.MEDIA_ROOT = worker_dirs / "media"
    settings.COMPOSER_WORK_DIR = worker_dirs / "work"
    own_broker.cli("flushall")
    from config.celery import app

    reset_producers(app)


@pytest.fixture
def start_worker(worker_factory, own_broker, storage_dirs):
    """Workers on this module's Redis, stopped at the end of the test."""
    started = []

    def start(**env):
        env = {"COMPOSER_MAINTENANCE_SECONDS": 1, **env}
        w = worker_factory(broker=own_broker.url, **env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def lorahub(owner, catalog, budget: int, examples=EXAMPLES) -> Job:
    return job_launch(
        owner=owner,
        kind=Job.Kind.LORAHUB,
        versions=[catalog[n].current_version for n in ("t5-a", "t5-b")],
        parameters={"budget": budget, "seed": 0, "optimizer": "NGOpt"},
        base_model=catalog["t5-a"].base_model,
        examples=examples,
    )


def running_at_step(job, step: int, worker) -> Job:
    def ready():
        job.refresh_from_db()
        return job.status == Status.RUNNING and job.step >= step

    wait_for(ready, 180, message=f"job {job.pk} never ran\n{worker.log_tail()}")
    return job


def logs(*workers) -> str:
    return "".join(w.log_path.read_text(errors="replace") for w in workers)


def test_jobs_whose_messages_were_lost_run_when_sent_again(
    own_broker, job_queue, start_worker, client, alice, catalog, settings
):
    jobs = [lorahub(alice, catalog, budget=3) for _ in range(3)]
    assert own_broker.cli("llen", job_queue) == "3"
    assert all(Job.objects.get(pk=j.pk).sent_at for j in jobs)
    # Waiting: the page says for how long and where in the queue; alice's third job, past
    # her running cap (2), waits for one of the first two to end and has no place yet.
    settings.COMPOSER_MAX_RUNNING_JOBS_PER_USER = 2
    client.force_login(alice)
    page = client.get(reverse("composer:status", args=[jobs[1].pk])).content.decode()
    assert 'id="job-position">2</dd>' in page and 'id="job-wait"' in page
    page = client.get(reverse("composer:status", args=[jobs[2].pk])).content.decode()
    assert 'id="job-position"' not in page and "2 queued before this one" in page

    # Their messages are old but all there: an intact queue gets no duplicates.
    settings.COMPOSER_QUEUED_STALE_SECONDS = 0
    assert jobs_maintain()["sent"] == [] and own_broker.cli("llen", job_queue) == "3"

    own_broker.restart()  # without its data: the three messages are gone
    assert own_broker.cli("llen", job_queue) == "0"
    worker = start_worker(COMPOSER_QUEUED_STALE_SECONDS=2)
    for job in jobs:
        job_wait(job, Job.FINISHED, timeout=120, worker=worker)
        assert (job.status, job.attempts) == (Status.SUCCEEDED, 1), job.error


def test_a_submit_that_cannot_reach_the_broker_keeps_the_job_and_sends_it_later(
    own_broker, start_worker, client, alice, catalog
):
    client.force_login(alice)
    examples = "abc\tcba\nhello\tolleh\n"
    data = lorahub_data(catalog, "t5-a", "t5-b", examples=examples, budget=3, seed=0)
    own_broker.freeze()  # accepts connections, never answers
    try:
        began = time.monotonic()
        r = client.post(reverse("composer:new", args=["lorahub"]), data, follow=True)
        took = time.monotonic() - began
    finally:
        own_broker.thaw()
    # Bounded by the broker's timeouts (3 s to connect, 5 s a read), not hanging for minutes.
    assert took < 60
    job = Job.objects.get()
    assert (job.status, job.sent_at, job.error) == (Status.QUEUED, None, "")
    page = r.content.decode()
    assert r.status_code == 200 and r.redirect_chain[0][0] == job.get_absolute_url()
    assert "the job queue could not be reached just now" in page
    assert f"Job #{job.pk} launched" not in page and 'id="job-unsent"' in page

    worker = start_worker()  # the broker is back: the worker sends the job and runs it
    job_wait(job, Job.FINISHED, timeout=120, worker=worker)
    assert (job.status, job.attempts) == (Status.SUCCEEDED, 1), job.error
    assert job.sent_at is not None


def test_job_pages_leave_a_frozen_broker_alone_after_it_failed_once(
    own_broker, client, alice, catalog
):
    """Polling pages of queued jobs would each wait out the broker's socket timeout while
    it is frozen, until every web process is held (the catalog then waits too): once a
    send has failed, pages send nothing for COMPOSER_BROKER_PAUSE_SECONDS."""
    client.force_login(alice)
    own_broker.freeze()
    try:
        job = lorahub(alice, catalog, budget=3)  # its send fails after the timeouts
        assert Job.objects.get(pk=job.pk).sent_at is None
        began = time.monotonic()
        polled = client.get(reverse("composer:status", args=[job.pk]))
        took = time.monotonic() - began
    finally:
        own_broker.thaw()
    assert polled.status_code == 200
    # A send would wait for the read timeout (5 s) at least.
    assert took < 2.5, f"the poll took {took:.1f} s: it asked the frozen broker again"
    assert Job.objects.get(pk=job.pk).sent_at is None


def test_two_workers_run_each_job_once_and_a_users_jobs_at_most_the_cap_at_once(
    start_worker, alice, bob, catalog
):
    cap = {"COMPOSER_MAX_RUNNING_JOBS_PER_USER": 1}
    first, second = start_worker(**cap), start_worker(**cap)
    job = lorahub(alice, catalog, budget=LONG)
    holder = running_at_step(job, 2, first)
    job_send(job.pk)  # a duplicate message: the idle worker receives it
    wait_for(
        lambda: f"message for job {job.pk}: no queued job may run now" in logs(first, second),
        120,
        message=f"the duplicate was never received\n{logs(first, second)[-4000:]}",
    )
    # alice's next job: its message reaches the idle worker, which leaves it queued (alice
    # has her one job running), and runs bob's job instead.
    held = lorahub(alice, catalog, budget=LONG)

    def dropped_or_taken():
        dropped = f"message for job {held.pk}: no queued job may run now" in logs(first, second)
        return dropped or Job.objects.get(pk=held.pk).status != Status.QUEUED

    wait_for(dropped_or_taken, 120, message=f"never received\n{logs(first, second)[-4000:]}")
    held.refresh_from_db()
    assert (held.status, held.attempts) == (Status.QUEUED, 0)
    other = job_wait(lorahub(bob, catalog, budget=3), Job.FINISHED, timeout=120)
    assert other.status == Status.SUCCEEDED, other.error
    held.refresh_from_db()
    assert (held.status, held.attempts) == (Status.QUEUED, 0)
    # alice's running job ends: her held job gets a turn at once (not after the 300 s of
    # a stale message) and runs.
    job_request_cancel(job)
    job_wait(job, Job.FINISHED, timeout=120)
    running_at_step(held, 1, first)
    job_request_cancel(held)
    job_wait(held, Job.FINISHED, timeout=120)
    text = logs(first, second)
    assert text.count("composer.tasks.run_job[") >= 5  # each received a message
    for ran in (job, held, other):
        assert text.count(f"job {ran.pk}: started") == 1
    assert (job.status, job.attempts, job.worker_pid) == (Status.CANCELLED, 1, holder.worker_pid)
    assert (held.status, held.attempts) == (Status.CANCELLED, 1)


def test_every_worker_settles_dead_workers_on_any_host_and_sweeps_by_itself(
    start_worker, alice, worker_dirs
):
    scratch = worker_dirs / "work" / "jobs" / "job-999999-killed"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "partial.safetensors").write_bytes(b"x" * 100)
    two_hours_ago = time.time() - 7200
    os.utime(scratch, (two_hours_ago, two_hours_ago))
    worker = start_worker(
        COMPOSER_HEARTBEAT_STALE_SECONDS=5,
        COMPOSER_JOB_MAX_ATTEMPTS=2,
        COMPOSER_SWEEP_SECONDS=1,
        COMPOSER_SWEEP_GRACE_SECONDS=3600,
    )
    # After the worker started: a job on another machine whose worker stops beating. Its pid
    # is alive here (the worker's own), so only the heartbeat can tell, and no page is open.
    now = timezone.now()
    job = Job.objects.create(
        owner=alice,
        kind=Job.Kind.LEGO,
        status=Status.RUNNING,
        attempts=2,
        worker_host="gpu-elsewhere",
        worker_pid=worker.proc.pid,
        started_at=now,
        heartbeat_at=now,
    )
    job_wait(job, Job.FINISHED, timeout=90, worker=worker)
    assert job.status == Status.FAILED and "gpu-elsewhere" in job.error
    assert "attempt 2 of 2" in job.error
    wait_for(lambda: not scratch.exists(), 60, message=f"not swept\n{worker.log_tail()}")


def test_time_limits_are_the_workers_and_a_job_past_one_fails_once(
    start_worker, alice, catalog, settings
):
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT >= 3600  # the sender's limits: hours
    soft = start_worker(CELERY_TASK_SOFT_TIME_LIMIT=3, CELERY_TASK_TIME_LIMIT=600)
    job = job_wait(lorahub(alice, catalog, budget=LONG), Job.FINISHED, timeout=120, worker=soft)
    assert (job.status, job.attempts) == (Status.FAILED, 1)
    assert "ran past its time limit (3 s on its worker)" in job.error
    soft.stop()

    # Only a hard limit: the worker kills the job's process; the job is not retried.
    hard = start_worker(
        CELERY_TASK_SOFT_TIME_LIMIT=0, CELERY_TASK_TIME_LIMIT=4, COMPOSER_JOB_MAX_ATTEMPTS=2
    )
    job = job_wait(lorahub(alice, catalog, budget=LONG), Job.FINISHED, timeout=120, worker=hard)
    assert (job.status, job.attempts) == (Status.FAILED, 1), job.error
    assert "ran past its time limit (4 s on its worker)" in job.error


def test_the_heartbeat_alone_keeps_a_long_running_job_alive(start_worker, alice, catalog):
    stale = 6
    worker = start_worker(
        COMPOSER_PROGRESS_SECONDS=100000,  # no progress writes: only the heartbeat thread
        COMPOSER_HEARTBEAT_STALE_SECONDS=stale,
        COMPOSER_JOB_MAX_ATTEMPTS=1,
    )
    job = running_at_step(lorahub(alice, catalog, budget=LONG), 1, worker)
    first, beats = job.heartbeat_at, set()

    def alive_long_enough():
        job.refresh_from_db()
        beats.add(job.heartbeat_at)
        if job.status != Status.RUNNING:
            return True
        return job.heartbeat_at - first > timedelta(seconds=2 * stale)

    wait_for(alive_long_enough, 180, interval=0.5, message=worker.log_tail())
    assert job.status == Status.RUNNING and job.attempts == 1, job.error
    assert len(beats) >= 4 and job.step < LONG
    job_request_cancel(job)
    job_wait(job, Job.FINISHED, timeout=120, worker=worker)
    assert job.status == Status.CANCELLED


def terminate_other_connections() -> int:
    """Drop every other session on the test database (the worker's), as a restart would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_progress_and_heartbeat_survive_a_dropped_database_connection(start_worker, alice, catalog):
    worker = start_worker(COMPOSER_JOB_MAX_ATTEMPTS=1)
    job = running_at_step(lorahub(alice, catalog, budget=LONG), 2, worker)
    assert terminate_other_connections() >= 1
    dropped_at = job.step
    running_at_step(job, dropped_at + 20, worker)  # progress written after the drop
    job_request_cancel(job)
    job_wait(job, Job.FINISHED, timeout=120, worker=worker)
    assert (job.status, job.attempts, job.error) == (Status.CANCELLED, 1, "")
    assert "reconnecting" in worker.log_tail(200000)


MARKER = "refuse-me"


@pytest.fixture
def refused_writes():
    """A trigger on the jobs table that refuses (a data exception, as PostgreSQL refuses a
    value it cannot store) a write changing `column` of a job whose examples hold MARKER."""
    table = Job._meta.db_table

    def refuse(column: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF position('{MARKER}' in NEW.examples::text) > 0 "
                f"AND NEW.{column} IS DISTINCT FROM OLD.{column} THEN "
                "RAISE EXCEPTION 'a value this database refuses' USING ERRCODE = '22000'; "
                "END IF; RETURN NEW; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_marked BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_marked()"
            )

    yield refuse
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS refuse_marked ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS refuse_marked()")


@pytest.mark.parametrize(("column", "what"), [("history", "job's progress"), ("result", "result")])
def test_a_write_the_database_refuses_fails_the_job_once(
    start_worker, refused_writes, alice, catalog, column, what
):
    """A value PostgreSQL refuses is not retried as a dropped connection is, and does not
    leave the job running for the reaper to run again: it fails, with the reason."""
    refused_writes(column)
    worker = start_worker(COMPOSER_JOB_MAX_ATTEMPTS=2, COMPOSER_HEARTBEAT_STALE_SECONDS=5)
    examples = [*EXAMPLES, Example(MARKER, "em-esufer")]
    job = job_wait(lorahub(alice, catalog, budget=3, examples=examples), Job.FINISHED, 120, worker)
    assert (job.status, job.attempts) == (Status.FAILED, 1), job.error
    assert job.error == f"The {what} could not be stored: a value this database refuses"
    assert (job.result, job.result_file.name) == (None, "")
    time.sleep(6)  # past a stale heartbeat: the job is not the reaper's
    assert jobs_reap() == {} and job_claim_next(device="cpu") is None
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Status.FAILED, 1)
    text = worker.log_tail(200000)
    assert text.count(f"job {job.pk}: started") == 1 and "reconnecting" not in text
    # A job without the marker is stored as always.
    other = job_wait(lorahub(alice, catalog, budget=3), Job.FINISHED, 120, worker)
    assert other.status == Status.SUCCEEDED, other.error


def test_the_web_checks_a_kept_connection_before_using_it(alice):
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    dsn = connection.connection.info.dsn
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    close_old_connections()  # what Django does at the start of every request
    assert Job.objects.count() == 0  # a new connection, not a 500
    assert connection.connection.info.backend_pid != pid
