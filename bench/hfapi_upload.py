"""Uploading a large adapter with huggingface_hub: through Xet (the default) and through LFS.

A generated adapter (Llama-2-7B attention LoRA shapes, float32, LORAHUB_BENCH_UPLOAD_MB,
default 100 MiB) is pushed with `upload_folder` to gunicorn (DEBUG=0, 1 worker) on a
database and storage of its own, once with hf_xet as installed and once with Xet turned
off in the client (the LFS batch API). Then a second version that changes 1% of the
weights (one contiguous run of bytes in the middle) is pushed the same way. Reported per
path and version: wall time, the web workers' peak RSS growth, and the bytes the server
stored: xorbs (Xet's content-addressed chunks) and blobs (every file, once by sha256).
Writes bench/results/hfapi_upload.json.
"""

import json
import logging
import os
import shutil
import time
from pathlib import Path

import psycopg

from bench.catalog_big_adapter import adapter_config, tensor_shapes, write_safetensors
from bench.catalog_db import PG_SERVER
from bench.catalog_memory import MB, RssSampler
from bench.catalog_report import ROOT, machine_info, write_result
from bench.catalog_server import gunicorn_server

DB_NAME = "lorahub_bench_upload"
DATABASE_URL = f"{PG_SERVER}/{DB_NAME}"
VAR_DIR = ROOT / "var" / "bench-upload"
SIZE_MB = int(os.environ.get("LORAHUB_BENCH_UPLOAD_MB", 100))
CHANGED = 0.01


def adapter_folders(work: Path, seed: int) -> tuple[Path, Path]:
    """v1 and v2 of the adapter: v2 differs in 1% of the weights' bytes."""
    hidden_rank_bytes = 32 * 4 * 2 * 4096 * 4  # layers * modules * (A, B) * hidden * float32
    rank = max(1, SIZE_MB * 1024 * 1024 // hidden_rank_bytes)
    first, second = work / "v1", work / "v2"
    first.mkdir(parents=True)
    config = adapter_config() | {"r": rank, "lora_alpha": 2 * rank}
    (first / "adapter_config.json").write_text(json.dumps(config, indent=2))
    shapes = {
        name: (rank, cols) if rows < cols else (rows, rank)
        for name, (rows, cols) in tensor_shapes().items()
    }
    write_safetensors(first / "adapter_model.safetensors", shapes, seed=seed)
    shutil.copytree(first, second)
    weights = second / "adapter_model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(int(size * CHANGED)))
    return first, second


def fresh_database() -> None:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    shutil.rmtree(VAR_DIR, ignore_errors=True)
    os.environ.update(DATABASE_URL=DATABASE_URL, LORAHUB_VAR_DIR=str(VAR_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def write_token() -> str:
    from django.contrib.auth import get_user_model

    from hfapi.tokens import token_create

    user = get_user_model().objects.create_user("bench-upload", "b@example.com", "x" * 20)
    return token_create(user=user, name="bench", scope="write")[1]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def stored_bytes() -> dict[str, int]:
    from django.conf import settings

    media = Path(settings.MEDIA_ROOT)
    return {"xorbs": folder_bytes(media / "hfapi-xet"), "blobs": folder_bytes(media / "blobs")}


def push(server, token: str, repo: str, folder: Path, xet: bool) -> dict:
    from huggingface_hub import HfApi, constants

    constants.HF_HUB_DISABLE_XET = not xet  # read by the client at each upload
    api = HfApi(endpoint=server.base_url, token=token)
    api.create_repo(repo, exist_ok=True)
    before = stored_bytes()
    with RssSampler(server.worker_pids()) as rss:
        start = time.perf_counter()
        api.upload_folder(repo_id=f"bench-upload/{repo}", folder_path=folder)
        elapsed = time.perf_counter() - start
    after = stored_bytes()
    growth = max(rss.peak[pid] - rss.baseline[pid] for pid in rss.processes)
    return {
        "s": round(elapsed, 2),
        "MB_per_s": round(folder_bytes(folder) / MB / elapsed, 1),
        "worker_peak_rss_growth_MB": round(growth / MB, 1),
        "stored_MB": {k: round((after[k] - before[k]) / MB, 2) for k in after},
    }


def main() -> dict:
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    fresh_database()
    token = write_token()
    work = VAR_DIR / "adapters"
    paths = {}
    with gunicorn_server(DATABASE_URL, VAR_DIR, workers=1) as server:
        for seed, (name, xet) in enumerate((("xet", True), ("lfs", False))):
            # Contents of their own: blobs are stored once by sha256 across repositories.
            first, second = adapter_folders(work / name, seed)
            paths[name] = {
                "v1": push(server, token, f"big-{name}", first, xet),
                "v2_1pct_changed": push(server, token, f"big-{name}", second, xet),
            }
    result = {
        "benchmark": "hfapi_upload",
        "machine": machine_info(),
        "adapter_MB": SIZE_MB,
        "client": "huggingface_hub.upload_folder (hf_xet as installed; LFS with Xet off)",
        "server": "gunicorn, DEBUG=0, 1 worker, file-system storage",
        **paths,
    }
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(paths, indent=1))
    written = write_result("hfapi_upload", result)
    print(f"wrote {written.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
