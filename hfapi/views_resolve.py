"""`/<owner>/<name>/resolve/<revision>/<file>` for the Hub client, in front of the catalog's.

The catalog's `adapter_resolve` serves the bytes (and counts downloads); this front door
adds what `huggingface_hub` relies on: Bearer-token identity, HEAD, the Hub's error codes,
X-Linked-Etag/X-Linked-Size and HTTP Range (206) for resumed downloads. Browsers get the
same answers, plus their session as before.
"""

import re

from django.http import HttpResponse, StreamingHttpResponse

from hub.views.files import adapter_resolve, file_response

from .repos import get_repo, resolve_version
from .responses import ApiError, entry_not_found
from .tokens import ApiAuth, InvalidToken, authenticate

RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
CHUNK = 1024 * 1024


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) for a single `bytes=a-b` range; None when absent or unsatisfiable."""
    match = RANGE_RE.fullmatch(header.strip())
    if not match or match[1] == match[2] == "":
        return None
    if match[1] == "":  # suffix: the last n bytes
        first, last = max(size - int(match[2]), 0), size - 1
    else:
        first = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else size - 1
    return (first, last) if first <= last else None


def byte_slice(handle, first: int, last: int):
    with handle:
        handle.seek(first)
        remaining = last - first + 1
        while remaining > 0 and (chunk := handle.read(min(CHUNK, remaining))):
            remaining -= len(chunk)
            yield chunk


def hub_headers(response, sha256: str, size: int) -> None:
    response["X-Linked-Etag"] = f'"{sha256}"'
    response["X-Linked-Size"] = str(size)
    response["Accept-Ranges"] = "bytes"


def resolve(request, owner, name, revision, filename):
    if request.method not in ("GET", "HEAD"):
        return ApiError(405, "Use GET or HEAD").response()
    version = None
    try:
        auth = authenticate(request)
        if auth.user is not None:
            request.user = auth.user  # the token's owner, for the catalog's visibility rule
        elif request.user.is_authenticated:
            # A download is a safe GET: a browser's session may read its owner's files.
            auth = ApiAuth(user=request.user)
        repo = get_repo(auth, owner, name)
        version = resolve_version(repo, revision)
        item = None if version is None else version.files.filter(filename=filename).first()
        if item is None:
            raise entry_not_found(filename)
    except InvalidToken:
        return ApiError(401, "Invalid credentials in Authorization header").response()
    except ApiError as error:
        response = error.response()
        if error.code == "EntryNotFound" and version is not None:
            response["X-Repo-Commit"] = version.commit
        return response
    sha256, size = item.blob_id, item.blob.size

    if request.method == "HEAD":
        # The catalog's helper builds the headers; its open file is closed unread.
        full = file_response(version, filename)
        full.close()
        if full.status_code == 302:  # the store serves it: the client follows the link
            hub_headers(full, sha256, size)
            return full
        response = HttpResponse(status=200, content_type=full["Content-Type"])
        for header in ("Content-Disposition", "ETag", "X-Repo-Commit"):
            response[header] = full[header]
        response["Content-Length"] = str(size)
        hub_headers(response, sha256, size)
        return response

    response = adapter_resolve(request, owner, name, revision, filename)
    hub_headers(response, sha256, size)
    wanted = request.headers.get("Range")
    if not wanted or response.status_code == 302:  # the store answers ranges itself
        return response
    span = byte_range(wanted, size)
    if span is None:
        response.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    first, last = span
    partial = StreamingHttpResponse(
        byte_slice(response.file_to_stream, first, last),
        status=206,
        content_type=response["Content-Type"],
    )
    for header in ("Content-Disposition", "ETag", "X-Repo-Commit"):
        partial[header] = response[header]
    hub_headers(partial, sha256, size)
    partial["Content-Range"] = f"bytes {first}-{last}/{size}"
    partial["Content-Length"] = str(last - first + 1)
    return partial
