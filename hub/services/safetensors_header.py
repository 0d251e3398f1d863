"""Reading a safetensors header without loading tensors (and without unpickling anything).

Format: 8-byte little-endian header length N, then N bytes of UTF-8 JSON mapping tensor
names to {dtype, shape, data_offsets: [start, end]} (offsets relative to the data that
follows the header), plus an optional "__metadata__" of strings.
"""

import math
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from django.core.exceptions import ValidationError

from composer.engine import strict_json

# Bytes per element for the dtypes safetensors writes.
DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}
DTYPE_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # safetensors code, e.g. "F32"
    shape: tuple[int, ...]
    start: int = field(default=0, compare=False)  # where its bytes begin in the file

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def read_safetensors_header(
    fileobj: BinaryIO, size: int, *, filename: str, max_header_bytes: int
) -> dict[str, TensorInfo]:
    """The tensors a safetensors file declares, after checking the header is consistent
    with the file size (so a truncated or padded file is refused).

    Reads at most 8 + max_header_bytes bytes. Raises ValidationError with a human message.
    """

    def invalid(reason: str, code: str = "malformed") -> ValidationError:
        return ValidationError(f"{filename} is not a valid safetensors file: {reason}.", code=code)

    fileobj.seek(0)
    prefix = fileobj.read(9)
    if len(prefix) < 8:
        raise invalid("it is shorter than the 8-byte header length", "truncated")
    (header_len,) = struct.unpack("<Q", prefix[:8])
    if (header_len > max_header_bytes or 8 + header_len > size) and prefix[8:] != b"{":
        # An impossible length not followed by JSON: another kind of file (a pickle, text).
        raise ValidationError(
            f"{filename} is not a safetensors file (one starts with an 8-byte header length "
            "and a JSON header): save the weights with safetensors.",
            code="malformed",
        )
    if header_len < 2:
        raise invalid("the header is empty")
    if header_len > max_header_bytes:
        raise invalid(
            f"its header claims {header_len:,} bytes, more than the {max_header_bytes:,} allowed"
        )
    if 8 + header_len > size:
        raise invalid(
            f"the header claims {header_len:,} bytes but the file has only {size - 8:,} after "
            "the length (the file is truncated)",
            "truncated",
        )
    fileobj.seek(8)
    raw = fileobj.read(header_len)
    if len(raw) < header_len:
        raise invalid("the file ended inside the header (truncated)", "truncated")
    try:
        header = strict_json.loads(raw)
    except strict_json.JSONInputError as exc:
        raise invalid(f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise invalid("the header is not a JSON object")

    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise invalid("__metadata__ must map names to strings")

    tensors: dict[str, TensorInfo] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise invalid(f"the entry for tensor {name!r} is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise invalid(f"tensor {name!r} has an unsupported dtype {dtype!r}")
        if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
            raise invalid(f"tensor {name!r} has an invalid shape {shape!r}")
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
        ):
            raise invalid(f"tensor {name!r} has invalid data_offsets {offsets!r}")
        start, end = offsets
        info = TensorInfo(dtype=dtype, shape=tuple(shape), start=8 + header_len + start)
        if end - start != info.numel * DTYPE_BYTES[dtype]:
            raise invalid(
                f"tensor {name!r} of shape {list(shape)} and dtype {dtype} needs "
                f"{info.numel * DTYPE_BYTES[dtype]:,} bytes but its offsets span {end - start:,}"
            )
        tensors[name] = info
        spans.append((start, end, name))

    # Tensors must tile the data section exactly, in order, as safetensors itself requires.
    data_len = size - 8 - header_len
    position = 0
    for start, end, name in sorted(spans):
        if start != position:
            raise invalid(f"tensor {name!r} does not start where the previous one ends")
        position = end
    if position > data_len:
        raise invalid(
            f"the header describes {position:,} bytes of tensor data but the file holds only "
            f"{data_len:,} (the file is truncated)",
            "truncated",
        )
    if position < data_len:
        raise invalid(f"{data_len - position:,} bytes follow the last tensor")
    return tensors


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# Bits that make a float code NaN or infinite: its exponent all ones (float8_e4m3fn has no
# infinity; only S.1111.111 is NaN).
_NONFINITE = {
    "F64": ("<u8", 0x7FF0000000000000, 0x7FF0000000000000),
    "F32": ("<u4", 0x7F800000, 0x7F800000),
    "F16": ("<u2", 0x7C00, 0x7C00),
    "BF16": ("<u2", 0x7F80, 0x7F80),
    "F8_E5M2": ("u1", 0x7C, 0x7C),
    "F8_E4M3": ("u1", 0x7F, 0x7F),
}
# A chunk, its masked copy and their comparison are in memory at once: about 2.3 x this.
CHUNK_BYTES = 2 << 20


def first_nonfinite(fileobj: BinaryIO, tensors: dict[str, TensorInfo]) -> str | None:
    """The name of the first float tensor holding a NaN or an infinity, reading its bytes
    in bounded chunks (memory: a few CHUNK_BYTES) from a file whose header was checked."""
    import numpy as np

    for name, info in sorted(tensors.items(), key=lambda item: item[1].start):
        if info.dtype not in _NONFINITE:
            continue
        code, mask, bits = _NONFINITE[info.dtype]
        size = DTYPE_BYTES[info.dtype]
        remaining = info.numel * size
        fileobj.seek(info.start)
        while remaining:
            data = fileobj.read(min(remaining, CHUNK_BYTES // size * size))
            if not data:
                break  # a short file was refused by the header check
            remaining -= len(data)
            values = np.frombuffer(data[: len(data) // size * size], dtype=code)
            if np.any((values & values.dtype.type(mask)) == bits):
                return name
    return None
