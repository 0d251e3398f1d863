"""snapshot_download of a 200 MiB adapter from this site vs a plain static file server.

The adapter (Llama-2-7B attention LoRA shapes at r=50, float32: 200 MiB of safetensors,
written by bench.catalog_big_adapter's streaming writer) is added to the catalog
benchmark's database. huggingface_hub's `snapshot_download` then fetches it from gunicorn
(DEBUG=0, 2 workers: model_info, tree, HEAD and GET per file), and the same files are
fetched from `python -m http.server` with the client's own `http_get`. Runs alternate,
after one warm-up of each; the median of each side is reported, with the ratio (our time
/ static time). The web workers' peak RSS growth during our downloads is sampled too.
The adapter is deleted afterwards. Writes bench/results/hfapi_download.json.
"""

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import catalog_db
from bench.catalog_big_adapter import adapter_config, tensor_shapes, write_safetensors
from bench.catalog_latency import N_ADAPTERS, VAR_DIR, prepare_database
from bench.catalog_memory import MB, RssSampler
from bench.catalog_report import ROOT, machine_info, write_result
from bench.catalog_server import free_port, gunicorn_server, stop

RANK = 50  # 32 layers * 4 modules * (A + B) * 50 * 4096 * 4 bytes = 200 MiB
RUNS = int(os.environ.get("LORAHUB_BENCH_DOWNLOAD_RUNS", 3))
OWNER, NAME = "bench-hfapi", "llama2-7b-attention-r50"
CACHE = Path.home() / ".cache" / "lorahub" / "hfapi-download-v1"


def adapter_folder() -> Path:
    weights = CACHE / "adapter_model.safetensors"
    if not weights.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        shapes = {
            name: (RANK, cols) if rows < cols else (rows, RANK)  # A: [r, in], B: [out, r]
            for name, (rows, cols) in tensor_shapes().items()
        }
        partial = weights.with_suffix(".partial")
        write_safetensors(partial, shapes)
        partial.rename(weights)
    config = adapter_config() | {"r": RANK, "lora_alpha": 2 * RANK}
    (CACHE / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return CACHE


def catalog_adapter(folder: Path):
    from django.contrib.auth import get_user_model

    from hub.models import Adapter
    from hub.services.adapters import adapter_create, adapter_delete

    user, _ = get_user_model().objects.get_or_create(username=OWNER)
    for old in Adapter.objects.filter(owner=user):  # left by an interrupted run
        adapter_delete(adapter=old)
    files = {p.name: p for p in folder.iterdir() if p.suffix in (".json", ".safetensors")}
    return adapter_create(owner=user, name=NAME, files=files)


def static_server(folder: Path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(1.0)
    return proc, f"http://127.0.0.1:{port}"


def ours(endpoint: str, sampler_pids: list[int]) -> tuple[float, int]:
    from huggingface_hub import snapshot_download

    with tempfile.TemporaryDirectory(dir=VAR_DIR) as cache:
        with RssSampler(sampler_pids) as rss:
            start = time.perf_counter()
            snapshot_download(f"{OWNER}/{NAME}", endpoint=endpoint, cache_dir=cache, token=False)
            elapsed = time.perf_counter() - start
    return elapsed, max((rss.peak[pid] - rss.baseline[pid] for pid in rss.processes), default=0)


def static(base_url: str, names: list[str]) -> float:
    from huggingface_hub.file_download import http_get

    with tempfile.TemporaryDirectory(dir=VAR_DIR) as target:
        start = time.perf_counter()
        for name in names:
            with open(Path(target, name), "wb") as f:
                http_get(f"{base_url}/{name}", f)
        return time.perf_counter() - start


def warm_up(endpoint: str, static_url: str, names: list[str]) -> None:
    """Load the app in every worker (each imports it on its first request, which would
    count as memory growth) and bring the files into the page cache for both sides."""
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=False)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: api.model_info(f"{OWNER}/{NAME}"), range(16)))
    ours(endpoint, [])
    static(static_url, names)


def main() -> dict:
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per request
    dataset = prepare_database(N_ADAPTERS)
    folder = adapter_folder()
    names = ["adapter_config.json", "adapter_model.safetensors"]
    total = sum((folder / n).stat().st_size for n in names)
    adapter = catalog_adapter(folder)
    times_ours, times_static, rss_growth = [], [], []
    try:
        with gunicorn_server(catalog_db.DATABASE_URL, VAR_DIR) as server:
            proc, static_url = static_server(folder)
            try:
                warm_up(server.base_url, static_url, names)
                for _ in range(RUNS):
                    elapsed, growth = ours(server.base_url, server.worker_pids())
                    times_ours.append(elapsed)
                    rss_growth.append(growth)
                    times_static.append(static(static_url, names))
            finally:
                stop(proc)
    finally:
        from hub.services.adapters import adapter_delete

        adapter_delete(adapter=adapter)
    ours_s, static_s = statistics.median(times_ours), statistics.median(times_static)
    result = {
        "benchmark": "hfapi_download",
        "machine": machine_info(),
        "dataset": dataset | {"adapter_bytes": total},
        "runs": RUNS,
        "ours": {
            "client": "huggingface_hub.snapshot_download",
            "server": "gunicorn, DEBUG=0, 2 workers",
            "median_s": round(ours_s, 3),
            "MB_per_s": round(total / MB / ours_s, 1),
            "runs_s": [round(t, 3) for t in times_ours],
            "worker_peak_rss_growth_MB": round(max(rss_growth) / MB, 1),
        },
        "static": {
            "client": "huggingface_hub.file_download.http_get",
            "server": "python -m http.server",
            "median_s": round(static_s, 3),
            "MB_per_s": round(total / MB / static_s, 1),
            "runs_s": [round(t, 3) for t in times_static],
        },
        "time_ratio_ours_over_static": round(ours_s / static_s, 2),
    }
    print(
        f"ours {result['ours']['MB_per_s']} MB/s, static {result['static']['MB_per_s']} MB/s, "
        f"ratio {result['time_ratio_ours_over_static']}"
    )
    written = write_result("hfapi_download", result)
    print(f"wrote {written.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
