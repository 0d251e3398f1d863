"""Fixtures of the jobs tests: a real Celery worker, the test broker, toy catalog adapters."""

import threading
import time
import uuid

import pytest
from django.db import connection, transaction

from tests.jobs.worker import Worker, celery_sending_to, reset_producers
from tests.services import REDIS_HOST, REDIS_PORT, TEST_REDIS_URL, port_open, require


def wait_for(predicate, timeout: float = 60, interval: float = 0.05, message: str = ""):
    """Poll until `predicate()` is truthy; return its value or fail with `message`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s: {message}")


def lock_waiters() -> int:
    """Sessions of this database waiting for a lock now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def race(*calls, timeout: float = 60) -> list:
    """Run `calls` at once on PostgreSQL, each in a thread (and a connection) of its own, so
    that they really meet: writes to the jobs table wait behind a lock held here until every
    call waits for a lock (that one, or a row another call holds). Their results, in order."""
    from composer.models import Job

    results, errors = [None] * len(calls), []

    def run(i: int, call) -> None:
        try:
            results[i] = call()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
        finally:
            connection.close()  # this thread's own

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Job._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        for t in threads:
            t.start()
        wait_for(lambda: lock_waiters() >= len(calls), timeout, message="the calls never met")
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    return results


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users are created in almost every test here; real hashing would dominate their time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def worker_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs-worker")
    for sub in ("media", "work", "logs"):
        (root / sub).mkdir()
    return root


@pytest.fixture(scope="session")
def job_queue():
    """A queue of this test session's own: test sessions running at the same time on the
    machine share the test Redis database, and must not take each other's jobs."""
    return f"gpu-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def broker_url():
    require(port_open(REDIS_HOST, REDIS_PORT), "Redis on 127.0.0.1:6379")
    return TEST_REDIS_URL


@pytest.fixture(scope="module")
def worker_factory(django_db_setup, django_db_blocker, broker_url, job_queue, worker_dirs):
    """Start real workers on the test database; all are stopped at the end of the module."""
    with django_db_blocker.unblock():
        require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL) for a real worker")
    started = []

    def start(broker=None, **env) -> Worker:
        w = Worker(
            broker or broker_url,
            worker_dirs / "media",
            worker_dirs / "work",
            worker_dirs / "logs",
            job_queue,
            **env,
        )
        with django_db_blocker.unblock():
            w.start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture(scope="module")
def test_broker(broker_url, job_queue):
    """This process sends its Celery messages to the test Redis and the session's queue."""
    with celery_sending_to(broker_url, job_queue):
        yield broker_url


@pytest.fixture
def jobs_env(settings, test_broker, worker_dirs):
    """Share storage and scratch space with the workers; send to the test broker."""
    settings.MEDIA_ROOT = worker_dirs / "media"
    settings.COMPOSER_WORK_DIR = worker_dirs / "work"


@pytest.fixture(scope="session")
def toys():
    from tests.jobs.toys import toy_root

    return toy_root()


@pytest.fixture
def storage_dirs(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.COMPOSER_WORK_DIR = tmp_path / "work"


# A real S3-compatible store (`rclone serve s3`), one per test module.
@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    from tests.s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


@pytest.fixture
def on_s3(settings, s3, tmp_path):
    """This process stores through the bucket only (no media folder); a store a test
    stopped is started again after it."""
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage()}
    settings.MEDIA_ROOT = nowhere = tmp_path / "no-media-here"
    settings.COMPOSER_WORK_DIR = tmp_path / "web-work"
    settings.LORAHUB_S3_REDIRECT_MIN_BYTES = 4000  # the weights, not the config
    yield s3
    if s3.proc.poll() is not None:
        s3.start()
    assert not nowhere.exists()


def publish_toys(owner, toys, names):
    """Catalog adapters (through the catalog's upload service) for the toy adapters."""
    from hub.models import BaseModel
    from hub.services.adapters import adapter_create
    from tests.jobs.toys import ADAPTERS, LLAMA_NAME, T5_NAME

    made = {}
    for name in names:
        base = ADAPTERS[name][0]
        identifier = T5_NAME if base == "t5" else LLAMA_NAME
        folder = toys / "adapters" / name
        made[name] = adapter_create(
            owner=owner,
            name=name,
            files={f: folder / f for f in ("adapter_config.json", "adapter_model.safetensors")},
            base_model=identifier,
        )
        BaseModel.objects.filter(identifier=identifier).update(local_path=str(toys / base))
    return made


@pytest.fixture
def catalog(bob, toys, storage_dirs):
    """bob's public toy adapters: three compatible T5 ones, one T5 on other modules, one Llama."""
    return publish_toys(bob, toys, ["t5-a", "t5-b", "t5-c", "t5-qk", "llama-a"])


def job_wait(job, statuses, timeout: float = 90, worker=None):
    """Reload `job` until its status is one of `statuses`."""
    from composer.models import Job

    statuses = {statuses} if isinstance(statuses, str) else set(statuses)

    def done():
        job.refresh_from_db()
        return job.status in statuses

    tail = f"\nworker log:\n{worker.log_tail()}" if worker else ""
    wait_for(done, timeout, message=f"job {job.pk} never reached {statuses}{tail}")
    assert isinstance(job, Job)
    return job


def logged_in_context(browser, live_server, client, user, width: int):
    """A Chromium context at `width` px carrying `user`'s session (logged in through the
    test client, not the log-in form)."""
    from django.conf import settings

    client.force_login(user)
    context = browser.new_context(viewport={"width": width, "height": 900})
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    return context


def unzip_result(job, dest):
    """The stored result zip, extracted into `dest` (as a user would after downloading)."""
    import zipfile

    from django.core.files.storage import default_storage

    with default_storage.open(job.result_file.name, "rb") as fh, zipfile.ZipFile(fh) as zf:
        zf.extractall(dest)
    return dest


# The fast lane ("Try it"): its own queue and worker.
@pytest.fixture(scope="module")
def fast_queue():
    return f"fast-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def transfer_queue():
    return f"transfers-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def fast_lane(test_broker, job_queue, fast_queue, transfer_queue):
    """This process routes trials to the session's fast queue, transfers to its transfer
    queue (and jobs to its job queue)."""
    from config.celery import app

    saved = app.conf.task_routes
    app.conf.task_routes = {
        "composer.tasks.*": {"queue": job_queue},
        "composer.fast.*": {"queue": fast_queue},
        "hfapi.tasks.*": {"queue": transfer_queue},
    }
    reset_producers(app)
    yield fast_queue
    app.conf.task_routes = saved
    reset_producers(app)


@pytest.fixture
def idle_lane(test_broker):
    """Trials and transfers go to a queue no worker serves: they stay queued."""
    from config.celery import app

    saved = app.conf.task_routes
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    app.conf.task_routes = {"composer.fast.*": {"queue": queue}, "hfapi.tasks.*": {"queue": queue}}
    reset_producers(app)
    yield queue
    app.conf.task_routes = saved
    reset_producers(app)


def lane_worker(django_db_blocker, broker_url, queue, worker_dirs, **env):
    worker = Worker(
        broker_url,
        worker_dirs / "media",
        worker_dirs / "work",
        worker_dirs / "logs",
        queue,
        HF_HUB_OFFLINE="0",  # it downloads base models, imports and pushes
        **env,
    )
    with django_db_blocker.unblock():
        worker.start()
    return worker


@pytest.fixture(scope="module")
def fast_worker(django_db_setup, django_db_blocker, broker_url, fast_queue, worker_dirs):
    worker = lane_worker(django_db_blocker, broker_url, fast_queue, worker_dirs)
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def transfer_worker(django_db_setup, django_db_blocker, broker_url, transfer_queue, worker_dirs):
    worker = lane_worker(django_db_blocker, broker_url, transfer_queue, worker_dirs)
    yield worker
    worker.stop()
