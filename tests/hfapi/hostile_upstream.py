"""A hostile upstream hub: a real HTTP server (in a thread) that speaks just enough of the
Hub API for `huggingface_hub` to import from it, and lies as a test tells it to: listings
of huge files, bodies longer than announced, redirects to internal addresses."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHA = "a" * 40


@dataclass
class RepoPlan:
    files: dict[str, bytes]  # what GET sends for each file (see `stream` for long ones)
    listed: dict[str, int] = field(default_factory=dict)  # sizes the listing claims
    stream: dict[str, int] = field(default_factory=dict)  # name -> bytes sent, 1 MiB a write
    redirect: dict[str, str] = field(default_factory=dict)  # name -> Location
    hang: float = 0  # seconds the listing takes to answer


class HostileUpstream:
    def __init__(self):
        self.repos: dict[str, RepoPlan] = {}
        self.requests: list[str] = []  # "METHOD path" as received
        self.sent: dict[str, int] = {}  # bytes of a file's body written before the client left
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._answer(body=True)

            def do_HEAD(self):
                self._answer(body=False)

            def _answer(self, body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                path = self.path.split("?", 1)[0]
                if path.startswith("/api/models/"):
                    repo = path.removeprefix("/api/models/").split("/revision/")[0]
                    return self._listing(repo)
                repo, _, rest = path.lstrip("/").partition("/resolve/")
                owner_name = "/".join(repo.split("/")[:2])
                plan = hub.repos.get(owner_name)
                filename = rest.split("/", 1)[-1]
                if plan is None or filename not in plan.files:
                    return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"})
                data = plan.files[filename]
                size = plan.listed.get(filename, len(data))
                headers = {"X-Repo-Commit": SHA, "ETag": f'"{filename}"'}
                if filename in plan.redirect:
                    headers.update(
                        {
                            "Location": plan.redirect[filename],
                            "X-Linked-Etag": f'"{filename}"',
                            "X-Linked-Size": str(size),
                        }
                    )
                    return self._send(302, b"", headers)
                if not body:
                    return self._send(200, b"", {**headers, "Content-Length": str(size)})
                if filename in plan.stream:
                    return self._stream(filename, plan.stream[filename], headers)
                self._send(200, data, headers)

            def _listing(self, repo: str) -> None:
                plan = hub.repos.get(repo)
                if plan is None:
                    return self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"})
                time.sleep(plan.hang)
                siblings = [
                    {"rfilename": name, "size": plan.listed.get(name, len(data))}
                    for name, data in plan.files.items()
                ]
                info = {"id": repo, "sha": SHA, "private": False, "siblings": siblings}
                self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})

            def _stream(self, filename: str, total: int, headers: dict) -> None:
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()  # no length: it says nothing true about what follows
                chunk = b"\0" * (1 << 20)
                hub.sent[filename] = 0
                try:
                    while hub.sent[filename] < total:
                        self.wfile.write(chunk)
                        hub.sent[filename] += len(chunk)
                except OSError:  # the client hung up
                    pass
                self.close_connection = True

            def _send(self, status: int, data: bytes, headers: dict) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

        return Handler


class Listener:
    """A plain server that only records who came: an internal service a redirect aims at."""

    def __init__(self):
        self.hits: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                listener.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
