"""Xorbs kept in storage, and files rebuilt from them into the uploader's staged objects.

Xorbs live in STORAGES["default"] under `hfapi-xet/xorbs/<hash>`, stored only once their
chunks hash to the name. A xorb is named by its content, so one user's shard can only use
another's xorb by already knowing every chunk hash in it, which this hub never reveals.
"""

import hashlib
import tempfile
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from hub.services.stored_reads import stored_open

from .. import staging
from . import merkle, xorbs
from .shards import FileInfo

ROOT = "hfapi-xet/xorbs"
# hf_xet keeps the shards it uploaded for 3 weeks and deduplicates new files against the
# xorbs they list without sending them again, so a xorb must outlive that.
KEEP = timedelta(days=28)


class XetError(Exception):
    """A refused upload; the message says why."""


def xorb_name(xorb_hex: str) -> str:
    merkle.from_hex(xorb_hex)  # refuses anything but a hash
    return f"{ROOT}/{xorb_hex}"


def xorb_exists(xorb_hex: str) -> bool:
    return default_storage.exists(xorb_name(xorb_hex))


def receive_xorb(xorb_hex: str, body: Iterable[bytes]) -> bool:
    """Store the serialized xorb streamed in `body` if it hashes to `xorb_hex`.

    Returns False when it was already stored. The body goes to a temporary file (bounded
    by the largest xorb), is checked chunk by chunk, and only then stored.
    """
    name = xorb_name(xorb_hex)
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        received = 0
        for piece in body:
            received += len(piece)
            if received > xorbs.MAX_SERIALIZED_BYTES:
                raise XetError(f"a xorb is at most {xorbs.MAX_SERIALIZED_BYTES} bytes")
            tmp.write(piece)
        tmp.seek(0)
        try:
            chunks = xorbs.chunk_list(tmp)
        except xorbs.XorbFormatError as exc:
            raise XetError(f"xorb refused: {exc}") from None
        if merkle.to_hex(merkle.xorb_hash(chunks)) != xorb_hex:
            raise XetError("xorb refused: its chunks do not hash to the name it was sent under")
        if default_storage.exists(name):
            return False
        tmp.seek(0)
        default_storage.save(name, File(tmp, name=xorb_hex))
    return True


def _term_chunks(term) -> Iterable[bytes]:
    name = xorb_name(term.xorb)
    if not default_storage.exists(name):
        raise XetError(f"the shard refers to xorb {term.xorb}, which was not uploaded")
    with stored_open(name, default_storage.size(name)) as stream:
        try:
            yield from xorbs.iter_chunks(stream, skip=term.start, limit=term.end - term.start)
        except xorbs.XorbFormatError as exc:
            raise XetError(f"stored xorb {term.xorb} is unreadable: {exc}") from None


def rebuild_file(user_id: int, info: FileInfo) -> str:
    """Rebuild a file described by a shard into the user's staged objects; its sha256.

    Every term must yield exactly its chunks and bytes, and the chunks must hash to the
    file hash the shard names, so a staged object is always the content the client hashed.
    """
    if info.size > settings.LORAHUB_MAX_FILE_BYTES:
        raise XetError(f"file is larger than the {settings.LORAHUB_MAX_FILE_BYTES}-byte limit")
    chunks: list[tuple[bytes, int]] = []
    digest = hashlib.sha256()
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        for term in info.terms:
            count = size = 0
            for chunk in _term_chunks(term):
                count, size = count + 1, size + len(chunk)
                chunks.append((merkle.chunk_hash(chunk), len(chunk)))
                digest.update(chunk)
                tmp.write(chunk)
            if count != term.end - term.start or size != term.size:
                raise XetError(f"a term of xorb {term.xorb} does not match its chunks")
        if merkle.to_hex(merkle.file_hash(chunks)) != info.file_hash:
            raise XetError(f"file {info.file_hash} does not match the chunks it names")
        sha256 = digest.hexdigest()
        staging.stage_file(user_id, sha256, tmp)
    return sha256


def clear_stale(before) -> int:
    """Delete xorbs last written before `before` (an aware datetime, KEEP ago or earlier):
    the files built from them are staged or committed by then."""
    return staging.clear_stale(before, ROOT)
