"""Hub API latency over a 100,000-adapter catalog, through the real huggingface_hub client.

Reuses the catalog benchmark's seeded PostgreSQL database (bench.catalog_latency) and its
gunicorn server (DEBUG=0, 2 workers). Each scenario is one client call, timed end to end
(request, JSON parse, ModelInfo objects): p50/p95/p99 after a warm-up. Writes
bench/results/hfapi_list.json.

Environment: LORAHUB_BENCH_ADAPTERS (default 100000), LORAHUB_BENCH_REQUESTS (200).
"""

import logging
import time

from bench import catalog_db
from bench.catalog_http import summarise
from bench.catalog_latency import N_ADAPTERS, REQUESTS, VAR_DIR, WARMUP, prepare_database
from bench.catalog_report import ROOT, machine_info, write_result
from bench.catalog_server import gunicorn_server

TARGET_P95_MS = 50


def scenarios(repo_id: str) -> dict:
    """name: a call on an HfApi returning something non-empty."""
    return {
        "list_models_limit_100": lambda api: list(api.list_models(limit=100)),
        "list_models_search": lambda api: list(api.list_models(search="legal", limit=50)),
        "list_models_filter_tag": lambda api: list(api.list_models(filter="sql", limit=50)),
        "list_models_author": lambda api: list(api.list_models(author="bench00000", limit=50)),
        "list_models_base_model": lambda api: list(
            api.list_models(filter="base_model:adapter:Qwen/Qwen2.5-7B", limit=50)
        ),
        "list_models_sort_created": lambda api: list(api.list_models(sort="created_at", limit=50)),
        "list_models_full_cardData": lambda api: list(
            api.list_models(limit=50, full=True, cardData=True)
        ),
        "model_info": lambda api: [api.model_info(repo_id)],
        "list_repo_files": lambda api: api.list_repo_files(repo_id),
    }


def timed(call, api) -> float:
    start = time.perf_counter()
    result = call(api)
    elapsed = time.perf_counter() - start
    if not result:
        raise RuntimeError("the call returned nothing")
    return elapsed


def main() -> dict:
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per request
    from huggingface_hub import HfApi

    dataset = prepare_database(N_ADAPTERS)
    from hub.models import Adapter

    dataset["adapters"] = Adapter.objects.count()
    sample = Adapter.objects.filter(private=False).select_related("owner").order_by("pk").first()
    result = {
        "benchmark": "hfapi_list",
        "machine": machine_info(),
        "dataset": dataset,
        "server": {"gunicorn_workers": 2, "settings": "DEBUG=0", "client": "huggingface_hub"},
        "requests_per_scenario": REQUESTS,
        "warmup": WARMUP,
        "target_p95_ms": TARGET_P95_MS,
        "scenarios": {},
    }
    with gunicorn_server(catalog_db.DATABASE_URL, VAR_DIR) as server:
        api = HfApi(endpoint=server.base_url, token=False)
        for name, call in scenarios(sample.full_name).items():
            for _ in range(WARMUP):
                timed(call, api)
            start = time.perf_counter()
            latencies = [timed(call, api) for _ in range(REQUESTS)]
            figures = summarise(latencies, time.perf_counter() - start)
            figures["meets_target"] = figures["p95_ms"] < TARGET_P95_MS
            result["scenarios"][name] = figures
            print(f"{name:28} p50 {figures['p50_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms")
    written = write_result("hfapi_list", result)
    print(f"wrote {written.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
