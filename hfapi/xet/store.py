"""Xorbs kept in storage, and files rebuilt from them into the uploader's staged objects.

Xorbs live in STORAGES["default"] under `hfapi-xet/xorbs/<hash>`, stored only once their
chunks hash to the name, beside an index of where each chunk starts
(`hfapi-xet/index/<hash>`), so a term reads exactly its chunks. A xorb is named by its
content, so one user's shard can only use another's xorb by already knowing every chunk
hash in it, which this hub never reveals. Each uploader's xorbs count against their
storage quota while kept (ledger), and every rebuilt file is checked against it before it
is staged.
"""

import hashlib
import tempfile
from collections import OrderedDict
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from hub.services.quota import quota_check
from hub.services.stored_reads import stored_open

from .. import staging
from ..models import XetXorb
from . import ledger, merkle, xorbs
from .shards import FileInfo, Term

ROOT = "hfapi-xet"
KEEP = ledger.KEEP
# A shard may rebuild at most this many times the content of the xorbs it names (plus
# REBUILD_SLACK): repeating chunks cannot make the server write without bound.
REBUILD_FACTOR = 4
REBUILD_SLACK = 64 * 1024 * 1024
INDEX_CACHE = 32


class XetError(Exception):
    """A refused upload; the message says why."""


def xorb_name(xorb_hex: str) -> str:
    merkle.from_hex(xorb_hex)  # refuses anything but a hash
    return f"{ROOT}/xorbs/{xorb_hex}"


def index_name(xorb_hex: str) -> str:
    merkle.from_hex(xorb_hex)
    return f"{ROOT}/index/{xorb_hex}"


def xorb_exists(xorb_hex: str) -> bool:
    return default_storage.exists(xorb_name(xorb_hex)) and default_storage.exists(
        index_name(xorb_hex)
    )


def _admit(user, xorb_hex: str, size: int) -> XetXorb | None:
    """Count the xorb against `user`'s quota (hub.services.quota.WriteRefused when it does
    not fit) and record it; None when their upload of it still counts (a resend is free).
    The user's row is locked meanwhile, so their parallel uploads are checked one by one."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if ledger.kept(user.pk).filter(xorb=xorb_hex).exists():
            return None
        quota_check(user, size)
        record, _ = XetXorb.objects.update_or_create(
            user=user, xorb=xorb_hex, defaults={"size": size, "uploaded_at": timezone.now()}
        )
    return record


def receive_xorb(user, xorb_hex: str, body: Iterable[bytes]) -> bool:
    """Store the serialized xorb streamed in `body` if it hashes to `xorb_hex` and fits
    `user`'s storage quota (raises WriteRefused otherwise).

    Returns False when it was already stored. The body goes to a temporary file (bounded
    by the largest xorb), is checked chunk by chunk, and only then counted and stored.
    """
    name, index = xorb_name(xorb_hex), index_name(xorb_hex)
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        received = 0
        for piece in body:
            received += len(piece)
            if received > xorbs.MAX_SERIALIZED_BYTES:
                raise XetError(f"a xorb is at most {xorbs.MAX_SERIALIZED_BYTES} bytes")
            tmp.write(piece)
        tmp.seek(0)
        try:
            chunks, offsets = xorbs.read_xorb(tmp)
        except xorbs.XorbFormatError as exc:
            raise XetError(f"xorb refused: {exc}") from None
        if merkle.to_hex(merkle.xorb_hash(chunks)) != xorb_hex:
            raise XetError("xorb refused: its chunks do not hash to the name it was sent under")
        # Counted before it is stored; one stored already counts too, as this user's
        # shards may now rely on it.
        record = _admit(user, xorb_hex, received)
        if xorb_exists(xorb_hex):
            return False
        try:
            tmp.seek(0)
            for stored in (name, index):  # what an interrupted store left
                if default_storage.exists(stored):
                    default_storage.delete(stored)
            default_storage.save(name, File(tmp, name=xorb_hex))
            # The index last: a xorb counts as stored only once both are there.
            default_storage.save(index, ContentFile(offsets.to_bytes(), name=xorb_hex))
        except BaseException:
            if record is not None:  # not stored: not counted
                record.delete()
            raise
    return True


class _Indexes:
    """The indexes of the xorbs a shard names, a few kept in memory at a time."""

    def __init__(self):
        self._cache: OrderedDict[str, xorbs.XorbIndex] = OrderedDict()

    def get(self, xorb_hex: str) -> xorbs.XorbIndex:
        if xorb_hex in self._cache:
            self._cache.move_to_end(xorb_hex)
            return self._cache[xorb_hex]
        if not xorb_exists(xorb_hex):
            raise XetError(f"the shard refers to xorb {xorb_hex}, which was not uploaded")
        with default_storage.open(index_name(xorb_hex), "rb") as stream:
            data = stream.read(4 + 8 * (xorbs.MAX_XORB_CHUNKS + 1) + 1)
        try:
            index = xorbs.XorbIndex.from_bytes(data)
        except xorbs.XorbFormatError as exc:
            raise XetError(f"stored xorb {xorb_hex}: {exc}") from None
        self._cache[xorb_hex] = index
        if len(self._cache) > INDEX_CACHE:
            self._cache.popitem(last=False)
        return index


def _check_term(indexes: _Indexes, term: Term) -> None:
    index = indexes.get(term.xorb)
    if term.end > index.chunks:
        raise XetError(f"a term names chunks past the end of xorb {term.xorb}")
    if index.content[term.end] - index.content[term.start] != term.size:
        raise XetError(f"a term of xorb {term.xorb} does not match its chunks")


def _term_chunks(indexes: _Indexes, term: Term) -> Iterable[bytes]:
    index = indexes.get(term.xorb)
    name = xorb_name(term.xorb)
    with stored_open(name, default_storage.size(name)) as stream:
        stream.seek(index.stored[term.start])
        try:
            yield from xorbs.iter_chunks(stream, limit=term.end - term.start)
        except xorbs.XorbFormatError as exc:
            raise XetError(f"stored xorb {term.xorb} is unreadable: {exc}") from None


def rebuild_files(user, files: list[FileInfo]) -> list[str]:
    """Rebuild the files a shard describes into the user's staged objects; their sha256.

    Every term is checked against the xorb's index before anything is read, and the whole
    shard against the rebuild bound; then each file is rebuilt, must hash to its file
    hash (so a staged object is always the content the client hashed) and fit the user's
    storage quota (WriteRefused) before it is staged.
    """
    indexes, named, total = _Indexes(), {}, 0
    unique = list({info.file_hash: info for info in files}.values())
    for info in unique:
        if info.size > settings.LORAHUB_MAX_FILE_BYTES:
            raise XetError(f"file is larger than the {settings.LORAHUB_MAX_FILE_BYTES}-byte limit")
        total += info.size
        for term in info.terms:
            _check_term(indexes, term)
            named.setdefault(term.xorb, indexes.get(term.xorb).content[-1])
    if total > REBUILD_FACTOR * sum(named.values()) + REBUILD_SLACK:
        raise XetError("the shard rebuilds far more bytes than the xorbs it names hold")
    return [_rebuild_file(user, indexes, info) for info in unique]


def _rebuild_file(user, indexes: _Indexes, info: FileInfo) -> str:
    chunks: list[tuple[bytes, int]] = []
    digest = hashlib.sha256()
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        for term in info.terms:
            for chunk in _term_chunks(indexes, term):
                chunks.append((merkle.chunk_hash(chunk), len(chunk)))
                digest.update(chunk)
                tmp.write(chunk)
        if merkle.to_hex(merkle.file_hash(chunks)) != info.file_hash:
            raise XetError(f"file {info.file_hash} does not match the chunks it names")
        sha256 = digest.hexdigest()
        # As for an LFS upload: the same object staged already is replaced, not added.
        quota_check(user, info.size, staged_except={sha256})
        staging.stage_file(user.pk, sha256, tmp)
    return sha256


def clear_stale(before) -> int:
    """Delete xorbs and their indexes last written before `before` (an aware datetime, KEEP
    ago or earlier): the files built from them are staged or committed by then. The
    records of uploads as old go too."""
    ledger.clear_stale(before)
    return staging.clear_stale(before, ROOT)
