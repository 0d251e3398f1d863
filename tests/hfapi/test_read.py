"""Reading through the real huggingface_hub client: listings, info, files, downloads."""

from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


def test_model_info_and_listings(api, sql_lora, adapter_dir):
    version = sql_lora.current_version
    info = api().model_info("alice/sql-lora")
    assert info.id == "alice/sql-lora" and info.author == "alice"
    assert info.sha == version.commit and len(info.sha) == 40
    assert info.private is False and info.library_name == "peft"
    assert info.card_data["base_model"] == "lorahub-test/tiny-llama"
    assert info.card_data["library_name"] == "peft"
    assert "sql" in info.tags and "base_model:adapter:lorahub-test/tiny-llama" in info.tags
    assert info.downloads == 0 and info.likes == 0 and info.last_modified is not None
    weights = adapter_dir / "adapter_model.safetensors"
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    assert siblings["adapter_model.safetensors"].size == weights.stat().st_size
    blob = version.files.get(filename="adapter_model.safetensors").blob
    assert siblings["adapter_model.safetensors"].lfs.sha256 == blob.sha256

    assert api().model_info("alice/sql-lora", revision="v1").sha == version.commit
    assert api().model_info("alice/sql-lora", revision=version.commit[:7]).sha == version.commit
    with pytest.raises(RevisionNotFoundError):
        api().model_info("alice/sql-lora", revision="v9")

    assert sorted(api().list_repo_files("alice/sql-lora")) == sorted(siblings)
    commits = api().list_repo_commits("alice/sql-lora")
    assert [c.commit_id for c in commits] == [version.commit]
    assert commits[0].authors == ["alice"]

    refs = api().list_repo_refs("alice/sql-lora")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", version.commit)]
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", version.commit)]
    assert api().repo_exists("alice/sql-lora") and not api().repo_exists("alice/nope")
    assert api().file_exists("alice/sql-lora", "adapter_config.json")
    assert not api().file_exists("alice/sql-lora", "nope.bin")


def test_list_models_filters_and_hides_private(api, sql_lora, secret_lora, alice_read):
    def ids(**kwargs):
        return [m.id for m in api(kwargs.pop("token", False)).list_models(**kwargs)]

    assert ids() == ["alice/sql-lora"]
    assert ids(token=alice_read, sort="created_at") == ["alice/secret-lora", "alice/sql-lora"]
    assert ids(search="sql") == ["alice/sql-lora"]
    assert ids(search="nothing-like-this") == []
    assert ids(author="bob") == []
    assert ids(filter="sql", token=alice_read) == ["alice/sql-lora"]
    assert ids(filter="base_model:adapter:lorahub-test/tiny-llama") == ["alice/sql-lora"]
    assert len(ids(token=alice_read, limit=1)) == 1
    full = next(iter(api().list_models(full=True, cardData=True)))
    assert full.sha == sql_lora.current_version.commit
    assert full.card_data["base_model"] == "lorahub-test/tiny-llama"
    assert {s.rfilename for s in full.siblings} >= {"adapter_model.safetensors"}


def test_list_models_pages_with_link_header(api, hub, sql_lora, secret_lora, alice_read):
    import httpx2

    first = httpx2.get(
        f"{hub}/api/models?limit=1", headers={"Authorization": f"Bearer {alice_read}"}
    )
    assert len(first.json()) == 1 and "next" in first.links
    second = httpx2.get(
        first.links["next"]["url"], headers={"Authorization": f"Bearer {alice_read}"}
    )
    assert len(second.json()) == 1 and "next" not in second.links
    assert first.json()[0]["id"] != second.json()[0]["id"]


def test_download_file_and_snapshot(api, hub, sql_lora, adapter_dir, tmp_path):
    path = hf_hub_download(
        "alice/sql-lora", "adapter_model.safetensors", endpoint=hub, cache_dir=tmp_path, token=False
    )
    expected = (adapter_dir / "adapter_model.safetensors").read_bytes()
    assert Path(path).read_bytes() == expected
    assert sql_lora.current_version.commit in path
    folder = snapshot_download("alice/sql-lora", endpoint=hub, cache_dir=tmp_path, token=False)
    assert sorted(p.name for p in Path(folder).iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert (Path(folder) / "adapter_config.json").read_bytes() == (
        adapter_dir / "adapter_config.json"
    ).read_bytes()
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(
            "alice/sql-lora", "nope.json", endpoint=hub, cache_dir=tmp_path / "x", token=False
        )
    sql_lora.refresh_from_db()
    assert sql_lora.downloads == 1  # the snapshot found the weights in the cache


def test_resumed_download_fetches_only_the_rest(hub, sql_lora, adapter_dir, tmp_path):
    """The client's resume path (http_get with resume_size, what it runs after a dropped
    connection) completes a half-downloaded file with a Range request."""
    from huggingface_hub.file_download import http_get

    content = (adapter_dir / "adapter_model.safetensors").read_bytes()
    half = len(content) // 2
    # The first half is marked so that a full re-download would be visible.
    marked = bytes(b ^ 0xFF for b in content[:half])
    partial = tmp_path / "weights.incomplete"
    partial.write_bytes(marked)
    with partial.open("ab") as f:
        http_get(
            f"{hub}/alice/sql-lora/resolve/main/adapter_model.safetensors",
            f,
            resume_size=half,
            expected_size=len(content),
        )
    assert partial.read_bytes() == marked + content[half:]


def test_range_and_head_headers(hub, sql_lora):
    import httpx2

    blob = sql_lora.current_version.files.get(filename="adapter_model.safetensors").blob
    url = f"{hub}/alice/sql-lora/resolve/main/adapter_model.safetensors"
    head = httpx2.head(url)
    assert head.status_code == 200
    assert head.headers["X-Repo-Commit"] == sql_lora.current_version.commit
    assert head.headers["ETag"] == f'"{blob.sha256}"'
    assert head.headers["X-Linked-Size"] == str(blob.size)
    assert head.headers["Accept-Ranges"] == "bytes"
    part = httpx2.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and len(part.content) == 10
    assert part.headers["Content-Range"] == f"bytes 10-19/{blob.size}"
    assert httpx2.get(url, headers={"Range": f"bytes={blob.size}-"}).status_code == 416


def test_private_adapter_needs_the_owners_token(
    api, hub, secret_lora, alice_read, bob_write, tmp_path
):
    with pytest.raises(RepositoryNotFoundError):
        api().model_info("alice/secret-lora")
    with pytest.raises(RepositoryNotFoundError):
        api(bob_write).model_info("alice/secret-lora")
    assert api(alice_read).model_info("alice/secret-lora").private is True
    for token in (False, bob_write):
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(
                "alice/secret-lora",
                "adapter_config.json",
                endpoint=hub,
                token=token,
                cache_dir=tmp_path,
            )
    path = hf_hub_download(
        "alice/secret-lora",
        "adapter_config.json",
        endpoint=hub,
        token=alice_read,
        cache_dir=tmp_path,
    )
    assert b"peft_type" in Path(path).read_bytes()
