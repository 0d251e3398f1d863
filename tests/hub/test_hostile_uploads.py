"""Every refusal: a clear message, a 400, and nothing stored (no rows, no files)."""

import io
import json
import os
import pickle
import struct
import zipfile

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from safetensors.torch import save as safetensors_save

from hub.models import Adapter, AdapterVersion, Blob, Tag
from tests.hub.conftest import folder_zip, zip_bytes

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


class MakesDirectoryWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def read(adapter_dir, name) -> bytes:
    return (adapter_dir / name).read_bytes()


def config_with(adapter_dir, **changes) -> bytes:
    config = json.loads(read(adapter_dir, CONFIG))
    config.update(changes)
    return json.dumps(config).encode()


def lora_weights(
    modules: dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]],
) -> bytes:
    """A safetensors file with lora_A / lora_B of the given shapes (None: leave it out)."""
    tensors = {}
    for module, (a_shape, b_shape) in modules.items():
        prefix = f"base_model.model.{module}"
        if a_shape:
            tensors[f"{prefix}.lora_A.weight"] = torch.zeros(a_shape)
        if b_shape:
            tensors[f"{prefix}.lora_B.weight"] = torch.zeros(b_shape)
    return safetensors_save(tensors)


Q0 = "encoder.block.0.layer.0.SelfAttention.q"
V0 = "encoder.block.0.layer.0.SelfAttention.v"


def assert_refused(client, files: dict[str, bytes], message: str, media_root, status=400):
    uploaded = [SimpleUploadedFile(name, data) for name, data in files.items()]
    response = client.post(reverse("hub:adapter_new"), {"name": "hostile", "files": uploaded})
    assert response.status_code == status
    text = response.content.decode()
    assert message in text, text[text.find("field-error") - 200 :][:1200]
    assert Adapter.objects.count() == 0
    assert AdapterVersion.objects.count() == 0
    assert Blob.objects.count() == 0
    assert not any(p.is_file() for p in media_root.rglob("*"))
    return text


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt"])
def test_pickle_weights_are_refused_and_never_unpickled(
    alice_client, adapter_dirs, media_root, tmp_path, suffix
):
    sentinel = tmp_path / "unpickled"
    payload = pickle.dumps(MakesDirectoryWhenUnpickled(str(sentinel)))
    files = {CONFIG: read(adapter_dirs["r4"], CONFIG), f"adapter_model{suffix}": payload}
    text = assert_refused(alice_client, files, "is a pickle file", media_root)
    assert "safetensors" in text
    assert not sentinel.exists()


def test_pickle_inside_zip_is_refused(alice_client, adapter_dirs, media_root, tmp_path):
    sentinel = tmp_path / "unpickled"
    archive = zip_bytes(
        {
            f"a/{CONFIG}": read(adapter_dirs["r4"], CONFIG),
            "a/adapter_model.bin": pickle.dumps(MakesDirectoryWhenUnpickled(str(sentinel))),
        }
    )
    assert_refused(alice_client, {"adapter.zip": archive}, "is a pickle file", media_root)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "weights, message",
    [
        (b"\x05\x00", "shorter than the 8-byte header length"),
        (struct.pack("<Q", 20) + b'{"a": ', "the file is truncated"),
        (struct.pack("<Q", 1 << 40) + b"not json", "is not a safetensors file"),
        (struct.pack("<Q", 8) + b"not json", "the header is not valid JSON"),
        (struct.pack("<Q", 1 << 40) + b"{}", "more than the 16,777,216 allowed"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
    ids=["short", "truncated-header", "not-safetensors", "not-json", "huge-header", "not-object"],
)
def test_malformed_safetensors_header(alice_client, adapter_dirs, media_root, weights, message):
    files = {CONFIG: read(adapter_dirs["r4"], CONFIG), WEIGHTS: weights}
    assert_refused(alice_client, files, message, media_root)


def test_truncated_safetensors_data(alice_client, adapter_dirs, media_root):
    weights = read(adapter_dirs["r4"], WEIGHTS)
    files = {CONFIG: read(adapter_dirs["r4"], CONFIG), WEIGHTS: weights[: len(weights) - 100]}
    assert_refused(alice_client, files, "(the file is truncated)", media_root)


def test_trailing_bytes_are_refused(alice_client, adapter_dirs, media_root):
    files = {
        CONFIG: read(adapter_dirs["r4"], CONFIG),
        WEIGHTS: read(adapter_dirs["r4"], WEIGHTS) + b"\0" * 16,
    }
    assert_refused(alice_client, files, "16 bytes follow the last tensor", media_root)


def test_rank_mismatch(alice_client, adapter_dirs, media_root):
    files = {
        CONFIG: config_with(adapter_dirs["r4"], r=8),
        WEIGHTS: read(adapter_dirs["r4"], WEIGHTS),
    }
    assert_refused(alice_client, files, "says rank r=8", media_root)


def test_a_and_b_ranks_disagree(alice_client, adapter_dirs, media_root):
    weights = lora_weights({Q0: ((4, 64), (64, 2))})
    files = {CONFIG: config_with(adapter_dirs["r4"], target_modules=["q"]), WEIGHTS: weights}
    assert_refused(alice_client, files, "lora_B [64, 2]", media_root)


def test_untargeted_module(alice_client, adapter_dirs, media_root):
    files = {
        CONFIG: config_with(adapter_dirs["r4"], target_modules=["q"]),
        WEIGHTS: read(adapter_dirs["r4"], WEIGHTS),
    }
    assert_refused(alice_client, files, "is not in target_modules", media_root)


def test_lora_a_without_b(alice_client, adapter_dirs, media_root):
    weights = lora_weights({Q0: ((4, 64), (64, 4)), V0: ((4, 64), None)})
    files = {CONFIG: read(adapter_dirs["r4"], CONFIG), WEIGHTS: weights}
    assert_refused(alice_client, files, "has lora_A but no lora_B", media_root)


def test_weights_without_lora_tensors(alice_client, adapter_dirs, media_root):
    files = {
        CONFIG: read(adapter_dirs["r4"], CONFIG),
        WEIGHTS: safetensors_save({"shared.weight": torch.zeros(2, 2)}),
    }
    assert_refused(alice_client, files, "is not a LoRA weight", media_root)


@pytest.mark.parametrize(
    "present, message",
    [
        ((CONFIG,), "Missing adapter_model.safetensors"),
        ((WEIGHTS,), "Missing adapter_config.json"),
    ],
)
def test_missing_files(alice_client, adapter_dirs, media_root, present, message):
    files = {name: read(adapter_dirs["r4"], name) for name in present}
    assert_refused(alice_client, files, message, media_root)


def test_config_not_json_or_not_lora(alice_client, adapter_dirs, media_root):
    weights = read(adapter_dirs["r4"], WEIGHTS)
    assert_refused(
        alice_client, {CONFIG: b"{oops", WEIGHTS: weights}, "is not valid JSON", media_root
    )
    assert_refused(
        alice_client,
        {CONFIG: config_with(adapter_dirs["r4"], peft_type="IA3"), WEIGHTS: weights},
        "holds LoRA adapters",
        media_root,
    )


def test_unexpected_file(alice_client, adapter_dirs, media_root):
    files = {name: read(adapter_dirs["r4"], name) for name in (CONFIG, WEIGHTS)}
    files["run.sh"] = b"rm -rf /"
    assert_refused(alice_client, files, "Unexpected file", media_root)


def test_file_over_size_cap(alice_client, adapter_dirs, media_root, settings):
    settings.LORAHUB_MAX_FILE_BYTES = 10_000
    files = {name: read(adapter_dirs["r4"], name) for name in (CONFIG, WEIGHTS)}
    assert len(files[WEIGHTS]) > 10_000
    assert_refused(alice_client, files, "larger than the 9.8\xa0KB limit per file", media_root)


@pytest.mark.parametrize(
    "entry, message",
    [
        ("/etc/adapter_config.json", "has an absolute path"),
        ("../adapter_config.json", "points outside the archive"),
        ("a/../../adapter_config.json", "points outside the archive"),
        ("C:\\adapter_config.json", "has an absolute path"),
    ],
)
def test_zip_paths(alice_client, adapter_dirs, media_root, entry, message):
    archive = zip_bytes({entry: read(adapter_dirs["r4"], CONFIG)})
    assert_refused(alice_client, {"adapter.zip": archive}, message, media_root)


def test_zip_nested_folders(alice_client, adapter_dirs, media_root):
    archive = folder_zip(adapter_dirs["r4"], folder="outer/inner")
    assert_refused(alice_client, {"adapter.zip": archive}, "inside a single folder", media_root)


def test_zip_too_many_entries(alice_client, adapter_dirs, media_root, settings):
    settings.LORAHUB_MAX_ZIP_ENTRIES = 5
    archive = zip_bytes({f"junk{i}.txt": b"x" for i in range(6)})
    assert_refused(
        alice_client, {"adapter.zip": archive}, "The zip has 6 entries; at most 5", media_root
    )


def test_zip_bomb_by_ratio(alice_client, adapter_dirs, media_root):
    archive = zip_bytes(
        {CONFIG: read(adapter_dirs["r4"], CONFIG), WEIGHTS: bytes(50 * 1024 * 1024)}
    )
    assert len(archive) < 200_000
    assert_refused(alice_client, {"adapter.zip": archive}, "looks like a zip bomb", media_root)


def test_zip_entry_declared_size_over_cap(alice_client, adapter_dirs, media_root, settings):
    settings.LORAHUB_MAX_FILE_BYTES = 10_000
    archive = zip_bytes({CONFIG: read(adapter_dirs["r4"], CONFIG), WEIGHTS: bytes(20_000)})
    assert len(archive) < 10_000
    assert_refused(alice_client, {"adapter.zip": archive}, "over the 9.8\xa0KB limit", media_root)


def test_zip_over_size_cap(alice_client, adapter_dirs, media_root, settings):
    settings.LORAHUB_MAX_FILE_BYTES = 10_000
    archive = folder_zip(adapter_dirs["r4"])
    assert_refused(alice_client, {"adapter.zip": archive}, "larger than the 9.8\xa0KB", media_root)


def test_zip_entry_lying_about_its_size(alice_client, adapter_dirs, media_root):
    """An entry that inflates to more than its headers declare is cut off and refused."""
    config = read(adapter_dirs["r4"], CONFIG)
    archive = bytearray(zip_bytes({CONFIG: config, WEIGHTS: read(adapter_dirs["r4"], WEIGHTS)}))
    real, fake = struct.pack("<I", len(config)), struct.pack("<I", 100)
    # The uncompressed size sits in the local header (offset 22) and central directory (24).
    with zipfile.ZipFile(io.BytesIO(bytes(archive))) as zf:
        info = zf.getinfo(CONFIG)
    local = info.header_offset + 22
    assert archive[local : local + 4] == real
    archive[local : local + 4] = fake
    central = archive.find(b"PK\x01\x02")
    assert archive[central + 24 : central + 28] == real
    archive[central + 24 : central + 28] = fake
    assert_refused(alice_client, {"adapter.zip": bytes(archive)}, "Zip entry", media_root)


def test_not_a_zip(alice_client, media_root):
    assert_refused(alice_client, {"adapter.zip": b"PK nope"}, "not a zip file", media_root)


def test_failure_after_storing_leaves_no_files(alice, adapter_dirs, media_root, monkeypatch):
    """A failure after the blobs were written (here: a broken tag insert) removes them."""
    from django.db import IntegrityError

    from hub.services.adapters import adapter_create

    def broken(*args, **kwargs):
        raise IntegrityError("simulated failure while writing rows")

    monkeypatch.setattr(AdapterVersion.objects, "create", broken)
    files = {name: adapter_dirs["r4"] / name for name in (CONFIG, WEIGHTS)}
    with pytest.raises(Exception, match="already have|simulated"):
        adapter_create(owner=alice, name="half", files=files, tags=["x"])
    assert Adapter.objects.count() == 0 and Blob.objects.count() == 0
    assert Tag.objects.count() == 0
    assert not any(p.is_file() for p in media_root.rglob("*"))
