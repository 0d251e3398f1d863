"""LFS objects uploaded ahead of a commit, kept per user until a commit uses them.

Objects live in STORAGES["default"] under `hfapi-lfs/<user id>/<sha256>`, so every web
process (and machine, with an S3 store) sees them. The sha256 and size are checked while
the upload streams to a temporary file: a staged object always has the content its name
says.
"""

import hashlib
import re
import tempfile
from collections.abc import Iterable

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from hub.services.storage import stored_folders
from hub.services.stored_reads import stored_open

ROOT = "hfapi-lfs"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
CHUNK = 1024 * 1024


class StagingError(Exception):
    pass


def staged_name(user_id: int, sha256: str) -> str:
    if not SHA256_RE.fullmatch(sha256):
        raise StagingError(f"{sha256!r} is not a sha256 hex digest")
    return f"{ROOT}/{user_id}/{sha256}"


def is_staged(user_id: int, sha256: str, size: int) -> bool:
    name = staged_name(user_id, sha256)
    return default_storage.exists(name) and default_storage.size(name) == size


def staged_sizes(user_id: int) -> dict[str, int]:
    """{sha256: size} of the objects `user_id` has staged."""
    return {
        name: default_storage.size(f"{folder}/{name}")
        for folder, names in stored_folders(f"{ROOT}/{user_id}")
        for name in names
        if folder == f"{ROOT}/{user_id}"
    }


def stage_stream(user_id: int, sha256: str, size: int, chunks: Iterable[bytes]) -> None:
    """Store the streamed content as `sha256` if it has that digest and `size` bytes."""
    staged_name(user_id, sha256)  # a malformed oid is refused before the body is read
    digest, received = hashlib.sha256(), 0
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        for chunk in chunks:
            received += len(chunk)
            if received > size:
                raise StagingError(f"received more than the announced {size} bytes")
            digest.update(chunk)
            tmp.write(chunk)
        if received != size:
            raise StagingError(f"received {received} bytes, expected {size}")
        if digest.hexdigest() != sha256:
            raise StagingError("content does not match its sha256 oid")
        stage_file(user_id, sha256, tmp)


def stage_file(user_id: int, sha256: str, tmp) -> None:
    """Store the open temporary file `tmp`, whose digest the caller has checked."""
    name = staged_name(user_id, sha256)
    tmp.seek(0)
    if default_storage.exists(name):
        default_storage.delete(name)
    default_storage.save(name, File(tmp, name=sha256))


def open_staged(user_id: int, sha256: str):
    name = staged_name(user_id, sha256)
    return stored_open(name, default_storage.size(name))


def discard(user_id: int, sha256s: Iterable[str]) -> None:
    for sha256 in sha256s:
        name = staged_name(user_id, sha256)
        if default_storage.exists(name):
            default_storage.delete(name)


def clear_stale(before, root: str = ROOT) -> int:
    """Delete staged objects (or the files under `root`) last written before `before`
    (an aware datetime)."""
    removed = 0
    for folder, names in stored_folders(root):
        for name in names:
            path = f"{folder}/{name}"
            if default_storage.get_modified_time(path) < before:
                default_storage.delete(path)
                removed += 1
    return removed
