"""Large stored files and what reading them costs the web process: the bytes it fetches
from a bucket and the bytes it spools into a temp folder. Used by tests and benchmarks."""

import json
import os
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np

MIB = 1024 * 1024
BLOCK = np.arange(MIB // 4, dtype=np.float32) % 251  # finite values, one MiB


def fill(path: Path) -> bytes:
    """Overwrite a safetensors file's data with a deterministic pattern; its bytes."""
    with open(path, "r+b") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + header_len)
        left, i = path.stat().st_size - 8 - header_len, 0
        while left > 0:
            block = (BLOCK + i).tobytes()[:left]
            f.write(block)
            left, i = left - len(block), i + 1
    return path.read_bytes()


def big_model_folder(folder: Path, side: int = 4096) -> Path:
    """A base model folder whose one matrix, [side, side] float32, is side² × 4 bytes
    (64 MiB by default)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["T5Model"]}))
    nbytes = side * side * 4
    header = json.dumps(
        {"encoder.q.weight": {"dtype": "F32", "shape": [side, side], "data_offsets": [0, nbytes]}}
    ).encode()
    with open(folder / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + nbytes)
    fill(folder / "model.safetensors")
    return folder


@contextmanager
def counting_reads(client):
    """A list of the sizes of every read of a GetObject's body through this S3 client
    (ranged or not, its transfer manager's included)."""
    sizes = []

    def count(http_response, parsed, **kwargs):
        body = parsed["Body"]
        read = body.read

        def counted(*args, **kwargs):
            data = read(*args, **kwargs)
            sizes.append(len(data))
            return data

        body.read = counted

    client.meta.events.register("after-call.s3.GetObject", count)
    try:
        yield sizes
    finally:
        client.meta.events.unregister("after-call.s3.GetObject", count)


def temp_bytes(folder: Path) -> int:
    """Bytes in `folder`'s files, open unnamed ones included (a temporary file has no name
    once created: it is seen only through this process's open descriptors)."""
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
                total += os.stat(f"/proc/self/fd/{fd}").st_size
        except OSError:  # closed meanwhile
            continue
    return total
