"""Reading xorbs: a run of compressed chunks, each after an 8-byte header, then a footer.

A chunk header is: version (0), compressed length (3 bytes, little-endian), compression
scheme (0 none, 1 LZ4 frame, 2 byte-grouped LZ4 frame), uncompressed length (3 bytes).
The footer begins with the ident `XETBLOB`; what it repeats (the chunk hashes and
offsets) is recomputed here from the chunks, so it is never trusted.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import lz4.frame

from . import merkle

HEADER_BYTES = 8
FOOTER_IDENT = b"XETBLOB"
MAX_CHUNK_BYTES = 128 * 1024  # the client's largest chunk (twice the 64 KiB target)
MAX_COMPRESSED_BYTES = 2 * MAX_CHUNK_BYTES
MAX_XORB_BYTES = 64 * 1024 * 1024  # uncompressed content of one xorb
MAX_XORB_CHUNKS = 8 * 1024
# A serialized xorb: its content, a header per chunk, and a footer of about 48 bytes a chunk.
MAX_SERIALIZED_BYTES = MAX_XORB_BYTES + MAX_XORB_CHUNKS * (HEADER_BYTES + 64) + 64 * 1024

NONE, LZ4, BG4_LZ4 = 0, 1, 2


class XorbFormatError(Exception):
    pass


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = stream.read(size - len(data))
        if not piece:
            break
        data += piece
    return data


def _regroup(grouped: bytes) -> bytes:
    """Undo byte grouping: the stream holds every 4th byte from offset 0, then 1, 2, 3."""
    n = len(grouped)
    out = bytearray(n)
    start = 0
    for lane in range(4):
        count = (n - lane + 3) // 4
        out[lane::4] = grouped[start : start + count]
        start += count
    return bytes(out)


def _decompress(scheme: int, data: bytes, size: int) -> bytes:
    if scheme == NONE:
        return data
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        # max_length bounds what a hostile frame can expand to.
        raw = decompressor.decompress(data, max_length=size + 1)
    except RuntimeError as exc:
        raise XorbFormatError(f"a chunk is not a valid LZ4 frame: {exc}") from None
    if not decompressor.eof or decompressor.unused_data:
        raise XorbFormatError("a chunk is not one whole LZ4 frame of the size its header says")
    return _regroup(raw) if scheme == BG4_LZ4 else raw


def iter_chunks(
    stream: BinaryIO, *, limit: int | None = None, record_sizes: list[int] | None = None
) -> Iterator[bytes]:
    """Yield the uncompressed chunks of the xorb in `stream`, checking every header.

    Iteration stops after `limit` chunks or at the footer. With `record_sizes`, the
    offset where each following chunk starts is appended to it.
    """
    index = 0
    while limit is None or index < limit:
        header = _read_exact(stream, HEADER_BYTES)
        if not header or header.startswith(FOOTER_IDENT):
            return
        if len(header) < HEADER_BYTES:
            raise XorbFormatError("the xorb ends inside a chunk header")
        version, scheme = header[0], header[4]
        stored = int.from_bytes(header[1:4], "little")
        size = int.from_bytes(header[5:8], "little")
        if version != 0 or scheme not in (NONE, LZ4, BG4_LZ4):
            raise XorbFormatError(f"chunk {index} has an unknown version or compression")
        if size == 0 or size > MAX_CHUNK_BYTES or stored > MAX_COMPRESSED_BYTES:
            raise XorbFormatError(f"chunk {index} is empty or larger than the chunk limit")
        # The client stores a chunk that compression would not shrink as it is, so no chunk
        # takes more room than its content: reads stay bounded by the bytes rebuilt.
        if stored > size or (scheme == NONE and stored != size):
            raise XorbFormatError(f"chunk {index} takes more room than its content")
        index += 1
        if index > MAX_XORB_CHUNKS:
            raise XorbFormatError(f"a xorb holds at most {MAX_XORB_CHUNKS} chunks")
        data = _read_exact(stream, stored)
        if len(data) != stored:
            raise XorbFormatError("the xorb ends inside a chunk")
        chunk = _decompress(scheme, data, size)
        if len(chunk) != size:
            raise XorbFormatError(f"chunk {index - 1} does not have the size its header says")
        if record_sizes is not None:
            record_sizes.append(record_sizes[-1] + HEADER_BYTES + stored)
        yield chunk


@dataclass(frozen=True)
class XorbIndex:
    """Where each chunk starts in the serialized xorb and in its content (n + 1 offsets)."""

    stored: tuple[int, ...]
    content: tuple[int, ...]

    @property
    def chunks(self) -> int:
        return len(self.stored) - 1

    def to_bytes(self) -> bytes:
        n = self.chunks
        return struct.pack(f"<I{n + 1}I{n + 1}I", n, *self.stored, *self.content)

    @classmethod
    def from_bytes(cls, data: bytes) -> "XorbIndex":
        n = int.from_bytes(data[:4], "little")
        if n > MAX_XORB_CHUNKS or len(data) != 4 + 8 * (n + 1):
            raise XorbFormatError("a xorb index is damaged")
        values = struct.unpack_from(f"<{2 * (n + 1)}I", data, 4)
        return cls(values[: n + 1], values[n + 1 :])


def read_xorb(stream: BinaryIO) -> tuple[list[tuple[bytes, int]], XorbIndex]:
    """The (hash, size) of every chunk of a xorb and its index, within the xorb limits."""
    chunks, stored, content = [], [0], [0]
    for chunk in iter_chunks(stream, record_sizes=stored):
        content.append(content[-1] + len(chunk))
        if content[-1] > MAX_XORB_BYTES:
            raise XorbFormatError(f"a xorb holds at most {MAX_XORB_BYTES} bytes")
        chunks.append((merkle.chunk_hash(chunk), len(chunk)))
    if not chunks:
        raise XorbFormatError("the xorb holds no chunk")
    return chunks, XorbIndex(tuple(stored), tuple(content))
