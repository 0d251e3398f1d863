"""Reading the file section of a shard: how each uploaded file is rebuilt from xorb chunks.

A shard starts with a 48-byte header (a 32-byte tag, version, footer size), then file
records until a bookend: per file a 48-byte header (file hash, flags, entry count), one
48-byte entry per term (xorb hash, flags, bytes, first chunk, end chunk), optionally as
many verification entries, and optionally one metadata entry holding the file's sha256.
The xorb section, lookup tables and footer that follow serve client-side deduplication
and are not needed here.
"""

import struct
from dataclasses import dataclass
from typing import BinaryIO

from . import merkle

TAG = b"HFRepoMetaData\x00" + bytes(
    [85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169]
)
RECORD = 48
FLAG_VERIFICATION = 1 << 31
FLAG_METADATA = 1 << 30
BOOKEND = b"\xff" * 32
MAX_SHARD_BYTES = 16 * 1024 * 1024
MAX_FILES = 1000
MAX_TERMS = 100_000  # in the whole shard


class ShardFormatError(Exception):
    pass


@dataclass(frozen=True)
class Term:
    xorb: str  # hex
    size: int
    start: int  # first chunk
    end: int  # one past the last chunk


@dataclass(frozen=True)
class FileInfo:
    file_hash: str  # hex
    terms: tuple[Term, ...]
    sha256: str | None

    @property
    def size(self) -> int:
        return sum(term.size for term in self.terms)


def _record(stream: BinaryIO) -> bytes:
    data = stream.read(RECORD)
    if len(data) != RECORD:
        raise ShardFormatError("the shard ends inside its file section")
    return data


def read_files(stream: BinaryIO) -> list[FileInfo]:
    header = stream.read(RECORD)
    if len(header) != RECORD or header[:32] != TAG:
        raise ShardFormatError("not a shard: the header tag is missing")
    files, terms_seen = [], 0
    while True:
        record = _record(stream)
        digest, flags, count = record[:32], *struct.unpack_from("<II", record, 32)
        if digest == BOOKEND:
            return files
        if len(files) == MAX_FILES:
            raise ShardFormatError(f"a shard may describe at most {MAX_FILES} files")
        terms_seen += count
        if count == 0 or terms_seen > MAX_TERMS:
            raise ShardFormatError(f"a file needs 1 to {MAX_TERMS} terms in all")
        terms = []
        for _ in range(count):
            entry = _record(stream)
            size, start, end = struct.unpack_from("<III", entry, 36)
            if end <= start or size == 0:
                raise ShardFormatError("a term names no chunk")
            terms.append(Term(merkle.to_hex(entry[:32]), size, start, end))
        if flags & FLAG_VERIFICATION:
            for _ in range(count):
                _record(stream)  # range hashes: the rebuilt file's own hash is checked instead
        sha256 = None
        if flags & FLAG_METADATA:
            sha256 = merkle.to_hex(_record(stream)[:32])
        files.append(FileInfo(merkle.to_hex(digest), tuple(terms), sha256))
