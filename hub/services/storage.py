"""Content-addressed file storage through STORAGES["default"]: each sha256 is stored once."""

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files import File
from django.core.files.storage import Storage, default_storage, storages
from django.db import DatabaseError, IntegrityError, transaction

from ..models import Blob, StorageEntry
from .storage_ledger import intents_record, intents_settle, referenced, tombstones_write
from .validation import FileLike, file_size

CHUNK = 1024 * 1024
BLOBS_DIR = "blobs"
log = logging.getLogger(__name__)


def blob_path(sha256: str) -> str:
    return f"{BLOBS_DIR}/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def file_sha256(f: BinaryIO) -> str:
    """sha256 of an open file, read in chunks; the file is rewound."""
    f.seek(0)
    digest = hashlib.sha256()
    while chunk := f.read(CHUNK):
        digest.update(chunk)
    f.seek(0)
    return digest.hexdigest()


def blob_store(f: FileLike) -> tuple[Blob, str | None]:
    """The Blob holding this content, stored now if it is new.

    Uses the sha256 computed while the upload was received (`f.sha256`, set by
    hub.uploads.HashingUploadHandler and hub.services.zips) when there is one. Returns the
    blob and the storage name written by this call (None when the content was already
    stored), so a caller whose transaction fails can delete what it wrote.
    """
    sha = getattr(f, "sha256", None)
    if isinstance(f, str | os.PathLike):
        with open(f, "rb") as fh:
            return _store(fh, sha, file_size(f))
    return _store(f, sha, file_size(f))


def _store(fh: BinaryIO, sha: str | None, size: int) -> tuple[Blob, str | None]:
    sha = sha or file_sha256(fh)
    existing = Blob.objects.filter(pk=sha).first()
    if existing is not None:
        return existing, None
    fh.seek(0)
    # Another name if a file is in the way (an interrupted upload's, or one whose row went
    # and that waits for the sweep); committed in the ledger before the file is written.
    name = default_storage.get_available_name(blob_path(sha))
    intents_record([name])
    written = default_storage.save(name, File(fh, name=sha))
    if written != name:  # taken meanwhile
        intents_record([written])
    try:
        with transaction.atomic():
            blob = Blob.objects.create(sha256=sha, size=size, storage_name=written)
            intents_settle([written])
    except IntegrityError:
        # A concurrent upload of the same content stored it first: keep theirs.
        storage_discard([written])
        return Blob.objects.get(pk=sha), None
    return blob, written


def blob_open(blob: Blob) -> BinaryIO:
    return default_storage.open(blob.storage_name, "rb")


def download_link(name: str, size: int, filename: str, internal=False) -> str | None:
    """A short-lived link where the store itself serves the stored file `name` as a download
    named `filename`, for files of LORAHUB_S3_REDIRECT_MIN_BYTES or more; None when the
    store cannot (the file system) or the file is small (cheaper through the web).

    Signed for the store's public address where it has one (settings.STORAGES["links"]),
    unless `internal`: workers asking under the site's internal name reach the store only
    under its internal address."""
    if size < settings.LORAHUB_S3_REDIRECT_MIN_BYTES or not hasattr(default_storage, "bucket"):
        return None
    disposition = f'attachment; filename="{filename}"'
    public = "links" in settings.STORAGES and not internal
    store = storages["links"] if public else default_storage
    return store.url(name, parameters={"ResponseContentDisposition": disposition})


def storage_delete(names: Iterable[str]) -> None:
    """Delete stored files, logging (not raising) failures: used on cleanup paths."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            log.exception("could not delete stored file %s", name)


def storage_discard(names: Iterable[str]) -> None:
    """Delete files this process stored whose rows never came (their transaction failed),
    with their intents; a file that a row names (the same name stored by another upload
    that won) is kept. When the database cannot tell, nothing is deleted: the intents stay
    committed, and the sweep deletes the files after the grace period."""
    names = [name for name in names if name]
    if not names:
        return
    try:
        named = referenced(names)
        orphans = [name for name in names if name not in named]
        storage_delete(orphans)
        StorageEntry.objects.filter(name__in=orphans, kind=StorageEntry.Kind.INTENT).delete()
    except DatabaseError:
        log.exception("could not discard stored files %s; the sweep will", names)
        return
    for name in orphans:
        log.info("deleted stored file %s: no row came to name it", name)


def blobs_delete_unreferenced(shas: Iterable[str]) -> None:
    """Delete the blobs among `shas` that no file references any more, leaving tombstones:
    their files go with the sweep after its grace period, so a restored database still
    finds them until then."""
    orphans = list(
        Blob.objects.filter(
            sha256__in=list(shas), files__isnull=True, base_model_files__isnull=True
        ).values_list("sha256", "storage_name")
    )
    if not orphans:
        return
    Blob.objects.filter(
        sha256__in=[sha for sha, _ in orphans], files__isnull=True, base_model_files__isnull=True
    ).delete()
    tombstones_write(name for _, name in orphans)


def stored_folders(
    folder: str, storage: Storage = default_storage
) -> Iterator[tuple[str, list[str]]]:
    """(folder, its file names) for `folder` and every folder below it, in `storage`.

    Listed without asking whether the folder exists: an S3 store has no folders, only
    names with slashes, and says that none exists (it lists a missing one as empty)."""
    try:
        subfolders, files = storage.listdir(folder)
    except FileNotFoundError:  # the file system's
        return
    if files:
        yield folder, files
    for sub in subfolders:
        yield from stored_folders(f"{folder}/{sub}", storage)


class CopyError(Exception):
    """A stored file that could not be copied, or whose copy is not what it should be."""


def stored_copy(
    source: Storage, target: Storage, name: str, sha256: str = "", verify=False
) -> bool:
    """Copy the stored file `name` from `source` into `target` under the same name, in
    chunks, and check that the copy's sha256 is `sha256` (when empty: the source's, read
    first). Nothing is deleted from `source`.

    Returns False when `target` holds the file already: the same size (with `verify`, the
    same sha256 too). A copy of another size there (an interrupted copy) is replaced. Raises
    CopyError when the source lacks the file, a store refuses the name (one that leads out
    of it, e.g. with ../ or absolute) or the copy has other content (then removed).
    """
    try:
        return _copy_checked(source, target, name, sha256, verify)
    except SuspiciousOperation as error:
        raise CopyError(f"{name}: a store refuses the name ({error})") from None


def _copy_checked(source: Storage, target: Storage, name: str, sha256: str, verify: bool) -> bool:
    if not source.exists(name):
        raise CopyError(f"{name}: not in the source store")
    expected = sha256  # the source's sha256, read at most once
    if target.exists(name):
        if target.size(name) == source.size(name):
            if not verify:
                return False
            expected = expected or stored_sha256(source, name)
            if stored_sha256(target, name) == expected:
                return False
        target.delete(name)
    expected = expected or stored_sha256(source, name)
    with source.open(name, "rb") as fh:
        written = target.save(name, fh)
    copied = stored_sha256(target, written)
    if written != name or copied != expected:
        target.delete(written)
        raise CopyError(f"{name}: the copy, {written}, has sha256 {copied}, not {expected}")
    return True


def stored_sha256(storage: Storage, name: str) -> str:
    with storage.open(name, "rb") as fh:
        return file_sha256(fh)
