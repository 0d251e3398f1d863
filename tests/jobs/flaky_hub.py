"""A hub that misbehaves, in front of a real one: a local HTTP proxy that answers the
first file downloads with 503, cuts them short, trickles them or refuses them with 404,
and passes everything else (and later downloads) through unchanged."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length"}


class FlakyHub:
    def __init__(self, upstream: str, fault: str, times: int = 1):
        """`fault` ("503", "cut", "trickle", "404") spoils the first `times` GETs of a file."""
        self.upstream = upstream.rstrip("/")
        self.fault, self.left = fault, times
        self.file_gets = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FlakyHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _spoil(self, method: str, path: str) -> str | None:
        if method != "GET" or "/resolve/" not in path:
            return None
        with self.lock:
            self.file_gets += 1
            if self.left <= 0:
                return None
            self.left -= 1
            return self.fault

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self._forward("HEAD")

            def do_GET(self) -> None:
                self._forward("GET")

            def _forward(self, method: str) -> None:
                fault = hub._spoil(method, self.path)
                if fault in ("503", "404"):
                    body = b'{"error": "spoiled"}'
                    self.send_response(int(fault))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                r = requests.request(
                    method, hub.upstream + self.path, headers=headers,
                    allow_redirects=False, timeout=30,
                )  # fmt: skip
                body = r.content
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                if fault:
                    self.send_header("Connection", "close")
                self.end_headers()
                if method == "HEAD":
                    return
                if fault == "cut":  # half the bytes, then the connection drops
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                if fault == "trickle":  # 50 bytes a second
                    for i in range(0, len(body), 50):
                        self.wfile.write(body[i : i + 50])
                        self.wfile.flush()
                        time.sleep(1)
                    return
                self.wfile.write(body)

        return Handler
