"""The site under gunicorn with the shipped worker settings, on the test database."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
GET_LOGIN = b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    """The test database, as a DATABASE_URL for a server process."""
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start(
    database_url: str, var_dir: Path, env: dict | None = None, ready: bytes = GET_LOGIN
) -> tuple[subprocess.Popen, int]:
    """gunicorn (3 sync workers and the timeout of the Dockerfile) serving this tree, with
    `env` added to its environment; returns the process and its port once `ready` is
    answered with 200."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LORAHUB_VAR_DIR": str(var_dir),
        "MEDIA_ROOT": str(var_dir / "media"),
        "FILE_UPLOAD_TEMP_DIR": str(var_dir / "tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # The tests' sessions must be valid there: the same key (not one generated anew).
        "SECRET_KEY": settings.SECRET_KEY,
        **(env or {}),
    }
    (var_dir / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(var_dir / "gunicorn.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
        + ["--bind", f"127.0.0.1:{port}", "--workers", "3", "--timeout", "120"]
        + ["--preload"],  # the app is imported once, not by each worker: a quicker start
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240  # booting 3 workers on a loaded 2-core machine
    while time.monotonic() < deadline:
        try:
            status = raw_request(port, ready, timeout=60)[0]
            if status == 200:
                return process, port
        except (OSError, IndexError, ValueError):  # not listening yet, or a cut answer
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("gunicorn did not start:\n" + (var_dir / "gunicorn.log").read_text())


def stop(process: subprocess.Popen) -> None:
    """A quick shutdown (SIGQUIT): no request of a test is worth waiting for."""
    process.send_signal(signal.SIGQUIT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def raw_request(port: int, head: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """Send `head` (request line and headers, no body even if Content-Length says so) and
    read the answer until the server closes: (status, response bytes). A server that waits
    for the body first times out here."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data
