"""Model cards from strangers: every YAML shape of the front matter is a 400 with a message
(integer keys, a list pipeline_tag and a 5,000-digit integer were 500s, anonymously and in
uploads and API commits); the anonymous README check is bounded in body and counted per
address; card edits count as writes."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.security.test_config_patterns import commit_one_file

SHAPES = [
    ("---\n1: x\n---\n", "keys must be text"),
    ("---\nlicense: mit\n2024-01-01: x\n---\n", "keys must be text"),
    ("---\ndatasets: [{null: 1}]\n---\n", "keys must be text"),
    ("---\na: " + "9" * 5000 + "\n---\n", "cannot be read"),
    ("---\na: 2024-13-45\n---\n", "cannot be read"),
    ("---\na: [" + "1, " * 6000 + "1]\n---\n", "more than 5,000 nodes"),
]
# Shapes that are valid YAML and simply carry no usable metadata: accepted, ignored.
IGNORED = ["pipeline_tag: [text-generation]", "pipeline_tag: {a: 1}", "base_model_relation: [a]"]


def validate(client, content, **extra):
    body = json.dumps({"content": content})
    return client.post("/api/validate-yaml", body, content_type="application/json", **extra)


@pytest.mark.parametrize("card, message", SHAPES)
def test_bad_front_matter_is_a_400_anonymously(client, db, card, message):
    response = validate(client, card)
    assert response.status_code == 400 and message in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("line", IGNORED)
def test_front_matter_of_other_shapes_is_ignored(client, db, line):
    response = validate(client, f"---\n{line}\n---\n# Card\n")
    assert response.status_code == 200 and response.json()["errors"] == []


@pytest.mark.parametrize("card, message", SHAPES[:4])
def test_an_upload_with_bad_front_matter_is_a_400(alice_client, adapter_dirs, card, message):
    d = adapter_dirs["r4"]
    files = [
        SimpleUploadedFile(n, (d / n).read_bytes())
        for n in ("adapter_config.json", "adapter_model.safetensors")
    ]
    files.append(SimpleUploadedFile("README.md", card.encode()))
    response = alice_client.post(reverse("hub:adapter_new"), {"name": "a", "files": files})
    assert response.status_code == 400 and message in response.content.decode()


@pytest.mark.parametrize("card, message", SHAPES[:4])
def test_an_api_commit_with_bad_front_matter_is_a_400(client, alice, make_adapter, card, message):
    adapter = make_adapter(alice, "c")
    response = commit_one_file(client, alice, adapter, "README.md", card.encode())
    assert response.status_code == 400 and message in response.json()["error"]
    assert adapter.versions.count() == 1


def test_the_readme_check_is_counted_per_address(db, settings):
    settings.LORAHUB_VALIDATE_YAML_PER_MINUTE = 3
    first, other = Client(REMOTE_ADDR="10.0.0.1"), Client(REMOTE_ADDR="10.0.0.2")
    for _ in range(3):
        assert validate(first, "---\nlicense: mit\n---\n").status_code == 200
    response = validate(first, "---\nlicense: mit\n---\n")
    assert response.status_code == 429 and "README checks a minute" in response.json()["error"]
    assert validate(other, "---\nlicense: mit\n---\n").status_code == 200


def test_the_readme_check_refuses_a_large_body_unread(client, db):
    from hfapi.views_write import VALIDATE_YAML_BODY

    response = validate(client, "x" * VALIDATE_YAML_BODY)
    assert response.status_code == 413 and "accepts at most" in response.json()["error"]


def test_card_edits_count_as_writes(alice_client, alice, make_adapter, settings):
    settings.LORAHUB_WRITES_PER_HOUR = 3
    adapter = make_adapter(alice, "e")  # a service call: not counted
    url = reverse("hub:adapter_edit", args=["alice", "e"])
    for i in range(3):
        response = alice_client.post(url, {"description": f"card {i}", "license": "mit"})
        assert response.status_code == 302
    response = alice_client.post(url, {"description": "card 3", "license": "mit"})
    assert response.status_code == 429 and "the limit" in response.content.decode()
    adapter.refresh_from_db()
    assert adapter.description == "card 2"
