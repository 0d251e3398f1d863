"""Latency and throughput of GET requests against a running server (loopback only)."""

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarise(latencies_s: list[float], wall_s: float) -> dict[str, float]:
    ms = sorted(1000 * x for x in latencies_s)
    return {
        "requests": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(ms[-1], 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "rps": round(len(ms) / wall_s, 1),
    }


def timed_get(session: requests.Session, url: str, check: Callable[[bytes], bool]) -> float:
    start = time.perf_counter()
    response = session.get(url, timeout=30)
    elapsed = time.perf_counter() - start
    if response.status_code != 200 or not check(response.content):
        raise AssertionError(f"GET {url}: {response.status_code}, unexpected body")
    return elapsed


def measure(
    url: str, *, requests_n: int, warmup: int, check: Callable[[bytes], bool]
) -> dict[str, float]:
    """Sequential requests from one client: the latency one user sees on an idle server."""
    with requests.Session() as session:
        for _ in range(warmup):
            timed_get(session, url, check)
        start = time.perf_counter()
        latencies = [timed_get(session, url, check) for _ in range(requests_n)]
        return summarise(latencies, time.perf_counter() - start)


def measure_concurrent(
    url: str, *, requests_n: int, clients: int, check: Callable[[bytes], bool]
) -> dict[str, float]:
    """`clients` concurrent clients sharing `requests_n` requests: throughput under load."""

    def client(n: int) -> list[float]:
        with requests.Session() as session:
            return [timed_get(session, url, check) for _ in range(n)]

    shares = [requests_n // clients + (i < requests_n % clients) for i in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, shares))
    wall = time.perf_counter() - start
    return summarise([x for r in results for x in r], wall) | {"clients": clients}
