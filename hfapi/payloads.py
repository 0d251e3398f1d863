"""The JSON documents the Hub API answers with, built from catalog rows."""

from datetime import UTC, datetime

from hub.models import Adapter, AdapterVersion
from hub.selectors import adapter_ids_hidden
from hub.services.repo_files import is_pickle

from . import gitlfs
from .repos import Repo, head_commit


def hub_time(moment: datetime) -> str:
    """`2026-11-24T05:14:47.123Z`, the one format `huggingface_hub` parses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def adapter_tags(adapter: Adapter, version: AdapterVersion | None, tag_names) -> list[str]:
    tags = ["peft", "safetensors"]
    if version is not None and version.peft_type:
        tags.append(version.peft_type.lower())
    tags.append(f"base_model:adapter:{adapter.base_model.identifier}")
    if adapter.task:
        tags.append(adapter.task)
    if adapter.license:
        tags.append(f"license:{adapter.license}")
    tags.extend(name for name in tag_names if name not in tags)
    return tags


def card_data(adapter: Adapter, tag_names, viewer=None) -> dict:
    data = {
        "base_model": adapter.base_model.identifier,
        "library_name": "peft",
        "tags": list(tag_names),
    }
    if adapter.license:
        data["license"] = adapter.license
    if adapter.task:
        data["pipeline_tag"] = adapter.task
    # The card's own metadata: datasets, language, and for a merge its parents as
    # base_model with base_model_relation.
    data.update(adapter.card_data)
    # ...but not the parents that went private since, but to their owner.
    named = data["base_model"]
    named = [named] if isinstance(named, str) else named
    if hidden := adapter_ids_hidden(viewer, named):
        kept = [n for n in named if n not in hidden] or [adapter.base_model.identifier]
        data["base_model"] = kept if isinstance(data["base_model"], list) else kept[0]
    return data


PICKLE = "A pickle: stored and offered for download, never loaded by this hub."


def security_status(path: str) -> dict:
    """The mark of a pickle, as the Hub's file listings carry it (empty for other files)."""
    if not is_pickle(path):
        return {}
    status = {"status": "caution", "avScan": None, "pickleImportScan": None}
    return {"securityFileStatus": status | {"pickle": True, "message": PICKLE}}


def model_document(
    repo: Repo,
    version: AdapterVersion | None,
    *,
    files=None,
    with_card: bool = True,
    with_config: bool = True,
    tag_names=None,
    viewer=None,
) -> dict:
    """`model_info` (and, with files=None, a `list_models` item) as `viewer` sees it."""
    adapter = repo.adapter
    doc = {
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.owner_name,
        "sha": head_commit(version),
        "private": repo.private,
        "gated": False,
        "disabled": False,
        "likes": 0,
        "library_name": "peft",
    }
    if adapter is None:  # reserved, still empty
        created = repo.reservation.created_at
        doc.update(
            downloads=0, tags=[], createdAt=hub_time(created), lastModified=hub_time(created)
        )
    else:
        if tag_names is None:
            tag_names = [tag.name for tag in adapter.tags.all()]
        modified = version.created if version is not None else adapter.updated
        doc.update(
            downloads=adapter.downloads,
            tags=adapter_tags(adapter, version, tag_names),
            createdAt=hub_time(adapter.created),
            lastModified=hub_time(modified),
            baseModels={"relation": "adapter", "models": [{"id": adapter.base_model.identifier}]},
        )
        if adapter.task:
            doc["pipeline_tag"] = adapter.task
        if with_card:
            doc["cardData"] = card_data(adapter, tag_names, viewer)
        if version is not None and files is not None and with_config:
            doc["config"] = {"peft": version.config}
    if files is not None:
        doc["siblings"] = [
            gitlfs.sibling(f.filename, f.blob.size, f.blob.sha256) | security_status(f.filename)
            for f in files
        ]
        pickles = [f.filename for f in files if is_pickle(f.filename)]
        doc["securityRepoStatus"] = {
            "scansDone": True,
            "filesWithIssues": [
                {"path": path, "level": "caution", "message": PICKLE} for path in pickles
            ],
        }
        doc["usedStorage"] = sum(f.blob.size for f in files)
    return doc


def commit_document(version: AdapterVersion, owner_name: str) -> dict:
    author = version.created_by.get_username() if version.created_by else owner_name
    title, _, body = (version.message or f"Version {version.number}").partition("\n")
    return {
        "id": version.commit,
        "authors": [{"user": author}],
        "date": hub_time(version.created),
        "title": title,
        "message": body.strip(),
    }
