"""A README's front matter fills the adapter's metadata, through the Hub API and the upload
form, and model_info().card_data returns it; a hostile block is refused with a message."""

import io
import shutil

import pytest
from django.core.exceptions import ValidationError

from hub.models import Adapter
from hub.services.adapters import adapter_create
from tests.hfapi.conftest import files_of

CARD = """---
license: apache-2.0
tags:
  - reverse
  - String Ops
pipeline_tag: text-generation
datasets: [lorahub/reverse-strings]
language: en
base_model: lorahub-test/tiny-llama
---
# Reverse

Reverses strings.
"""


def with_card(adapter_dir, tmp_path, card: str):
    folder = tmp_path / "with-card"
    shutil.copytree(adapter_dir, folder)
    (folder / "README.md").write_text(card)
    return folder


def test_hub_api_upload_takes_the_cards_metadata(api, alice_write, adapter_dir, tmp_path):
    hf = api(alice_write)
    hf.create_repo("reverse")
    hf.upload_folder(repo_id="alice/reverse", folder_path=with_card(adapter_dir, tmp_path, CARD))
    adapter = Adapter.objects.get(name="reverse")
    assert (adapter.license, adapter.task) == ("apache-2.0", "text-generation")
    assert sorted(adapter.tags.values_list("name", flat=True)) == ["reverse", "string-ops"]
    assert adapter.description.startswith("# Reverse")  # the block is not shown as text

    data = hf.model_info("alice/reverse").card_data.to_dict()
    assert data["license"] == "apache-2.0" and data["pipeline_tag"] == "text-generation"
    assert data["datasets"] == ["lorahub/reverse-strings"] and data["language"] == ["en"]
    assert set(data["tags"]) == {"reverse", "string-ops"}

    # A new card's metadata replaces the old one's; its tags are added.
    card = "---\nlicense: mit\ntags: [vowels]\nlanguage: [fr, de]\n---\nNew.\n"
    hf.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="alice/reverse")
    data = hf.model_info("alice/reverse").card_data.to_dict()
    assert data["license"] == "mit" and set(data["tags"]) == {"reverse", "string-ops", "vowels"}
    assert data["language"] == ["fr", "de"] and "datasets" not in data


def test_a_hostile_block_is_refused_through_the_api(api, alice_write, adapter_dir, tmp_path):
    hf = api(alice_write)
    hf.create_repo("deep")
    # Deeper than card metadata needs: the hub's /api/validate-yaml, which the client asks
    # before committing a README, refuses it with the upload's own message.
    deep = "---\nx: " + "[" * 12 + "]" * 12 + "\n---\n"
    with pytest.raises(ValueError, match="Invalid metadata in README.md") as info:
        hf.upload_folder(repo_id="alice/deep", folder_path=with_card(adapter_dir, tmp_path, deep))
    assert "nested more than 10 levels" in str(info.value)
    assert "cannot be read" not in str(info.value)  # said as it is, not as a bad number
    assert not Adapter.objects.filter(name="deep").exists()


@pytest.mark.parametrize(
    "block, message",
    [
        ("a: &x [1]\nb: *x", "aliases"),
        ("x: " + "[" * 50 + "]" * 50, "nested more than 10"),
        ("- just\n- a list", "must be a YAML mapping"),
        ("license: [1, 2", "not valid"),
        ("language: English", "language 'English' is not valid"),
        ("datasets: [" + ", ".join(f"d{i}" for i in range(21)) + "]", "more than 20 datasets"),
        ("tags: " + str([f"t{i}" for i in range(11)]), "more than 10 tags"),
        ("tags: {a: 1}", "tags must be a string or a list of strings"),
    ],
)
def test_bad_front_matter_is_a_message(alice, adapter_dir, block, message):
    files = files_of(adapter_dir) | {"README.md": io.BytesIO(f"---\n{block}\n---\ncard".encode())}
    with pytest.raises(ValidationError) as info:
        adapter_create(owner=alice, name="bad", files=files)
    assert message in " ".join(info.value.messages)
    assert not Adapter.objects.filter(name="bad").exists()


def test_the_form_wins_and_the_card_fills_the_rest(alice, adapter_dir):
    files = files_of(adapter_dir) | {"README.md": io.BytesIO(CARD.encode())}
    adapter = adapter_create(owner=alice, name="mine", files=files, license="mit", tags=["own"])
    assert adapter.license == "mit"  # what the uploader chose
    assert adapter.task == "text-generation"  # from the card
    assert list(adapter.tags.values_list("name", flat=True)) == ["own"]
    # peft's own cards name the local folder the base model came from: not an error.
    card = b"---\nbase_model: /tmp/x\ntags:\n- base_model:adapter:/tmp/x\n- lora\n---\n"
    files = files_of(adapter_dir) | {"README.md": io.BytesIO(card)}
    peft_card = adapter_create(owner=alice, name="peft", files=files)
    assert "base_model" not in peft_card.card_data
    assert list(peft_card.tags.values_list("name", flat=True)) == ["lora"]
    # An unknown license is "other", as the Hub spells it.
    files = files_of(adapter_dir) | {"README.md": io.BytesIO(b"---\nlicense: wtfpl\n---\n")}
    assert adapter_create(owner=alice, name="other", files=files).license == "other"
