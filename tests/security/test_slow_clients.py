"""Slow clients against the shipped deployment: gunicorn (3 sync workers) behind
deploy/nginx.conf.

Each slow client posts a form a byte at a time, twice a second, and never finishes. Straight
to gunicorn, such clients hold every worker and the site stops answering; through nginx,
which receives whole bodies before it passes them on, the site keeps answering.
"""

import select
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from tests.security import gunicorn_server, nginx_server
from tests.services import require

WORKERS = 3  # gunicorn_server's, as in the Dockerfile and docker-compose.yml
SLOW_CLIENTS = 2 * WORKERS
# A CSRF cookie of the right shape makes Django read the form body (for its token) instead
# of refusing the request at once: the view waits on the body, as a real login would.
SLOW_HEAD = (
    "POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n"
    f"Cookie: csrftoken={'a' * 32}\r\nConnection: close\r\n\r\n"
).encode()


@pytest.fixture(scope="module")
def servers(django_db_setup, tmp_path_factory):
    nginx = nginx_server.binary()
    require(nginx is not None, "nginx")
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    gunicorn, direct = gunicorn_server.start(gunicorn_server.test_database_url(), tmp_path)
    try:
        warm_up(direct)
        proxy, proxied = nginx_server.start(nginx, direct, tmp_path / "nginx")
        try:
            yield direct, proxied
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)
    finally:
        gunicorn_server.stop(gunicorn)


def warm_up(port: int) -> None:
    """One request for each worker at once, so that no timed request below meets a worker's
    slow first request (templates, database connection: seconds on a loaded machine)."""
    answers: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(
                gunicorn_server.raw_request(port, gunicorn_server.GET_LOGIN, timeout=120)[0]
            )
        )
        for _ in range(WORKERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    assert answers == [200] * WORKERS


@contextmanager
def slow_clients(port: int, count: int):
    """`count` connections whose request bodies trickle in; all connected (so queued
    before any later connection) when this yields the list of their sockets."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    stop = threading.Event()
    failures: list[OSError] = []

    def trickle():
        while not stop.wait(0.5):
            for s in sockets:
                try:
                    s.sendall(b"a")
                except OSError as error:  # the server gave up on it
                    failures.append(error)

    thread = threading.Thread(target=trickle, daemon=True)
    try:
        for s in sockets:
            s.sendall(SLOW_HEAD)
        thread.start()
        yield sockets, failures
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=10)
        for s in sockets:
            s.close()


def still_waiting(sockets: list[socket.socket], failures: list[OSError]) -> bool:
    """No slow client was answered, cut off or refused."""
    readable, _, _ = select.select(sockets, [], [], 0)
    return not readable and not failures


def test_slow_bodies_do_not_pin_the_workers_behind_nginx(servers):
    _, proxied = servers
    with slow_clients(proxied, SLOW_CLIENTS) as (sockets, failures):
        time.sleep(2)  # a few bytes of every body have arrived
        started = time.monotonic()
        # A generous deadline: the site answers in well under a second when it is free.
        status, _ = gunicorn_server.raw_request(proxied, gunicorn_server.GET_LOGIN, timeout=20)
        took = time.monotonic() - started
        assert status == 200, took
        assert still_waiting(sockets, failures)


def test_without_nginx_the_same_slow_bodies_pin_every_worker(servers):
    """The control: the protection above is nginx's, not something of gunicorn's."""
    direct, _ = servers
    with slow_clients(direct, SLOW_CLIENTS) as (sockets, failures):
        # The slow clients connected first, so the workers took them first: none is left.
        with pytest.raises(TimeoutError):
            gunicorn_server.raw_request(direct, gunicorn_server.GET_LOGIN, timeout=5)
        assert not failures
    # Once the slow clients are gone, the workers are free again.
    status, _ = gunicorn_server.raw_request(direct, gunicorn_server.GET_LOGIN, timeout=60)
    assert status == 200
