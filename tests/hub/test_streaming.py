"""Large files stream: storing and zipping a 64 MiB adapter never holds it in memory."""

import io
import json
import struct
import tracemalloc
import zipfile

from hub.services.adapters import adapter_create
from hub.services.zips import zip_stream
from hub.views.files import archive_response

MIB = 1024 * 1024


def write_big_adapter(folder, rank: int, module: str = "q"):
    """One targeted module with A [rank, 64] and B [64, rank], float32, zero data."""
    folder.mkdir()
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": rank,
        "target_modules": [module],
        "base_model_name_or_path": "lorahub/tiny-t5",
        "task_type": "SEQ_2_SEQ_LM",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    nbytes = rank * 64 * 4
    prefix = f"base_model.model.encoder.block.0.layer.0.SelfAttention.{module}"
    header = json.dumps(
        {
            f"{prefix}.lora_A.weight": {
                "dtype": "F32",
                "shape": [rank, 64],
                "data_offsets": [0, nbytes],
            },
            f"{prefix}.lora_B.weight": {
                "dtype": "F32",
                "shape": [64, rank],
                "data_offsets": [nbytes, 2 * nbytes],
            },
        }  # fmt: skip
    ).encode()
    with open(folder / "adapter_model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 2 * nbytes)  # zeros, without building them in memory
    return folder


def test_upload_and_zip_stream_in_bounded_memory(alice, tmp_path, media_root):
    rank = 128 * 1024  # 2 x 32 MiB
    folder = write_big_adapter(tmp_path / "big", rank)
    size = (folder / "adapter_model.safetensors").stat().st_size
    assert size > 64 * MIB
    files = {p.name: p for p in folder.iterdir()}

    tracemalloc.start()
    adapter = adapter_create(owner=alice, name="big", files=files)
    _, upload_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    response = archive_response(adapter.current_version)
    total = 0
    last = b""
    for chunk in response.streaming_content:
        total += len(chunk)
        last = (last + chunk)[-MIB:]  # keep the end for the central directory check
    _, zip_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    version = adapter.current_version
    assert (version.r, version.param_count) == (rank, 2 * rank * 64)
    assert version.files.get(filename="adapter_model.safetensors").blob.size == size
    assert upload_peak < 8 * MIB, upload_peak
    assert zip_peak < 8 * MIB, zip_peak
    assert size < total < size + MIB
    assert b"big/adapter_model.safetensors" in last  # the central directory names it


def test_zip_stream_round_trip():
    entries = [("a/x.bin", 5, io.BytesIO(b"hello")), ("a/y.json", 2, io.BytesIO(b"{}"))]
    data = b"".join(zip_stream(entries))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert zf.read("a/x.bin") == b"hello" and zf.read("a/y.json") == b"{}"
