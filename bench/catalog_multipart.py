"""A multipart/form-data POST streamed from disk, so the client never holds a file in memory.

The body length is known up front (Content-Length, no chunked encoding), as a browser
sends it.
"""

import http.client
import mimetypes
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

CHUNK = 1024 * 1024


def _field(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def _file_head(boundary: str, name: str, path: Path) -> bytes:
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{name}"; filename="{path.name}"\r\n'
        f"Content-Type: {ctype}\r\n\r\n"
    ).encode()


class MultipartBody:
    def __init__(self, fields: dict[str, str], files: list[tuple[str, Path]]):
        self.boundary = uuid.uuid4().hex
        self.parts: list[bytes | Path] = [_field(self.boundary, k, v) for k, v in fields.items()]
        for name, path in files:
            self.parts += [_file_head(self.boundary, name, path), path, b"\r\n"]
        self.parts.append(f"--{self.boundary}--\r\n".encode())

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in self.parts)

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, bytes):
                yield part
                continue
            with part.open("rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk


def post_multipart(
    url: str, body: MultipartBody, headers: dict[str, str], timeout_s: float = 600
) -> tuple[http.client.HTTPResponse, bytes, float]:
    """POST `body`; returns the response, its body and the seconds it took."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    start = time.perf_counter()
    conn.putrequest("POST", parts.path or "/")
    for key, value in (headers | {"Content-Type": body.content_type}).items():
        conn.putheader(key, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    for chunk in body:
        conn.send(chunk)
    response = conn.getresponse()
    content = response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    return response, content, elapsed
