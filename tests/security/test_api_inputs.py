"""Hostile Hub API inputs and URLs: bounded answers and a clear 4xx, never a 500."""

import base64
import json

import pytest

from hfapi.tokens import token_create

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def write_token(alice):
    return token_create(user=alice, name="w", scope="write")[1]


def post(client, url, body, token, content_type="application/json"):
    return client.post(url, body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_full_listing_is_bounded(client, alice, make_adapter):
    """?full=1 returned every adapter's whole config: now files but no config, 100 a page."""
    for i in range(3):
        make_adapter(alice, f"a{i}")
    response = client.get("/api/models", {"full": "1", "limit": "100000"})
    items = response.json()
    assert response.status_code == 200 and len(items) == 3
    assert all("siblings" in item and "config" not in item for item in items)
    assert len(response.content) < 3 * 4096
    from hfapi.listing import MAX_FULL_PAGE, ListQuery

    assert ListQuery.from_params(_params(full="1", limit="5000")).page_size == MAX_FULL_PAGE


def _params(**values):
    from django.http import QueryDict

    q = QueryDict(mutable=True)
    q.update(values)
    return q


@pytest.mark.parametrize("cursor", [str(10**30), "1000001"])
def test_huge_cursor_is_a_400(client, db, cursor):
    response = client.get("/api/models", {"cursor": cursor})
    assert response.status_code == 400 and "cursor must be at most" in response.json()["error"]


@pytest.mark.parametrize(
    "url", ["/api/models?search=a%00b", "/adapters/?q=%00", "/api/models/a%00/b", "/alice%00/x"]
)
def test_nul_in_url_or_query_is_a_400(client, db, url):
    response = client.get(url)
    assert response.status_code == 400 and b"NUL" in response.content


@pytest.mark.parametrize(
    "line, message",
    [
        (DEEP, "nested more than 32"),
        ('{"key": "header", "value": {"summary": NaN}}', "NaN"),
        ('{"key": "header", "value": {"summary": "a\\u0000"}}', "NUL"),
        ('{"key": "header", "value": [1]}', "expected ndjson key/value"),
        ('{"key": "header", "value": {"summary": 5}}', "summary must be a string"),
        ('{"key": "lfsFile", "value": {"path": "x", "oid": "../../x", "size": 1}}', "sha256"),
        (
            '{"key": "lfsFile", "value": {"path": "x", "oid": "' + "a" * 64 + '", "size": "1"}}',
            "size",
        ),
        ('{"key": "file", "value": {"path": 7, "content": ""}}', "path must be a string"),
    ],
)
def test_malformed_commits_are_400(client, alice, make_adapter, write_token, line, message):
    adapter = make_adapter(alice, "c")
    body = '{"key": "header", "value": {"summary": "s"}}\n' + line + "\n"
    response = post(
        client, "/api/models/alice/c/commit/main", body, write_token, "application/x-ndjson"
    )
    assert response.status_code == 400 and message in response.json()["error"]
    assert adapter.versions.count() == 1


def test_too_many_commit_operations_are_refused(client, alice, make_adapter, write_token):
    make_adapter(alice, "c")
    content = base64.b64encode(b"x").decode()
    lines = ['{"key": "header", "value": {"summary": "s"}}'] + [
        json.dumps({"key": "file", "value": {"path": f"f{i}", "content": content}})
        for i in range(100)
    ]
    response = post(
        client,
        "/api/models/alice/c/commit/main",
        "\n".join(lines),
        write_token,
        "application/x-ndjson",
    )
    assert response.status_code == 400 and "at most 32 operations" in response.json()["error"]


@pytest.mark.parametrize(
    "body, message",
    [
        (DEEP, "nested more than 32"),
        ('{"operation": "upload", "objects": {"a": 1}}', "list of objects"),
        ('{"operation": "upload", "objects": [1]}', "list of objects"),
        ('{"operation": "upload", "transfers": 5, "objects": []}', "basic LFS transfer"),
    ],
)
def test_malformed_lfs_batches_are_400(client, alice, make_adapter, write_token, body, message):
    make_adapter(alice, "c")
    response = post(client, "/alice/c.git/info/lfs/objects/batch", body, write_token)
    assert response.status_code == 400 and message in response.json()["error"]


def test_lfs_oid_that_is_not_a_sha256_is_refused(client, alice, make_adapter, write_token):
    make_adapter(alice, "c")
    body = json.dumps({"operation": "upload", "objects": [{"oid": "../../etc/passwd", "size": 1}]})
    answer = post(client, "/alice/c.git/info/lfs/objects/batch", body, write_token).json()
    assert answer["objects"][0]["error"]["message"] == "Invalid oid or size"


@pytest.mark.parametrize(
    "content, message",
    [
        ("---\n" + "[" * 100_000 + "\n---\n", "at most 64.0"),
        ("---\na: " + "[" * 40 + "]" * 40 + "\n---\n", "nested more than 10"),
        ("---\na: &x [1]\nb: *x\n---\n", "aliases"),
        ("---\na: .nan\n---\n", "not finite"),
        # The limits an upload of the same README applies, under the parser's own.
        ("---\na: " + "[" * 11 + "]" * 11 + "\n---\n", "nested more than 10"),
        ("---\nlicense: mit\n---\n" + "x" * 70_000, "at most 64.0"),
        ("---\ntags: [" + ", ".join(f"t{i}" for i in range(11)) + "]\n---\n", "more than 10 tags"),
        ("---\ndatasets: ['not a repo id!']\n---\n", "dataset 'not a repo id!' is not valid"),
        ("---\nlicense: mit\nbase_model: [1, 2]\n---\n", "must be a string or a list"),
    ],
)
def test_validate_yaml_refuses_deep_and_aliased_yaml(client, db, content, message):
    response = client.post(
        "/api/validate-yaml", json.dumps({"content": content}), content_type="application/json"
    )
    assert response.status_code == 400 and message in response.json()["errors"][0]["message"]


def test_validate_yaml_accepts_a_card_an_upload_accepts(client, db):
    card = "---\nlicense: mit\ntags: [sql]\nbase_model: /local/folder\n---\n# Card\n"
    response = client.post(
        "/api/validate-yaml", json.dumps({"content": card}), content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["errors"] == []


@pytest.mark.parametrize("body", [DEEP, '{"content": 5}', "[1]"])
def test_validate_yaml_wrong_bodies_are_400(client, db, body):
    response = client.post("/api/validate-yaml", body, content_type="application/json")
    assert response.status_code == 400


# "²".isdigit() is true but int("²") fails: numbers from the query or a form that only
# looked like digits were a 500.
@pytest.mark.parametrize(
    "url", ["/adapters/?r=²", "/jobs/new/merge/?from=²", "/jobs/new/lorahub/?adapters=²"]
)
def test_digit_lookalikes_in_a_query_are_ignored(alice_client, url):
    assert alice_client.get(url).status_code == 200


@pytest.mark.parametrize(
    "url, data",
    [
        ("/jobs/try/", {"job": "²", "text": "x"}),
        ("/jobs/try/", {"version": "¹", "text": "x"}),
        ("/jobs/new/merge/", {"adapters": ["²"], "merge_method": "linear", "name": "m"}),
    ],
)
def test_digit_lookalikes_in_a_form_are_a_400(alice_client, url, data):
    assert alice_client.post(url, data).status_code == 400
