"""Import from and push to an upstream hub (a second running instance of this site) run as
jobs on a fast-lane worker, with progress; an unreachable upstream is a message."""

import io
from pathlib import Path

import pytest
import yaml
from huggingface_hub import HfApi, hf_hub_download

from hfapi.models import AdapterSource, Transfer
from hub.models import Adapter
from hub.services.adapters import adapter_upload
from tests.hfapi.conftest import (  # noqa: F401 (fixtures)
    adapter_dir,
    adapter_dir_b,
    files_of,
    secret_lora,
    sql_lora,
    tiny_base,
    upstream,
)
from tests.jobs.conftest import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]
DEAD = "http://127.0.0.1:8219"  # nothing listens there


@pytest.fixture
def storage_dirs(jobs_env):
    """Catalog files go where the workers read them."""


@pytest.fixture(autouse=True)
def _shared_storage(storage_dirs):
    """Before any adapter fixture stores files."""


@pytest.fixture
def upstream_settings(settings, upstream, storage_dirs, fast_lane):  # noqa: F811
    settings.LORAHUB_UPSTREAM_ENDPOINT = upstream[0]
    return upstream


def transfer_wait(response, worker) -> Transfer:
    assert response.status_code == 302, response.content.decode()[-2000:]
    transfer = Transfer.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))

    def finished():
        transfer.refresh_from_db()
        return transfer.is_finished

    wait_for(finished, 90, message=f"transfer {transfer.pk}\n{worker.log_tail()}")
    return transfer


def test_import_runs_on_a_worker_with_provenance(
    alice_client,
    upstream_settings,
    transfer_worker,
    adapter_dir,  # noqa: F811
):
    url, token = upstream_settings
    upstream_head = HfApi(endpoint=url, token=False).model_info("carol/upstream-lora").sha
    response = alice_client.post(
        "/new/from-hugging-face/", {"source": "carol/upstream-lora@v1", "name": ""}
    )
    transfer = transfer_wait(response, transfer_worker)
    assert transfer.status == Transfer.Status.DONE, transfer.error
    adapter = Adapter.objects.get(owner__username="alice", name="upstream-lora")
    assert transfer.adapter == adapter and adapter.license == "mit"
    files = {f.filename: f.blob for f in adapter.current_version.files.select_related("blob")}
    weights = (adapter_dir / "adapter_model.safetensors").read_bytes()
    assert files["adapter_model.safetensors"].size == len(weights)
    source = AdapterSource.objects.get(adapter=adapter)
    assert (source.endpoint, source.repo_id, source.revision) == (
        url,
        "carol/upstream-lora",
        upstream_head,
    )
    page = alice_client.get(f"/new/transfers/{transfer.pk}/").content.decode()
    assert 'data-status="done"' in page and 'href="/alice/upstream-lora"' in page
    assert "Imported as alice/upstream-lora" in page


def test_import_errors_are_clear_and_store_nothing(
    alice_client, upstream_settings, transfer_worker
):
    url, token = upstream_settings
    hidden = transfer_wait(
        alice_client.post("/new/from-hugging-face/", {"source": "carol/hidden-lora"}),
        transfer_worker,
    )
    assert hidden.status == Transfer.Status.FAILED
    assert "was not found" in hidden.error and "give a token" in hidden.error
    missing = transfer_wait(
        alice_client.post("/new/from-hugging-face/", {"source": "carol/upstream-lora@v7"}),
        transfer_worker,
    )
    assert "has no revision" in missing.error
    assert not Adapter.objects.filter(owner__username="alice").exists()
    # A malformed id is said on the form: nothing is queued.
    page = alice_client.post("/new/from-hugging-face/", {"source": "not an id"})
    assert page.status_code == 400 and b"is not a repository id" in page.content
    # With carol's token the private one imports, and the token is shown nowhere.
    ok = transfer_wait(
        alice_client.post(
            "/new/from-hugging-face/", {"source": "carol/hidden-lora", "token": token, "name": "h"}
        ),
        transfer_worker,
    )
    assert ok.status == Transfer.Status.DONE, ok.error
    # The token waited with the transfer only while it ran.
    assert ok.token == hidden.token == missing.token == ""
    assert Adapter.objects.get(owner__username="alice", name="h").private is True
    assert token not in alice_client.get(f"/new/transfers/{ok.pk}/").content.decode()
    assert token.encode() not in transfer_worker.log_path.read_bytes()


def test_push_a_merge_to_upstream(
    alice_client,
    sql_lora,  # noqa: F811
    secret_lora,  # noqa: F811
    upstream_settings,
    transfer_worker,
    tmp_path,
    adapter_dir,  # noqa: F811
):
    from composer.models import Lineage

    url, token = upstream_settings
    # A card's keys the catalog does not hold (model-index) travel too.
    card = b"---\nmodel-index:\n- name: sql\n  results: []\n---\n# SQL\n"
    files = files_of(adapter_dir) | {"README.md": io.BytesIO(card)}
    version = adapter_upload(adapter=sql_lora, files=files, user=sql_lora.owner)
    sql_lora.refresh_from_db()
    Lineage.objects.create(
        child=version,
        parent=secret_lora.current_version,
        parent_label="alice/secret-lora",
        position=0,
        weight=0.5,
        method="ties",
    )
    # Every field travels in the card (the catalog's card data included).
    sql_lora.task = "text-generation"
    sql_lora.card_data = {"datasets": ["x/sql"], "language": ["en"]}
    sql_lora.save(update_fields=["task", "card_data"])
    response = alice_client.post(
        "/alice/sql-lora/push-to-hub", {"repo_id": "carol/sql-merge", "token": token}
    )
    transfer = transfer_wait(response, transfer_worker)
    assert transfer.status == Transfer.Status.DONE, transfer.error
    assert transfer.url.startswith(url)
    remote = HfApi(endpoint=url, token=token)
    info = remote.model_info("carol/sql-merge")
    assert info.card_data["base_model"] == "lorahub-test/tiny-llama"
    card = hf_hub_download(
        "carol/sql-merge", "README.md", endpoint=url, token=token, cache_dir=tmp_path
    )
    meta = yaml.safe_load(Path(card).read_text().split("---")[1])
    assert meta["base_model_relation"] == "merge"
    assert meta["parents"] == ["alice/secret-lora"]
    assert meta["model-index"] == [{"name": "sql", "results": []}]
    assert (meta["pipeline_tag"], meta["datasets"], meta["language"]) == (
        "text-generation",
        ["x/sql"],
        ["en"],
    )
    weights = remote.hf_hub_download(
        "carol/sql-merge", "adapter_model.safetensors", cache_dir=tmp_path
    )
    blob = version.files.get(filename="adapter_model.safetensors").blob
    assert Path(weights).stat().st_size == blob.size


def test_push_with_a_bad_token_says_so(
    alice_client,
    sql_lora,  # noqa: F811
    upstream_settings,
    transfer_worker,
):
    response = alice_client.post(
        "/alice/sql-lora/push-to-hub", {"repo_id": "carol/x", "token": "hf_wrong"}
    )
    transfer = transfer_wait(response, transfer_worker)
    assert transfer.status == Transfer.Status.FAILED
    assert "refused" in transfer.error and "Invalid credentials" in transfer.error
    assert "hf_wrong" not in alice_client.get(f"/new/transfers/{transfer.pk}/").content.decode()


def test_an_unreachable_upstream_is_a_message(
    alice_client,
    sql_lora,  # noqa: F811
    settings,
    storage_dirs,
    fast_lane,
    transfer_worker,
):
    settings.LORAHUB_UPSTREAM_ENDPOINT = DEAD
    secret = "hf_secret_never_shown"
    imported = transfer_wait(
        alice_client.post("/new/from-hugging-face/", {"source": "a/b", "token": secret}),
        transfer_worker,
    )
    pushed = transfer_wait(
        alice_client.post("/alice/sql-lora/push-to-hub", {"repo_id": "a/b", "token": secret}),
        transfer_worker,
    )
    for transfer in (imported, pushed):
        assert transfer.status == Transfer.Status.FAILED
        assert transfer.error.startswith(f"Could not reach {DEAD}")
        page = alice_client.get(f"/new/transfers/{transfer.pk}/")
        assert page.status_code == 200 and f"Could not reach {DEAD}" in page.content.decode()
        assert secret not in page.content.decode()
        assert "Try again" in page.content.decode()
    assert secret.encode() not in transfer_worker.log_path.read_bytes()
    assert not Adapter.objects.filter(owner__username="alice").exclude(name="sql-lora").exists()
