"""Xet content hashes: keyed BLAKE3 chunk hashes aggregated into xorb and file hashes.

A hash is 32 bytes read as four little-endian u64 words; its hex form prints each word as
16 hex digits, so the bytes of each word appear reversed.
"""

import re

from blake3 import blake3

# The keys of the Xet protocol: chunk (leaf) hashes and internal node hashes.
DATA_KEY = bytes(
    [102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28]
    + [157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41]
)
NODE_KEY = bytes(
    [1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230]
    + [93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63]
)
FILE_SALT = bytes(32)
ZERO = bytes(32)
HEX_RE = re.compile(r"[0-9a-f]{64}")
# A node has 2 to 9 children; a child whose hash is 0 mod 4 ends a group (mean: 4).
BRANCHING = 4
MAX_GROUP = 2 * BRANCHING + 1


def chunk_hash(data: bytes) -> bytes:
    return blake3(data, key=DATA_KEY).digest()


def to_hex(digest: bytes) -> str:
    return "".join(digest[i : i + 8][::-1].hex() for i in range(0, 32, 8))


def from_hex(text: str) -> bytes:
    if not HEX_RE.fullmatch(text):
        raise ValueError(f"{text[:80]!r} is not a 64-digit lowercase hex hash")
    raw = bytes.fromhex(text)
    return b"".join(raw[i : i + 8][::-1] for i in range(0, 32, 8))


def _ends_group(digest: bytes) -> bool:
    # The hash's last little-endian word modulo 4: only its lowest byte matters.
    return digest[24] % BRANCHING == 0


def _group_end(nodes: list[tuple[bytes, int]], start: int) -> int:
    remaining = len(nodes) - start
    if remaining <= 2:
        return len(nodes)
    end = min(MAX_GROUP, remaining)
    for i in range(2, end):
        if _ends_group(nodes[start + i][0]):
            return start + i + 1
    return start + end


def _merge(group: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = "".join(f"{to_hex(digest)} : {size}\n" for digest, size in group)
    return blake3(text.encode(), key=NODE_KEY).digest(), sum(size for _, size in group)


def aggregated_hash(nodes: list[tuple[bytes, int]]) -> bytes:
    """The root of the content-defined merkle tree over (hash, size) leaves."""
    if not nodes:
        return ZERO
    while len(nodes) > 1:
        merged, start = [], 0
        while start < len(nodes):
            end = _group_end(nodes, start)
            merged.append(_merge(nodes[start:end]))
            start = end
        nodes = merged
    return nodes[0][0]


def xorb_hash(chunks: list[tuple[bytes, int]]) -> bytes:
    return aggregated_hash(chunks)


def file_hash(chunks: list[tuple[bytes, int]]) -> bytes:
    if not chunks:
        return ZERO
    return blake3(aggregated_hash(chunks), key=FILE_SALT).digest()
