"""Import from and push to an upstream hub: a second running instance of this site."""

from pathlib import Path

import pytest
import yaml
from huggingface_hub import HfApi, hf_hub_download

from hfapi.models import AdapterSource
from hub.models import Adapter


@pytest.fixture
def upstream_settings(settings, upstream):
    settings.LORAHUB_UPSTREAM_ENDPOINT = upstream[0]
    return upstream


def test_import_from_upstream_with_provenance(alice_client, upstream_settings, adapter_dir):
    url, _ = upstream_settings
    upstream_head = HfApi(endpoint=url, token=False).model_info("carol/upstream-lora").sha
    response = alice_client.post(
        "/new/from-hugging-face/", {"source": "carol/upstream-lora@v1", "name": ""}
    )
    assert response.status_code == 302
    adapter = Adapter.objects.get(owner__username="alice", name="upstream-lora")
    assert adapter.license == "mit"
    files = {f.filename: f.blob for f in adapter.current_version.files.select_related("blob")}
    weights = (adapter_dir / "adapter_model.safetensors").read_bytes()
    assert files["adapter_model.safetensors"].size == len(weights)
    source = AdapterSource.objects.get(adapter=adapter)
    assert (source.endpoint, source.repo_id, source.revision) == (
        url,
        "carol/upstream-lora",
        upstream_head,
    )
    assert upstream_head in adapter.current_version.message


def test_import_errors_are_clear_and_store_nothing(alice_client, upstream_settings):
    url, token = upstream_settings
    page = alice_client.post("/new/from-hugging-face/", {"source": "carol/hidden-lora"})
    assert page.status_code == 200
    assert b"was not found" in page.content and b"give a token" in page.content
    page = alice_client.post("/new/from-hugging-face/", {"source": "carol/upstream-lora@v7"})
    assert b"has no revision" in page.content
    assert not Adapter.objects.filter(owner__username="alice").exists()
    # With carol's token the private one imports.
    ok = alice_client.post(
        "/new/from-hugging-face/", {"source": "carol/hidden-lora", "token": token, "name": "h"}
    )
    assert ok.status_code == 302
    assert Adapter.objects.get(owner__username="alice", name="h").private is True


def test_push_a_merge_to_upstream(alice_client, sql_lora, secret_lora, upstream_settings, tmp_path):
    from composer.models import Lineage

    page = alice_client.get("/new/from-hugging-face/").content.decode()
    assert 'href="/alice/sql-lora/push-to-hub"' in page

    url, token = upstream_settings
    version = sql_lora.current_version
    Lineage.objects.create(
        child=version,
        parent=secret_lora.current_version,
        parent_label="alice/secret-lora",
        position=0,
        weight=0.5,
        method="ties",
    )
    response = alice_client.post(
        "/alice/sql-lora/push-to-hub", {"repo_id": "carol/sql-merge", "token": token}
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    remote = HfApi(endpoint=url, token=token)
    info = remote.model_info("carol/sql-merge")
    assert info.card_data["base_model"] == "lorahub-test/tiny-llama"
    card = hf_hub_download(
        "carol/sql-merge", "README.md", endpoint=url, token=token, cache_dir=tmp_path
    )
    meta = yaml.safe_load(Path(card).read_text().split("---")[1])
    assert meta["base_model_relation"] == "merge"
    assert meta["parents"] == ["alice/secret-lora"]
    assert meta["library_name"] == "peft"
    weights = remote.hf_hub_download(
        "carol/sql-merge", "adapter_model.safetensors", cache_dir=tmp_path
    )
    blob = version.files.get(filename="adapter_model.safetensors").blob
    assert Path(weights).stat().st_size == blob.size


def test_push_with_a_bad_token_says_so(alice_client, sql_lora, upstream_settings):
    response = alice_client.post(
        "/alice/sql-lora/push-to-hub", {"repo_id": "carol/x", "token": "hf_wrong"}
    )
    assert response.status_code == 200
    assert b"refused" in response.content and b"Invalid credentials" in response.content
