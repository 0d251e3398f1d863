"""Large files through Xet with the client as a default install has it (no env variable)."""

import io
import json
import os
import struct

import hypothesis
import lz4.frame
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from safetensors.numpy import save_file

from hfapi.models import XetXorb
from hfapi.xet import access, merkle, shards, store, xorbs
from hub.models import AdapterVersion
from hub.services.quota import storage_used

# Reference vectors of the Xet protocol: eight (hash, size) leaves, and 64 leaves cycling
# through them, with the xorb hash and the (unsalted) file hash of each list.
LEAVES = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
    "c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72",
    "0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37",
    "adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784",
    "4ac202caf347fc1e9c874b1ef6a1c5e619141eb775a6f43f0f0124ccd0060d9e",
    "b3b28636f65c149ea52eb1f94669466f70f033b54cea792824c696ba6ef3c389",
    "0e2c1a002aae913d2c0fc8ddfa4e9e14b7b311b3b0d458726d5d9f6a6318013c",
]
REFERENCE = [
    (
        8,
        "f62abe77e3fb9c954fe52b0028027ddc90c064c45951a4fd2211d87e5c0011db",
        "d1b068be5bbdb38992269e8efe61f601881e39f7a7585fd76883cc6ea5c23b44",
    ),
    (
        64,
        "6554007c9b5d0a5e7918f79596a1b68815c1407535585435f5735db761f21b88",
        "a8640ab81d48854e00078e12b1ea8be5d90be0ffb5f73a15b7009981d093ddd8",
    ),
]


@pytest.mark.parametrize("count,xorb_hex,file_hex", REFERENCE)
def test_hashes_match_the_protocol_reference(count, xorb_hex, file_hex):
    leaves = [(merkle.from_hex(LEAVES[i % 8]), (i % 8) * 100) for i in range(count)]
    assert merkle.to_hex(merkle.xorb_hash(leaves)) == xorb_hex
    assert merkle.to_hex(merkle.file_hash(leaves)) == file_hex
    assert merkle.to_hex(merkle.from_hex(xorb_hex)) == xorb_hex
    with pytest.raises(ValueError):
        merkle.from_hex(xorb_hex.upper())


# Serializing xorbs and shards as the client does (the server only ever reads them).


def _grouped(data: bytes) -> bytes:
    return b"".join(data[lane::4] for lane in range(4))


def chunk_record(
    data: bytes, scheme: int = xorbs.LZ4, *, size: int | None = None, as_client: bool = True
) -> bytes:
    stored = {
        xorbs.NONE: data,
        xorbs.LZ4: lz4.frame.compress(data),
        xorbs.BG4_LZ4: lz4.frame.compress(_grouped(data)),
    }[scheme]
    if as_client and len(stored) >= len(data):  # the client keeps such chunks as they are
        scheme, stored = xorbs.NONE, data
    return _record(stored, scheme, len(data) if size is None else size)


def _record(stored: bytes, scheme: int, size: int) -> bytes:
    header = bytes([0]) + len(stored).to_bytes(3, "little") + bytes([scheme])
    return header + size.to_bytes(3, "little") + stored


def make_xorb(chunks: list[bytes], schemes=None) -> tuple[str, bytes]:
    schemes = schemes or [xorbs.LZ4] * len(chunks)
    body = b"".join(chunk_record(c, s) for c, s in zip(chunks, schemes, strict=True))
    leaves = [(merkle.chunk_hash(c), len(c)) for c in chunks]
    # A footer the server skips: it recomputes what the footer says.
    return merkle.to_hex(merkle.xorb_hash(leaves)), body + b"XETBLOB\x01" + bytes(40)


def make_shard(files: list[tuple[str, list[tuple[str, int, int, int]]]]) -> bytes:
    out = shards.TAG + struct.pack("<QQ", 2, 200)
    for file_hex, terms in files:
        out += merkle.from_hex(file_hex) + struct.pack("<IIQ", 0, len(terms), 0)
        for xorb_hex, size, start, end in terms:
            out += merkle.from_hex(xorb_hex) + struct.pack("<IIII", 0, size, start, end)
    return out + shards.BOOKEND + bytes(16)


def test_xorb_chunks_read_in_every_compression():
    chunks = [os.urandom(1000), b"abc" * 5000, bytes(range(256)) * 20 + b"odd"]
    xorb_hex, body = make_xorb(chunks, [xorbs.NONE, xorbs.LZ4, xorbs.BG4_LZ4])
    assert list(xorbs.iter_chunks(io.BytesIO(body))) == chunks
    leaves, index = xorbs.read_xorb(io.BytesIO(body))
    assert merkle.to_hex(merkle.xorb_hash(leaves)) == xorb_hex
    assert index.content == (0, 1000, 16000, 21123)
    assert xorbs.XorbIndex.from_bytes(index.to_bytes()) == index
    stream = io.BytesIO(body)
    stream.seek(index.stored[1])
    assert list(xorbs.iter_chunks(stream, limit=1)) == chunks[1:2]


@pytest.mark.parametrize(
    "body,reason",
    [
        (chunk_record(b"x" * 100)[:5], "ends inside a chunk header"),
        (chunk_record(b"x" * 100)[:-3], "ends inside a chunk"),
        (chunk_record(b"x" * 100, size=99), "does not have the size"),
        (chunk_record(b"\0" * (xorbs.MAX_CHUNK_BYTES + 1)), "larger than the chunk limit"),
        (chunk_record(b"x" * 100, xorbs.NONE, size=90), "more room than its content"),
        (chunk_record(b"xy", xorbs.LZ4, as_client=False), "more room than its content"),
        (_record(lz4.frame.compress(b"x" * 1000) + bytes(9), xorbs.LZ4, 1000), "whole LZ4"),
        (bytes([0, 3, 0, 0, 7, 3, 0, 0]) + b"abc", "unknown version or compression"),
        (bytes([0, 5, 0, 0, 1, 5, 0, 0]) + b"junk!", "LZ4 frame"),
        (b"", "holds no chunk"),
    ],
)
def test_hostile_xorbs_are_refused(body, reason):
    with pytest.raises(xorbs.XorbFormatError, match=reason):
        xorbs.read_xorb(io.BytesIO(body))


def test_a_compression_bomb_stops_at_the_declared_size():
    # A chunk's worth declared, 16 MiB inside the frame: decompression stops just past it.
    bomb = lz4.frame.compress(bytes(16 * 1024 * 1024))
    with pytest.raises(xorbs.XorbFormatError, match="whole LZ4 frame of the size"):
        xorbs.read_xorb(io.BytesIO(_record(bomb, xorbs.LZ4, xorbs.MAX_CHUNK_BYTES)))


@pytest.mark.parametrize(
    "shard,reason",
    [
        (b"not a shard" * 10, "header tag"),
        (make_shard([])[:60], "ends inside"),
        (make_shard([("ab" * 32, [])]), "1 to"),
        (make_shard([("ab" * 32, [("cd" * 32, 10, 3, 3)])]), "names no chunk"),
    ],
)
def test_hostile_shards_are_refused(shard, reason):
    with pytest.raises(shards.ShardFormatError, match=reason):
        shards.read_files(io.BytesIO(shard))


FUZZ = hypothesis.settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
_, VALID_XORB = make_xorb([b"abc" * 3000, os.urandom(2000), bytes(range(256)) * 40])
VALID_SHARD = make_shard([("ab" * 32, [("cd" * 32, 100, 0, 2), ("ef" * 32, 5, 7, 9)])])


def _mutated(valid: bytes):
    """A valid input with some bytes overwritten, cut short or extended."""
    edits = st.lists(st.tuples(st.integers(0, len(valid) - 1), st.binary(min_size=1, max_size=4)))
    return st.tuples(edits, st.integers(0, len(valid)), st.binary(max_size=64)).map(
        lambda t: _apply(valid, *t)
    )


def _apply(valid: bytes, edits, cut: int, tail: bytes) -> bytes:
    data = bytearray(valid)
    for at, new in edits:
        data[at : at + len(new)] = new
    return bytes(data[:cut]) + tail


@FUZZ
@given(st.binary(max_size=512) | _mutated(VALID_XORB))
def test_fuzz_xorbs_only_raise_their_error(body):
    try:
        xorbs.read_xorb(io.BytesIO(body))
    except xorbs.XorbFormatError:
        pass


@FUZZ
@given(st.binary(max_size=512).map(lambda b: VALID_SHARD[:48] + b) | _mutated(VALID_SHARD))
def test_fuzz_shards_only_raise_their_error(body):
    try:
        shards.read_files(io.BytesIO(body))
    except shards.ShardFormatError:
        pass


# The live server, with the real client.


@pytest.fixture(autouse=True)
def own_media(settings, tmp_path):
    """A storage of this test's own, so what it finds stored is what it sent."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def default_client():
    """huggingface_hub as installed, with hf_xet and no variable turning Xet off."""
    from huggingface_hub import constants
    from huggingface_hub.utils._runtime import is_xet_available
    from huggingface_hub.utils._xet import abort_xet_session

    assert "HF_HUB_DISABLE_XET" not in os.environ
    assert not constants.HF_HUB_DISABLE_XET and is_xet_available()
    yield
    # hf_xet keeps its connections open (and sends telemetry after a failure): drop them so
    # the live server's request threads end and release their database connections.
    abort_xet_session()


@pytest.fixture
def big_adapter(adapter_dir, tmp_path):
    """A valid 14 MB adapter: the test adapter's layout at rank 7000."""
    rank = 7000
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    config.update(r=rank, lora_alpha=2 * rank)
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(7)
    tensors = {}
    for layer in (0, 1):
        for module in ("q_proj", "v_proj"):
            key = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{key}.lora_A.weight"] = rng.standard_normal((rank, 64), np.float32)
            tensors[f"{key}.lora_B.weight"] = rng.standard_normal((64, rank), np.float32)
    save_file(tensors, folder / "adapter_model.safetensors")
    return folder


def _stored_xorbs() -> list[str]:
    try:
        return default_storage.listdir(f"{store.ROOT}/xorbs")[1]
    except FileNotFoundError:
        return []


def test_default_client_uploads_and_downloads_a_large_adapter(
    api, hub, alice_write, big_adapter, default_client, tmp_path
):
    from huggingface_hub import CommitOperationAdd, hf_hub_download

    weights = big_adapter / "adapter_model.safetensors"
    assert 12 * 1024**2 < weights.stat().st_size < 20 * 1024**2
    hf = api(alice_write)
    hf.create_repo("big-lora")
    commit = hf.upload_folder(repo_id="alice/big-lora", folder_path=big_adapter)

    assert _stored_xorbs(), "the weights did not go through Xet"
    version = AdapterVersion.objects.get(commit=commit.oid)
    blob = version.files.get(filename="adapter_model.safetensors").blob
    assert blob.size == weights.stat().st_size
    # The file rebuilt from the xorbs was staged, then committed (and its staged copy dropped).
    assert not default_storage.exists(f"hfapi-lfs/{version.adapter.owner_id}/{blob.sha256}")

    path = hf_hub_download(
        "alice/big-lora", "adapter_model.safetensors", endpoint=hub, cache_dir=tmp_path / "dl"
    )
    assert open(path, "rb").read() == weights.read_bytes()

    # A second version from bytes, 1% changed in the middle of the weights: hf_xet sends
    # only the new chunks, and the shard rebuilds the rest from the first version's xorbs.
    data = bytearray(weights.read_bytes())
    middle = len(data) // 2
    data[middle : middle + len(data) // 100] = os.urandom(len(data) // 100)
    xorb_bytes = sum(default_storage.size(f"{store.ROOT}/xorbs/{x}") for x in _stored_xorbs())
    second = hf.create_commit(
        "alice/big-lora",
        [CommitOperationAdd("adapter_model.safetensors", bytes(data))],
        commit_message="1% changed",
    )
    added = sum(default_storage.size(f"{store.ROOT}/xorbs/{x}") for x in _stored_xorbs())
    assert 0 < added - xorb_bytes < len(data) // 10
    path = hf_hub_download(
        "alice/big-lora",
        "adapter_model.safetensors",
        revision=second.oid,
        endpoint=hub,
        cache_dir=tmp_path / "dl",
    )
    assert open(path, "rb").read() == data


def _cas(hub, token, method, path, body=b""):
    import httpx2

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.request(method, f"{hub}/xet{path}", headers=headers, content=body)


@pytest.fixture
def xet_write(hub, alice_write, api):
    import httpx2

    api(alice_write).create_repo("xet-target")
    answer = httpx2.get(
        f"{hub}/api/models/alice/xet-target/xet-write-token/main",
        headers={"Authorization": f"Bearer {alice_write}"},
    )
    assert answer.status_code == 200
    assert answer.json()["casUrl"] == f"{hub}/xet"
    assert answer.headers["X-Xet-Cas-Url"] == f"{hub}/xet"
    return answer.json()["accessToken"]


def test_write_tokens_only_for_who_may_change_the_repo(
    hub, xet_write, alice, bob_write, alice_read
):
    import httpx2

    url = f"{hub}/api/models/alice/xet-target/xet-write-token/main"
    # Bob cannot see the empty repository at all; a read token may not write.
    for token, status in [(bob_write, 404), (alice_read, 403), (None, 401)]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert httpx2.get(url, headers=headers).status_code == status
    xorb_hex, body = make_xorb([b"hello" * 100])
    read_token, _ = access.issue(alice.pk, "alice/xet-target", access.READ)
    assert _cas(hub, None, "POST", f"/v1/xorbs/default/{xorb_hex}", body).status_code == 401
    assert _cas(hub, bob_write, "POST", f"/v1/xorbs/default/{xorb_hex}", body).status_code == 401
    assert _cas(hub, read_token, "POST", f"/v1/xorbs/default/{xorb_hex}", body).status_code == 403
    assert _stored_xorbs() == []


def test_xorb_under_another_hash_is_refused_and_not_stored(hub, xet_write):
    xorb_hex, body = make_xorb([os.urandom(5000), os.urandom(7000)])
    other_hex, _ = make_xorb([b"something else"])
    answer = _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{other_hex}", body)
    assert answer.status_code == 400 and "do not hash" in answer.json()["error"]
    assert _cas(hub, xet_write, "POST", "/v1/xorbs/default/nothex", body).status_code == 400
    assert _stored_xorbs() == []
    answer = _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{xorb_hex}", body)
    assert answer.status_code == 200 and answer.json() == {"was_inserted": True}
    answer = _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{xorb_hex}", body)
    assert answer.json() == {"was_inserted": False}
    assert _stored_xorbs() == [xorb_hex]


def test_oversized_xorb_is_refused_before_reading(hub, xet_write):
    from http.client import HTTPConnection
    from urllib.parse import urlsplit

    # Announce more than a xorb can be and send nothing: the answer comes from the length.
    connection = HTTPConnection(urlsplit(hub).netloc, timeout=10)
    connection.putrequest("POST", f"/xet/v1/xorbs/default/{'ab' * 32}")
    connection.putheader("Authorization", f"Bearer {xet_write}")
    connection.putheader("Content-Length", str(xorbs.MAX_SERIALIZED_BYTES + 1))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()


def _staged(user) -> list[str]:
    try:
        return default_storage.listdir(f"hfapi-lfs/{user.pk}")[1]
    except FileNotFoundError:
        return []


def test_shards_must_match_stored_xorbs(hub, xet_write, alice):
    chunks = [os.urandom(3000), os.urandom(4000)]
    xorb_hex, body = make_xorb(chunks)
    assert _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{xorb_hex}", body).status_code == 200
    leaves = [(merkle.chunk_hash(c), len(c)) for c in chunks]
    file_hex = merkle.to_hex(merkle.file_hash(leaves))
    missing_hex, _ = make_xorb([b"never sent"])
    wrong_file = merkle.to_hex(merkle.file_hash(leaves[:1]))
    refused = [
        (make_shard([(file_hex, [(missing_hex, 7000, 0, 2)])]), "was not uploaded"),
        (make_shard([(wrong_file, [(xorb_hex, 7000, 0, 2)])]), "does not match the chunks"),
        (make_shard([(file_hex, [(xorb_hex, 6999, 0, 2)])]), "does not match its chunks"),
        (make_shard([(file_hex, [(xorb_hex, 7000, 0, 3)])]), "past the end"),
    ]
    for shard, reason in refused:
        answer = _cas(hub, xet_write, "POST", "/v1/shards", shard)
        assert answer.status_code == 400 and reason in answer.json()["error"], answer.json()
    assert _staged(alice) == []

    shard = make_shard([(file_hex, [(xorb_hex, 7000, 0, 2)])])
    answer = _cas(hub, xet_write, "POST", "/v1/shards", shard)
    assert answer.status_code == 200 and answer.json() == {"result": 1}
    import hashlib

    assert _staged(alice) == [hashlib.sha256(b"".join(chunks)).hexdigest()]


def test_a_shard_cannot_rebuild_far_more_than_it_names(hub, xet_write, alice, monkeypatch):
    monkeypatch.setattr(store, "REBUILD_SLACK", 0)
    chunk = os.urandom(7000)
    xorb_hex, body = make_xorb([chunk])
    assert _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{xorb_hex}", body).status_code == 200
    for repeats, status in [(5, 400), (4, 200)]:
        leaves = [(merkle.chunk_hash(chunk), 7000)] * repeats
        file_hex = merkle.to_hex(merkle.file_hash(leaves))
        shard = make_shard([(file_hex, [(xorb_hex, 7000, 0, 1)] * repeats)])
        answer = _cas(hub, xet_write, "POST", "/v1/shards", shard)
        assert answer.status_code == status, answer.json()
    assert len(_staged(alice)) == 1


def test_xorbs_are_kept_for_the_clients_dedup_window(alice):
    import time

    from django.core.management import call_command

    xorb_hex, body = make_xorb([b"kept" * 1000])
    assert store.receive_xorb(alice, xorb_hex, [body])
    path = default_storage.path(store.xorb_name(xorb_hex))
    old = time.time() - 27 * 86400
    os.utime(path, (old, old))
    call_command("hfapi_clear_staging", hours=1)
    assert store.xorb_exists(xorb_hex)  # younger than KEEP: the client may still use it
    old = time.time() - 29 * 86400
    os.utime(path, (old, old))
    call_command("hfapi_clear_staging", hours=1)
    assert not store.xorb_exists(xorb_hex)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    from tests.s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


def test_xorbs_on_s3_are_read_by_their_chunks(settings, s3, alice, tmp_path):
    """On a bucket a term is read from its first chunk on, with no local copy of the xorb."""
    import hashlib
    from datetime import timedelta

    from django.utils import timezone

    from hfapi import staging

    settings.STORAGES = {**settings.STORAGES, "default": s3.storage()}
    settings.MEDIA_ROOT = nowhere = tmp_path / "no-media-here"
    chunks = [os.urandom(50_000) for _ in range(6)]
    first_hex, first = make_xorb(chunks[:4])
    second_hex, second = make_xorb(chunks[4:])
    assert store.receive_xorb(alice, first_hex, [first[:1000], first[1000:]])
    assert store.receive_xorb(alice, second_hex, [second])
    # The middle of the first xorb, then all of the second.
    used = chunks[1:3] + chunks[4:]
    file_hex = merkle.to_hex(merkle.file_hash([(merkle.chunk_hash(c), len(c)) for c in used]))
    info = shards.FileInfo(
        file_hex,
        (shards.Term(first_hex, 100_000, 1, 3), shards.Term(second_hex, 100_000, 0, 2)),
        None,
    )
    content = b"".join(used)
    assert store.rebuild_files(alice, [info]) == [hashlib.sha256(content).hexdigest()]
    with staging.open_staged(alice.pk, hashlib.sha256(content).hexdigest()) as staged:
        assert staged.read() == content
    assert not nowhere.exists()
    later = timezone.now() + timedelta(minutes=1)
    assert store.clear_stale(later) == 4  # two xorbs and their indexes
    assert not any(key.startswith("hfapi-xet/") for key in s3.keys())


def test_default_client_is_refused_a_file_over_the_limit(
    api, alice, alice_write, big_adapter, default_client, settings
):
    from huggingface_hub.errors import HfHubHTTPError

    settings.LORAHUB_MAX_FILE_BYTES = 10 * 1024**2
    hf = api(alice_write)
    hf.create_repo("too-big")
    # Refused at preupload, before any transfer: hf_xet would show only a status.
    with pytest.raises(HfHubHTTPError, match=r"larger than the 10\.0\sMB file limit"):
        hf.upload_folder(repo_id="alice/too-big", folder_path=big_adapter)
    assert _stored_xorbs() == [] and _staged(alice) == []
    assert not AdapterVersion.objects.filter(adapter__name="too-big").exists()


# The storage quota: xorbs count while kept, rebuilt files before they are staged.


def test_xorbs_past_the_quota_are_refused_and_not_stored(hub, xet_write, alice, settings):
    first_hex, first = make_xorb([os.urandom(20_000)])
    second_hex, second = make_xorb([os.urandom(20_000)])
    settings.LORAHUB_USER_QUOTA_BYTES = len(first) + len(second) - 1
    answer = _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{first_hex}", first)
    assert answer.json() == {"was_inserted": True}
    answer = _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{second_hex}", second)
    assert answer.status_code == 413 and "storage quota" in answer.json()["error"]
    assert _stored_xorbs() == [first_hex]
    assert list(XetXorb.objects.values_list("xorb", flat=True)) == [first_hex]
    # Sending a xorb again costs nothing more, even at the quota.
    settings.LORAHUB_USER_QUOTA_BYTES = len(first)
    answer = _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{first_hex}", first)
    assert answer.status_code == 200 and answer.json() == {"was_inserted": False}
    assert storage_used(alice) == len(first)


def test_quota_usage_counts_each_uploaders_xorbs_while_kept(alice, bob):
    from datetime import timedelta

    xorb_hex, body = make_xorb([os.urandom(30_000)])
    assert storage_used(alice) == storage_used(bob) == 0
    assert store.receive_xorb(alice, xorb_hex, [body])
    assert storage_used(alice) == len(body)
    # Stored once, but Bob's shards may rely on it now: it counts for him too.
    assert not store.receive_xorb(bob, xorb_hex, [body])
    assert storage_used(bob) == len(body)
    assert not store.receive_xorb(alice, xorb_hex, [body])
    assert storage_used(alice) == len(body)
    XetXorb.objects.filter(user=alice).update(uploaded_at=timezone.now() - store.KEEP)
    assert storage_used(alice) == 0 and storage_used(bob) == len(body)
    assert store.clear_stale(timezone.now() - store.KEEP + timedelta(minutes=1)) == 0
    assert XetXorb.objects.filter(user=alice).count() == 0


def test_a_rebuilt_file_past_the_quota_is_not_staged(hub, xet_write, alice, settings):
    chunks = [os.urandom(10_000), os.urandom(12_000)]
    xorb_hex, body = make_xorb(chunks)
    assert _cas(hub, xet_write, "POST", f"/v1/xorbs/default/{xorb_hex}", body).status_code == 200
    leaves = [(merkle.chunk_hash(c), len(c)) for c in chunks]
    shard = make_shard([(merkle.to_hex(merkle.file_hash(leaves)), [(xorb_hex, 22_000, 0, 2)])])
    settings.LORAHUB_USER_QUOTA_BYTES = len(body) + 22_000 - 1
    answer = _cas(hub, xet_write, "POST", "/v1/shards", shard)
    assert answer.status_code == 413 and "storage quota" in answer.json()["error"]
    assert _staged(alice) == []
    settings.LORAHUB_USER_QUOTA_BYTES = len(body) + 22_000
    assert _cas(hub, xet_write, "POST", "/v1/shards", shard).status_code == 200
    assert len(_staged(alice)) == 1
    # Sent again (a retry), the staged file replaces itself: it is not counted twice.
    assert _cas(hub, xet_write, "POST", "/v1/shards", shard).status_code == 200


def test_default_client_over_the_quota_is_told_why(
    api, alice, alice_write, big_adapter, default_client, settings
):
    from huggingface_hub.errors import HfHubHTTPError

    settings.LORAHUB_USER_QUOTA_BYTES = 10 * 1024**2
    hf = api(alice_write)
    hf.create_repo("over-quota")
    with pytest.raises(HfHubHTTPError, match=r"of your 10\.0\sMB storage quota"):
        hf.upload_folder(repo_id="alice/over-quota", folder_path=big_adapter)
    assert _stored_xorbs() == [] and _staged(alice) == []
    assert not AdapterVersion.objects.filter(adapter__name="over-quota").exists()
