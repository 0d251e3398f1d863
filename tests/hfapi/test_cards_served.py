"""Every adapter serves a README.md whose front matter says what its fields say, read with
the real client (ModelCard.load); model-index cards as metadata_update writes them."""

import io
import json
import subprocess
import sys

from hub.services.adapters import adapter_create
from tests.hfapi.conftest import client_env, files_of

EVAL = [
    {
        "name": "reverse",
        "results": [
            {
                "task": {"type": "text-generation", "name": "Text Generation"},
                "dataset": {
                    "name": "Reverse",
                    "type": "lorahub/reverse",
                    "config": "default",
                    "split": "test",
                    "args": {"subset": {"lengths": [3, 8]}},
                },
                "metrics": [{"type": "exact_match", "value": 0.93, "name": "Exact match"}],
            }
        ],
    }
]


# ModelCard.load and metadata_update read HF_ENDPOINT: they run in a client process.
CLIENT = """
import json, sys
from huggingface_hub import ModelCard, metadata_update

repo_id, update = sys.argv[1], json.loads(sys.argv[2])
if update:
    metadata_update(repo_id, update)
card = ModelCard.load(repo_id)
print(json.dumps({"data": card.data.to_dict(), "text": card.text}))
"""


def _load(hub, repo_id, tmp_path, update=None, token=None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CLIENT, repo_id, json.dumps(update or {})],
        env=client_env(hub, token, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def adapter_files(folder) -> dict:
    """The adapter's two files, as a browser upload without a card sends them."""
    return {k: v for k, v in files_of(folder).items() if k != "README.md"}


def test_a_browser_made_adapter_serves_its_fields(hub, alice, adapter_dir, client, tmp_path):
    adapter_create(
        owner=alice,
        name="made-here",
        files=adapter_files(adapter_dir),
        description="# Made here\n\nReverses.",
        license="mit",
        task="text-generation",
        tags=["reverse", "demo"],
    )
    card = _load(hub, "alice/made-here", tmp_path)
    data = card["data"]
    assert data["license"] == "mit" and data["pipeline_tag"] == "text-generation"
    assert data["tags"] == ["reverse", "demo"] and data["library_name"] == "peft"
    assert data["base_model"] == "lorahub-test/tiny-llama"
    assert card["text"].strip() == "# Made here\n\nReverses."

    # An edit in the browser rewrites README.md (a new version).
    client.force_login(alice)
    response = client.post(
        "/alice/made-here/edit",
        {"description": "Now in French.", "task": "", "license": "apache-2.0", "tags": "fr"},
    )
    assert response.status_code == 302
    card = _load(hub, "alice/made-here", tmp_path)
    assert card["data"]["license"] == "apache-2.0" and card["data"]["tags"] == ["fr"]
    assert "pipeline_tag" not in card["data"] and card["text"].strip() == "Now in French."


def test_model_index_through_metadata_update(
    hub, api, alice, alice_write, sql_lora, client, tmp_path
):
    update = {"model-index": EVAL}
    card = _load(hub, "alice/sql-lora", tmp_path, update=update, token=alice_write)
    assert card["data"]["model-index"] == EVAL
    assert "sql" in api(alice_write).model_info("alice/sql-lora").card_data.tags

    # A browser edit keeps the keys the catalog does not hold.
    client.force_login(alice)
    client.post("/alice/sql-lora/edit", {"description": "Edited.", "license": "mit", "tags": ""})
    card = _load(hub, "alice/sql-lora", tmp_path)
    assert card["data"]["license"] == "mit" and card["data"]["model-index"] == EVAL


def test_a_card_without_front_matter_gets_the_fields(hub, alice, adapter_dir, tmp_path):
    # As the demo seeds its adapters: README.md text plus fields chosen by the seeder.
    files = adapter_files(adapter_dir) | {"README.md": io.BytesIO(b"# Demo\n\nA demo adapter.\n")}
    adapter_create(owner=alice, name="demo", files=files, license="apache-2.0", tags=["demo"])
    card = _load(hub, "alice/demo", tmp_path)
    assert card["data"]["license"] == "apache-2.0" and card["data"]["tags"] == ["demo"]
    assert card["text"].strip() == "# Demo\n\nA demo adapter."
