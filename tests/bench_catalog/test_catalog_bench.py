"""The catalog benchmark's parts stay in step with the catalog they measure."""

import json

import pytest
from django.db import connection
from django.test import RequestFactory

from bench.catalog_big_adapter import adapter_config, tensor_shapes, write_safetensors
from bench.catalog_multipart import MultipartBody
from hub.models import Adapter, AdapterFile, AdapterVersion
from hub.services.validation import validate_adapter_files
from tests.services import require

SEED_SIZE = 200


@pytest.fixture
def seeded(db):
    require(connection.vendor == "postgresql", "PostgreSQL (the seed loads with COPY)")
    from bench.catalog_seed import catalog_seed

    catalog_seed(SEED_SIZE)
    return Adapter.objects.order_by("pk")


def test_seed_adds_adapters_with_versions_files_and_tags(seeded):
    assert seeded.count() == SEED_SIZE
    versions = AdapterVersion.objects.filter(adapter__in=seeded)
    assert SEED_SIZE <= versions.count() <= 3 * SEED_SIZE
    assert AdapterFile.objects.filter(version__in=versions).count() == 2 * versions.count()
    for adapter in seeded.prefetch_related("versions", "tags"):
        assert adapter.current_version.number == max(v.number for v in adapter.versions.all())
        assert adapter.tags.exists()
    assert 0 < seeded.filter(private=True).count() < SEED_SIZE // 4
    assert not seeded.filter(search_vector__isnull=True).exists()
    assert seeded.values("base_model").distinct().count() > 5


def test_seed_is_deterministic(seeded):
    from bench.catalog_seed import catalog_seed

    first = list(seeded.values_list("name", "downloads", "private"))
    catalog_seed(SEED_SIZE, user_prefix="again")
    again = Adapter.objects.filter(owner__username__startswith="again").order_by("pk")
    assert list(again.values_list("name", "downloads", "private")) == first


def test_benchmark_pages_list_the_seeded_adapters(seeded, client):
    from bench.catalog_latency import CARD, SCENARIOS

    public = seeded.filter(private=False)
    response = client.get("/adapters/")
    assert response.status_code == 200
    assert response.content.count(CARD) == 20
    assert f'class="count">{public.count()}<'.encode() in response.content
    assert public.order_by("-downloads", "name").first().name.encode() in response.content
    for name, (path, _) in SCENARIOS.items():
        response = client.get(path)
        assert response.status_code == 200, name
        assert CARD in response.content, f"{name} ({path}) lists no adapter"


def test_big_adapter_generator_writes_what_validation_accepts(tmp_path):
    shapes = tensor_shapes(layers=2, hidden=64, rank=4)
    write_safetensors(tmp_path / "adapter_model.safetensors", shapes)
    (tmp_path / "adapter_config.json").write_text(json.dumps(adapter_config(rank=4)))
    meta = validate_adapter_files(
        {name: tmp_path / name for name in ("adapter_config.json", "adapter_model.safetensors")}
    )
    assert (meta.r, meta.dtype) == (4, "float32")
    assert meta.param_count == 2 * 4 * 2 * 4 * 64  # layers * modules * (A + B) * r * hidden


def test_streamed_multipart_body_parses_as_sent(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"r": 4}')
    (tmp_path / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 5000)
    files = [
        ("files", tmp_path / "adapter_config.json"),
        ("files", tmp_path / "adapter_model.safetensors"),
    ]
    body = MultipartBody({"name": "x-1", "tags": "a, b"}, files)
    raw = b"".join(body)
    assert len(raw) == len(body)
    request = RequestFactory().generic("POST", "/", data=raw, content_type=body.content_type)
    assert request.POST.dict() == {"name": "x-1", "tags": "a, b"}
    uploaded = {f.name: f.read() for f in request.FILES.getlist("files")}
    assert uploaded == {path.name: path.read_bytes() for _, path in files}
