"""Where a catalog page spends its database time: each SQL query of one render, explained.

    python -m bench.catalog_profile "/adapters/?q=legal" [more paths]

Renders each path in-process against the seeded benchmark database (run the catalog
benchmark once first), then prints every query with EXPLAIN (ANALYZE, BUFFERS), slowest
first.
"""

import sys
import time

from bench import catalog_db
from bench.catalog_latency import VAR_DIR


def profile(path: str, *, explain_top: int = 4) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.get(path)  # warm caches: template loading, first connection
    with CaptureQueriesContext(connection) as ctx:
        start = time.perf_counter()
        response = client.get(path)
        total_ms = 1000 * (time.perf_counter() - start)
    queries = sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))
    sql_ms = 1000 * sum(float(q["time"]) for q in queries)
    print(
        f"== {path}: {response.status_code}, {total_ms:.1f} ms, {len(queries)} queries, "
        f"{sql_ms:.1f} ms in SQL"
    )
    for query in queries:
        print(f"{1000 * float(query['time']):8.1f} ms  {query['sql'][:160]}")
    with connection.cursor() as cursor:
        for query in queries[:explain_top]:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            print("\n" + query["sql"][:400])
            print("\n".join(row[0] for row in cursor.fetchall()))


def main(paths: list[str]) -> None:
    catalog_db.setup_django(VAR_DIR)
    for path in paths:
        profile(path)


if __name__ == "__main__":
    main(sys.argv[1:])
