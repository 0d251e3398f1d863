"""Benchmarks: `python -m bench [name ...]` runs all of them, or the named ones.

Each benchmark is a module with a `main()` that writes `bench/results/<name>.json`.
"""

import importlib
import sys

BENCHMARKS = {
    "catalog": "bench.catalog_latency",
    "catalog_upload": "bench.catalog_upload",
    "hfapi_list": "bench.hfapi_list",
    "hfapi_download": "bench.hfapi_download",
    "hfapi_upload": "bench.hfapi_upload",
    "jobs": "bench.jobs_throughput",
    "engine_quality": "bench.engine_quality",
    "engine_choice": "bench.engine_choice",
    "engine_speed": "bench.engine_speed",
    "engine_screening": "bench.engine_screening",
    "engine_lego": "bench.engine_lego",
    "engine_merge": "bench.engine_merge",
    "hostile_inputs": "bench.hostile_inputs",
    "storage_copy": "bench.storage_copy",
    "storage_sweep": "bench.storage_sweep",
}


def run(names: list[str]) -> None:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for name in names or list(BENCHMARKS):
        print(f"== {name}", flush=True)
        importlib.import_module(BENCHMARKS[name]).main()


if __name__ == "__main__":
    run(sys.argv[1:])
