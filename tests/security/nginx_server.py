"""nginx with the shipped configuration (deploy/nginx.conf) in front of a local upstream.

Only what must differ outside docker-compose is changed: the upstream address, the listen
address and where nginx keeps its temporary files, pid and logs. Every other directive is
the shipped file's.
"""

import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.security.gunicorn_server import ROOT, free_port

SHIPPED = ROOT / "deploy" / "nginx.conf"


def binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def _replace_once(text: str, old: str, new: str) -> str:
    # The shipped file changed shape: fail rather than test some other configuration.
    assert text.count(old) == 1, f"deploy/nginx.conf should contain {old!r} exactly once"
    return text.replace(old, new)


def config(upstream_port: int, listen_port: int, run_dir: Path) -> str:
    """The shipped configuration, pointed at 127.0.0.1:upstream_port and listening on
    127.0.0.1:listen_port, with its files under run_dir."""
    text = SHIPPED.read_text()
    text = _replace_once(text, "server web:8000;", f"server 127.0.0.1:{upstream_port};")
    text = _replace_once(text, "listen 80;", f"listen 127.0.0.1:{listen_port};")
    paths = "".join(
        f"    {kind}_temp_path {run_dir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    paths += f"    access_log {run_dir / 'access.log'};\n"
    return _replace_once(text, "http {\n", "http {\n" + paths)


def start(nginx: str, upstream_port: int, run_dir: Path) -> tuple[subprocess.Popen, int]:
    """nginx in the foreground; returns the process and its port once it accepts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(config(upstream_port, port, run_dir))
    # As root, nginx's workers would run as `nobody`, who cannot enter pytest's private
    # temporary folders: keep them as the current user (ignored when not root).
    user = f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}"
    error_log = run_dir / "error.log"
    process = subprocess.Popen(
        [nginx, "-p", str(run_dir), "-c", str(conf), "-e", str(error_log)]
        + ["-g", f"daemon off; pid {run_dir / 'nginx.pid'}; user {user};"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    log = error_log.read_text() if error_log.exists() else ""
    raise RuntimeError(f"nginx did not start:\n{log}")
