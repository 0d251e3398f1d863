"""A real gunicorn server for the catalog benchmarks, with production-like settings.

The server runs in its own process group against the benchmark database; the benchmark
process is the HTTP client and samples the workers' memory from outside.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def worker_pids(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def url(self, path: str) -> str:
        return self.base_url + path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, var_dir: Path) -> dict[str, str]:
    """Environment of a production-like deployment (DEBUG off, a real secret key)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY="bench-only-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LORAHUB_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="config.settings",
        LOG_LEVEL="WARNING",
    )
    return env


def collectstatic(env: dict[str, str]) -> None:
    """DEBUG=0 serves hashed static files from STATIC_ROOT, as in production."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


@contextmanager
def gunicorn_server(
    database_url: str, var_dir: Path, *, workers: int = 2, timeout_s: int = 300
) -> Iterator[Server]:
    var_dir.mkdir(parents=True, exist_ok=True)
    env = server_env(database_url, var_dir)
    collectstatic(env)
    port = free_port()
    log_path = var_dir / "gunicorn.log"
    cmd = [
        str(GUNICORN),
        "config.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        f"--timeout={timeout_s}",
        "--log-level=warning",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        wait_until_ready(server, workers)
        yield server
    finally:
        stop(proc)


def wait_until_ready(server: Server, workers: int, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log_tail()}")
        try:
            status = requests.get(server.url("/"), timeout=30).status_code
        except requests.RequestException:
            status = None
        if status is not None and status >= 500:
            raise RuntimeError(f"the site answers {status}:\n{server.log_tail()}")
        if status == 200 and len(server.worker_pids()) == workers:
            return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn not ready in {deadline_s} s:\n{server.log_tail()}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
