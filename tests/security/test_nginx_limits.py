"""deploy/nginx.conf, run by the real nginx, in front of an upstream that records what
reaches it: request bodies are bounded per path and in time before the app sees them, and
the app gets the client's Host (with its port) and address.

The upstream stands in for gunicorn because what is tested is nginx's own behaviour; the
slow-client tests (test_slow_clients.py) run the same file in front of gunicorn.
"""

import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from tests.security import nginx_server
from tests.services import require

MB = 1024 * 1024
UPLOAD_PATHS = ["/new/", "/alice/a/upload", "/api/models/alice/a/commit/main"]
UPLOAD_PATHS += ["/api/lfs/upload/ticket-1"]
# Pages without files, some shaped like the upload paths.
SMALL_PATHS = ["/accounts/login/", "/accounts/signup/", "/alice/a/edit", "/new/x"]
SMALL_PATHS += ["/api/repos/create", "/alice/a/upload/x"]


def shipped(directive: str) -> str:
    (value,) = re.findall(rf"^\s*{directive}\s+([^;]+);", nginx_server.SHIPPED.read_text(), re.M)
    return value


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # nginx keeps upstream connections alive

    def handle_request(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.seen.append((self.path, self.headers, len(body)))
        answer = f"{self.headers['Host']}|{self.headers['X-Forwarded-For']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = handle_request

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    nginx = nginx_server.binary()
    require(nginx is not None, "nginx")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    upstream.seen = []
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    run_dir = tmp_path_factory.mktemp("nginx-limits")
    process, port = nginx_server.start(nginx, upstream.server_address[1], run_dir)
    yield port, upstream.seen, run_dir, process
    process.terminate()
    process.wait(timeout=30)
    upstream.shutdown()


@pytest.fixture
def seen(proxy):
    proxy[1].clear()
    return proxy[1]


def post_head(path: str, length: int, host: str = "127.0.0.1") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def exchange(port: int, head: bytes, body: bytes = b"", timeout: float = 30) -> tuple[int, bytes]:
    """Send a request (the body as far as nginx takes it); the status and the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        try:
            s.sendall(body)
        except OSError:  # refused from its headers: nginx closed before the body went
            pass
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return int(data.split(b" ", 2)[1]), data


def temp_files(proxy) -> list[str]:
    """The request bodies nginx's workers hold in temporary files (unlinked once opened,
    so found among their open files)."""
    master = psutil.Process(proxy[3].pid)
    folder = str(proxy[2] / "client_body")
    held = []
    for worker in master.children():
        fds = Path(f"/proc/{worker.pid}/fd")
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile
                continue
            if target.startswith(folder):
                held.append(target)
    return held


@pytest.mark.parametrize("path", SMALL_PATHS)
def test_a_large_body_to_a_page_without_files_is_refused_before_the_app(proxy, seen, path):
    port = proxy[0]
    status, answer = exchange(port, post_head(path, 2 * MB), b"x" * 2 * MB)
    assert status == 413 and b"nginx" in answer
    assert seen == [] and temp_files(proxy) == []
    if path == SMALL_PATHS[0]:  # a body without a length is cut at the limit as it comes
        chunked = post_head(path, 0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
        body = b"".join(b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024) for _ in range(32))
        assert exchange(port, chunked, body + b"0\r\n\r\n")[0] == 413
        assert seen == []
    # A form's size still passes.
    assert exchange(port, post_head(path, 100_000), b"x" * 100_000)[0] == 200
    assert [(p, n) for p, _, n in seen] == [(path, 100_000)]


@pytest.mark.parametrize("path", UPLOAD_PATHS)
def test_paths_that_take_adapter_files_accept_large_bodies(proxy, seen, path):
    port = proxy[0]
    status, _ = exchange(port, post_head(path, 3 * MB), b"x" * 3 * MB)
    assert status == 200 and [(p, n) for p, _, n in seen] == [(path, 3 * MB)]
    # Up to the largest adapter file and its form, announced: refused beyond that.
    assert exchange(port, post_head(path, 2200 * MB))[0] == 413


def test_job_forms_take_their_example_files(proxy, seen):
    port = proxy[0]
    assert exchange(port, post_head("/jobs/new/lorahub/", 3 * MB), b"x" * 3 * MB)[0] == 200
    assert exchange(port, post_head("/jobs/new/lorahub/", 46 * MB))[0] == 413
    assert len(seen) == 1


def test_a_stalled_body_is_cut_and_its_file_removed(proxy, seen):
    """The attack held a temporary file by sending a byte every 40 s."""
    port = proxy[0]
    timeout = int(shipped("client_body_timeout").removesuffix("s"))
    assert timeout <= 20
    with socket.create_connection(("127.0.0.1", port), timeout=timeout + 30) as s:
        s.sendall(post_head("/alice/a/upload", 100 * MB) + b"x" * 2 * MB)
        time.sleep(1)
        assert temp_files(proxy)  # nginx holds what came so far
        started = time.monotonic()
        # The next byte would come 40 s later: nginx gives up first.
        try:
            answer = s.recv(65536)
        except ConnectionResetError:
            answer = b""
        took = time.monotonic() - started
    assert answer in (b"",) or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert took < timeout + 5, took
    assert seen == [] and temp_files(proxy) == []


def test_large_bodies_at_once_are_bounded_per_address(proxy, seen):
    port = proxy[0]
    limit = int(shipped("limit_conn bodies_per_ip"))
    assert 5 <= limit <= 8  # huggingface_hub's 5 LFS uploads at once, and little more
    held = []
    try:
        for _ in range(limit):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(post_head("/new/", 100 * MB) + b"x" * 1000)
            held.append(s)
        time.sleep(0.5)  # nginx has taken their heads
        assert exchange(port, post_head("/alice/a/upload", 1000), b"x" * 1000)[0] == 503
        # Other pages still answer that address.
        assert exchange(port, post_head("/accounts/login/", 10), b"x" * 10)[0] == 200
    finally:
        for s in held:
            s.close()


def test_the_app_gets_the_host_with_its_port_and_the_client_address(proxy, seen):
    port = proxy[0]
    get = (
        b"GET /api/models HTTP/1.1\r\nHost: hub.example.org:8000\r\n"
        b"X-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n"
    )
    status, answer = exchange(port, get)
    assert status == 200
    # The last address is the one nginx saw: the app takes it (LORAHUB_PROXY_HOPS=1), not
    # the one the client wrote.
    assert answer.endswith(b"\r\n\r\nhub.example.org:8000|203.0.113.9, 127.0.0.1")


def test_the_proxy_answers_its_health_check_itself(proxy, seen):
    port = proxy[0]
    get = b"GET /nginx-health HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n"
    assert exchange(port, get)[0] == 200 and seen == []
