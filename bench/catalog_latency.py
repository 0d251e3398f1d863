"""Catalog latency: list, filtered list, sorts and search over a 100,000-adapter catalog.

Seeds (or reuses) the `lorahub_bench` PostgreSQL database, starts gunicorn with
production-like settings (DEBUG=0, 2 workers) and times each page from this process over
loopback: p50/p95/p99 of sequential requests after a warm-up, plus throughput with
concurrent clients. Each page is also rendered once in-process to count its SQL queries.
Writes bench/results/catalog.json.

Environment: LORAHUB_BENCH_ADAPTERS (default 100000), LORAHUB_BENCH_REQUESTS (200).
"""

import os
import time
from urllib.parse import urlencode

from bench import catalog_db
from bench.catalog_http import measure, measure_concurrent
from bench.catalog_report import ROOT, machine_info, write_result
from bench.catalog_server import gunicorn_server

N_ADAPTERS = int(os.environ.get("LORAHUB_BENCH_ADAPTERS", 100_000))
REQUESTS = int(os.environ.get("LORAHUB_BENCH_REQUESTS", 200))
WARMUP = 20
CONCURRENT_CLIENTS = 4
VAR_DIR = ROOT / "var" / "bench"
TARGETS_P95_MS = {"list": 30, "search": 50}
CARD = b'class="adapter-card"'


def _url(**params) -> str:
    return "/adapters/" + (f"?{urlencode(params)}" if params else "")


# name: (path, kind of target). Every page must list at least one adapter.
SCENARIOS = {
    "home": ("/", "list"),
    "list_page_1": (_url(), "list"),
    "list_deep_page": (_url(page=2000), "list"),
    "list_filtered": (_url(base="meta-llama/Llama-3.1-8B", r=16, tag="instruction-tuned"), "list"),
    "sort_downloads": (_url(sort="downloads", task="translation"), "list"),
    "sort_newest": (_url(sort="newest"), "list"),
    "search_websearch": (_url(q='legal contracts -french "rank 16"'), "search"),
    "search_terms": (_url(q="python code review"), "search"),
    "search_common_word": (_url(q="summarization"), "search"),
    "search_typo": (_url(q="sumarizaton"), "search"),
}


def prepare_database(n: int) -> dict:
    """Seed the benchmark database unless a seed of the same key is already there."""
    catalog_db.setup_django(VAR_DIR)  # connects lazily: the database may not exist yet
    from django.core.management import call_command
    from django.db import connection

    from bench.catalog_seed import SEED_VERSION, catalog_seed

    key = f"{SEED_VERSION} n={n} migrations={catalog_db.migrations_hash()}"
    with catalog_db.seed_lock():
        if catalog_db.current_key() == key:
            return {"key": key, "seeded_now": False}
        connection.close()
        catalog_db.recreate()
        start = time.perf_counter()
        call_command("migrate", verbosity=0)
        catalog_seed(n)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (FULL, ANALYZE)")
            # FULL rewrites the table without a visibility map; index-only scans need one.
            cursor.execute("VACUUM")
        catalog_db.mark(key)
    return {"key": key, "seeded_now": True, "seed_s": round(time.perf_counter() - start, 1)}


def dataset_figures() -> dict:
    from hub.models import Adapter, AdapterFile, AdapterVersion

    return {
        "adapters": Adapter.objects.count(),
        "public": Adapter.objects.filter(private=False).count(),
        "versions": AdapterVersion.objects.count(),
        "files": AdapterFile.objects.count(),
        "tag_links": Adapter.tags.through.objects.count(),
    }


def query_profile(path: str) -> dict:
    """SQL queries and their database time for one in-process render of `path`, after a
    first render (the served pages were warm too: cached filter choices)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    Client().get(path)
    with CaptureQueriesContext(connection) as ctx:
        response = Client().get(path)
    assert response.status_code == 200, (path, response.status_code)
    slowest = max(ctx.captured_queries, key=lambda q: float(q["time"]))
    return {
        "queries": len(ctx.captured_queries),
        "sql_ms": round(1000 * sum(float(q["time"]) for q in ctx.captured_queries), 1),
        "slowest_sql_ms": round(1000 * float(slowest["time"]), 1),
        "slowest_sql": slowest["sql"][:300],
    }


def cache_miss_profile() -> dict:
    """What a list page costs when its cached filter choices have expired (once a minute
    per worker process)."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    Client().get(SCENARIOS["list_page_1"][0])  # a warm process: templates, URLs, connection
    cache.clear()
    with CaptureQueriesContext(connection) as ctx:
        start = time.perf_counter()
        Client().get(SCENARIOS["list_page_1"][0])
        total_ms = 1000 * (time.perf_counter() - start)
    sql_ms = 1000 * sum(float(q["time"]) for q in ctx.captured_queries)
    return {"render_ms": round(total_ms, 1), "sql_ms": round(sql_ms, 1)}


def main() -> dict:
    dataset = prepare_database(N_ADAPTERS) | dataset_figures()
    result = {
        "benchmark": "catalog",
        "machine": machine_info(),
        "dataset": dataset,
        "server": {"gunicorn_workers": 2, "settings": "DEBUG=0", "client": "requests, loopback"},
        "requests_per_scenario": REQUESTS,
        "warmup": WARMUP,
        "targets_p95_ms": TARGETS_P95_MS,
        "scenarios": {},
    }

    def has_cards(body: bytes) -> bool:
        return CARD in body

    with gunicorn_server(catalog_db.DATABASE_URL, VAR_DIR) as server:
        for name, (path, kind) in SCENARIOS.items():
            figures = measure(server.url(path), requests_n=REQUESTS, warmup=WARMUP, check=has_cards)
            figures["meets_target"] = figures["p95_ms"] < TARGETS_P95_MS[kind]
            result["scenarios"][name] = {"path": path, "kind": kind, **figures}
            print(f"{name:18} p50 {figures['p50_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms")
        path = SCENARIOS["list_page_1"][0]
        result["concurrent_list_page_1"] = measure_concurrent(
            server.url(path), requests_n=REQUESTS, clients=CONCURRENT_CLIENTS, check=has_cards
        )
    result["choices_cache_miss"] = cache_miss_profile()
    for name, (path, _) in SCENARIOS.items():
        result["scenarios"][name] |= query_profile(path)
    written = write_result("catalog", result)
    print(f"wrote {written.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
