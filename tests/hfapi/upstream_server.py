"""A second instance of this site, in its own process with its own database and files,
acting as the upstream Hugging Face Hub for import and push tests."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[2]
SEED = """
import os
from pathlib import Path
from django.contrib.auth import get_user_model
from hfapi.tokens import token_create
from hub.services.adapters import adapter_create

folder = Path(os.environ["SEED_ADAPTER_DIR"])
files = {p.name: p for p in folder.iterdir() if p.is_file()}
carol = get_user_model().objects.create_user("carol", "carol@example.com", "carol-password-1")
adapter_create(owner=carol, name="upstream-lora", files=files, license="mit")
adapter_create(owner=carol, name="hidden-lora", files=files, private=True)
print("TOKEN=" + token_create(user=carol, name="upstream", scope="write")[1])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(var_dir: Path, adapter_dir: Path) -> tuple[subprocess.Popen, str, str]:
    """Migrate, seed (user carol, a write token, a public and a private adapter) and run.

    Returns the server process, its URL and carol's token.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}",
        LORAHUB_VAR_DIR=str(var_dir),
        MEDIA_ROOT=str(var_dir / "media"),
        SEED_ADAPTER_DIR=str(adapter_dir),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    run = dict(env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    subprocess.run([*manage, "migrate", "--noinput"], **run)
    seeded = subprocess.run([*manage, "shell", "-c", SEED], **run)
    token = seeded.stdout.strip().rsplit("TOKEN=", 1)[1].split()[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(var_dir / "server.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{url}/api/models", timeout=2).status_code == 200:
                return process, url, token
        except httpx2.TransportError:
            time.sleep(0.3)
    process.kill()
    log_text = (var_dir / "server.log").read_text()
    raise RuntimeError(f"the upstream server did not start:\n{log_text}")
