"""Peak memory of the web process while a 512 MiB adapter is uploaded through the form.

Logs in, then POSTs adapter_config.json and a 512 MiB adapter_model.safetensors to the
"new adapter" form of a gunicorn server (DEBUG=0, 2 workers), the multipart body streamed
from disk. Every 50 ms the workers' RSS is sampled; the kernel's own peak (VmHWM, reset
before the upload) is read afterwards. A plain file copy of the same file gives the speed
of the disk for comparison. The uploaded adapter is deleted afterwards, so the catalog
stays as seeded. Writes bench/results/catalog_upload.json.
"""

import re
import shutil
import time

import requests

from bench import catalog_db
from bench.catalog_big_adapter import big_adapter
from bench.catalog_latency import N_ADAPTERS, VAR_DIR, prepare_database
from bench.catalog_memory import MB, RssSampler, peak_rss, reset_peak
from bench.catalog_multipart import MultipartBody, post_multipart
from bench.catalog_report import ROOT, machine_info, write_result
from bench.catalog_server import gunicorn_server

USERNAME, PASSWORD = "bench-uploader", "bench-uploader-password"
ADAPTER_NAME = "llama2-7b-attention-r128"
TARGET_GROWTH_MB = 50
CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def uploader():
    from django.contrib.auth import get_user_model

    from hub.models import Adapter
    from hub.services.adapters import adapter_delete

    user, created = get_user_model().objects.get_or_create(username=USERNAME)
    if created or not user.check_password(PASSWORD):
        user.set_password(PASSWORD)
        user.save()
    for adapter in Adapter.objects.filter(owner=user):  # left by an interrupted run
        adapter_delete(adapter=adapter)
    return user


def csrf_token(session: requests.Session, url: str) -> str:
    response = session.get(url, timeout=30)
    response.raise_for_status()
    match = CSRF_INPUT.search(response.content)
    if match is None:
        raise RuntimeError(f"no CSRF token in the form at {url}")
    return match[1].decode()


def log_in(session: requests.Session, base_url: str) -> None:
    url = base_url + "/accounts/login/"
    token = csrf_token(session, url)
    response = session.post(
        url,
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302:
        raise RuntimeError(f"login failed: {response.status_code}")


def copy_speed(source, var_dir) -> float:
    """Seconds for a plain copy of `source` (its pages are already cached by then)."""
    target = var_dir / "copy-of-upload"
    start = time.perf_counter()
    shutil.copyfile(source, target)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def main() -> dict:
    dataset = prepare_database(N_ADAPTERS)
    folder = big_adapter()
    files = [
        ("files", folder / "adapter_config.json"),
        ("files", folder / "adapter_model.safetensors"),
    ]
    user = uploader()
    result = {"benchmark": "catalog_upload", "machine": machine_info(), "dataset": dataset}

    with gunicorn_server(catalog_db.DATABASE_URL, VAR_DIR) as server, requests.Session() as s:
        log_in(s, server.base_url)
        fields = {
            "csrfmiddlewaretoken": csrf_token(s, server.url("/new/")),
            "name": ADAPTER_NAME,
            "task": "text-generation",
            "license": "apache-2.0",
            "tags": "benchmark, llama",
            "description": "A large adapter uploaded by the benchmark.",
        }
        body = MultipartBody(fields, files)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in s.cookies.items())}
        workers = server.worker_pids()
        hwm_reset = all(reset_peak(pid) for pid in workers)
        with RssSampler(workers, interval_s=0.05) as sampler:
            response, content, seconds = post_multipart(server.url("/new/"), body, headers)
        if response.status != 302:
            raise RuntimeError(f"upload refused ({response.status}): {content[:2000]!r}")
        pid = sampler.busiest()
        hwm = peak_rss(pid)

    from hub.models import Adapter
    from hub.services.adapters import adapter_delete

    adapter = Adapter.objects.get(owner=user, name=ADAPTER_NAME)
    stored = {f.filename: f.blob.size for f in adapter.current_version.files.all()}
    adapter_delete(adapter=adapter)
    size = len(body)
    copy_s = copy_speed(folder / "adapter_model.safetensors", VAR_DIR)
    result |= {
        "upload": {
            "body_mb": round(size / MB, 1),
            "stored_files": stored,
            "seconds": round(seconds, 2),
            "mb_per_s": round(size / MB / seconds, 1),
            "plain_copy_seconds": round(copy_s, 2),
            "time_vs_plain_copy": round(seconds / copy_s, 1),
        },
        "memory": {
            "worker_baseline_rss_mb": round(sampler.baseline[pid] / MB, 1),
            "worker_peak_rss_sampled_mb": round(sampler.peak[pid] / MB, 1),
            "worker_peak_rss_vmhwm_mb": round(hwm / MB, 1) if hwm_reset else None,
            "growth_mb": round(
                (max(sampler.peak[pid], hwm if hwm_reset else 0) - sampler.baseline[pid]) / MB, 1
            ),
            "samples": sampler.samples,
            "sample_interval_ms": 50,
            "target_growth_mb": TARGET_GROWTH_MB,
        },
    }
    result["memory"]["meets_target"] = result["memory"]["growth_mb"] < TARGET_GROWTH_MB
    print(result["upload"], result["memory"], sep="\n")
    written = write_result("catalog_upload", result)
    print(f"wrote {written.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
