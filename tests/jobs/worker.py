"""A real `celery -A config worker` in a subprocess, on the test database and test Redis."""

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).with_name("celery")


def test_database_url() -> str:
    """The database pytest-django created, as a URL the worker's settings understand."""
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


class Worker:
    def __init__(
        self,
        broker_url: str,
        media_root: Path,
        work_dir: Path,
        log_dir: Path,
        queue: str = "gpu",
        **env,
    ):
        self.broker_url = broker_url
        self.queue = queue
        self.media_root = media_root
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.extra_env = {k: str(v) for k, v in env.items()}
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def start(self, timeout: float = 60) -> "Worker":
        name = f"test-{uuid.uuid4().hex[:8]}"
        self.log_path = self.log_dir / f"{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "DB_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": self.broker_url,
            "COMPOSER_QUEUE": self.queue,
            "MEDIA_ROOT": str(self.media_root),
            "COMPOSER_WORK_DIR": str(self.work_dir),
            "COMPOSER_DEVICE": "cpu",
            "COMPOSER_HEARTBEAT_SECONDS": "0.5",
            "COMPOSER_HEARTBEAT_STALE_SECONDS": "5",
            "COMPOSER_PROGRESS_SECONDS": "0.2",
            "COMPOSER_CANCEL_POLL_SECONDS": "0.1",
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            **self.extra_env,
        }
        cmd = [
            str(CELERY), "-A", "config", "worker", "-Q", self.queue, "-c", "1", "-P", "prefork",
            "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-l", "INFO",
        ]  # fmt: skip
        log = open(self.log_path, "wb")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log_tail()}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its children), like a lost machine."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def docker_stop(self, grace: float = 20) -> bool:
        """What `docker stop` does: SIGTERM to the main process only, SIGKILL to all that is
        left after `grace` seconds. Whether the worker had exited by itself."""
        if not self.proc or self.proc.poll() is not None:
            return True
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_bytes()[-n:].decode(errors="replace") if self.log_path else ""


@contextmanager
def celery_sending_to(broker_url: str, queue: str):
    """This process sends its Celery messages to `broker_url`, on `queue`."""
    from django.conf import settings

    from config.celery import app

    saved = app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_routes
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = {
        "visibility_timeout": 3600,
        **settings.BROKER_REDIS_TIMEOUTS,
    }
    app.conf.task_routes = {"composer.tasks.*": {"queue": queue}}
    reset_producers(app)
    try:
        yield broker_url
    finally:
        app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_routes = saved
        reset_producers(app)


def reset_producers(app) -> None:
    """Forget connections and routes built from the previous configuration."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)  # a cached_property holding the old routes
