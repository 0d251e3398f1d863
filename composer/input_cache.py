"""A worker's local copies of stored files, keyed by sha256 and bounded in bytes.

Workers never read the web's disk: every input comes from STORAGES["default"] (a bucket,
or the file system on a one-machine setup) into COMPOSER_WORK_DIR/blobs/<sha256>, checked
against its sha256 while it is copied and renamed into place only when complete; a store
briefly away (or a read cut short) is tried again for COMPOSER_START_RETRY_SECONDS. The files
of a finished job's result, unpacked for "Try it", are kept there too
(job-<id>-<file name>, composer.try_it), under the same bound. The least
recently used copies are deleted to keep the folder under COMPOSER_INPUT_CACHE_BYTES. A job
gets hard links to the copies in its own scratch folder, so an eviction while it runs does
not touch its files (the bytes go when the job's folder goes).
"""

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

from composer.retry import with_backoff
from hub.services.outages import store_unreachable
from hub.services.storage import blob_open

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


def cache_root() -> Path:
    root = Path(settings.COMPOSER_WORK_DIR) / "blobs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _entries(root: Path) -> list[tuple[Path, os.stat_result]]:
    entries = []
    for path in root.iterdir():
        if path.name.startswith("."):
            continue
        try:
            entries.append((path, path.stat()))
        except FileNotFoundError:  # evicted meanwhile by another worker process
            continue
    return entries


def _make_room(root: Path, size: int, limit: int) -> None:
    """Delete least recently used copies until `size` more bytes fit under `limit`."""
    entries = sorted(_entries(root), key=lambda e: e[1].st_mtime)
    used = sum(st.st_size for _, st in entries)
    while entries and used + size > limit:
        path, st = entries.pop(0)
        path.unlink(missing_ok=True)
        used -= st.st_size
        log.info("input cache: evicted %s (%d bytes)", path.name, st.st_size)


def cache_lookup(name: str) -> Path | None:
    """The cached copy `name`, marked as recently used; None when this machine has none."""
    path = cache_root() / name
    try:
        os.utime(path)
    except FileNotFoundError:
        return None
    return path


def cache_store(name: str, size: int, write) -> Path:
    """Cache `size` bytes as `name`, written by `write(file)` into a temporary file and
    renamed into place once complete (room is made first by evicting older copies)."""
    root = cache_root()
    limit = settings.COMPOSER_INPUT_CACHE_BYTES
    if size > limit:
        raise ValueError(
            f"An input file ({size} bytes) is larger than this worker's input cache "
            f"({limit} bytes, COMPOSER_INPUT_CACHE_BYTES)."
        )
    _make_room(root, size, limit)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name[:16]}-")
    try:
        with os.fdopen(fd, "wb") as dst:
            write(dst)
        path = root / name
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def cached_blob(blob) -> Path:
    """The local copy of a stored Blob, fetched now if this machine has none."""

    def write(dst) -> None:
        digest = hashlib.sha256()
        with blob_open(blob) as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
        if digest.hexdigest() != blob.sha256:
            raise OSError(f"stored file {blob.storage_name} does not match its sha256")

    return cache_lookup(blob.sha256) or with_backoff(
        lambda: cache_store(blob.sha256, blob.size, write),
        transient=store_unreachable,
        total=settings.COMPOSER_START_RETRY_SECONDS,
        what=f"fetching stored file {blob.storage_name}",
    )


def link_cached(fetch, target: Path) -> None:
    """`target` with the bytes of the cached copy `fetch()` returns (fetching it if need
    be): a hard link (a copy when the scratch folder is on another file system)."""
    for _ in range(3):  # an eviction may remove the copy between fetch and link
        source = fetch()
        try:
            os.link(source, target)
            return
        except FileNotFoundError:
            continue
        except OSError:
            shutil.copyfile(source, target)
            return
    raise OSError(f"could not keep a local copy for {target.name}")


def link_blob(blob, target: Path) -> None:
    """`target` with the bytes of `blob`, linked from the cache."""
    link_cached(lambda: cached_blob(blob), target)
