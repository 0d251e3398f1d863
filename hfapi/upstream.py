"""Import adapters from, and push them to, an upstream Hugging Face Hub.

Both sides use the real `huggingface_hub` client against LORAHUB_UPSTREAM_ENDPOINT (the
Hugging Face Hub by default; in tests another running instance of this site). An import
goes through the catalog's `adapter_create`, so it passes the same validation as a
browser upload; only the adapter's own files are fetched (never a pickle), each refused by
its listed size before it is downloaded and stopped as soon as its bytes pass the limit, and
only from the upstream's origin or public addresses (hfapi.outbound), redirects included.
"""

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx2
import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hub.models import Adapter, AdapterVersion, BaseModel
from hub.services.adapters import adapter_create, card_body
from hub.services.base_models import base_model_register
from hub.services.card_file import OWNED, front_matter_of, stored_card
from hub.services.quota import quota_check
from hub.services.storage import blob_open
from hub.services.validation import ALLOWED_FILES, CARD_FILE, MAX_TEXT_BYTES, WEIGHTS_FILE

from .models import AdapterSource
from .outbound import InternalAddress, guarded
from .progress import counting_bar

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
COPY_CHUNK = 1024 * 1024
# What a base model import downloads: configs, tokenizers and safetensors weights.
BASE_MODEL_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.md"]
# huggingface_hub raises HfHubHTTPError for answers and httpx2's errors for no answer.
UPSTREAM_ERRORS = (httpx2.HTTPError, LocalEntryNotFoundError, OSError)


class UpstreamError(Exception):
    """The upstream hub refused or could not be reached; the message says why."""


def parse_source(text: str) -> tuple[str, str]:
    """'owner/name[@revision]' -> (repo_id, revision)."""
    repo_id, _, revision = text.strip().partition("@")
    if not REPO_ID.fullmatch(repo_id):
        raise UpstreamError(f"{text!r} is not a repository id such as owner/name or owner/name@v1")
    return repo_id, revision.strip() or "main"


def _client(token: str | None, endpoint: str = "") -> HfApi:
    return HfApi(endpoint=endpoint or settings.LORAHUB_UPSTREAM_ENDPOINT, token=token or False)


def _no_progress(text: str) -> None:
    pass


def _explain(error: Exception, repo_id: str, revision: str, where: str = "") -> UpstreamError:
    where = where or settings.LORAHUB_UPSTREAM_ENDPOINT
    if isinstance(error, RevisionNotFoundError):
        return UpstreamError(f"{repo_id} has no revision {revision!r} on {where}.")
    if isinstance(error, RepositoryNotFoundError):
        return UpstreamError(
            f"{repo_id} was not found on {where} (if it is private, give a token that can read it)."
        )
    if isinstance(error, HfHubHTTPError):
        message = error.server_message or str(error).splitlines()[0]
        return UpstreamError(f"{where} refused: {message}")
    if isinstance(error, httpx2.HTTPError | LocalEntryNotFoundError):
        return UpstreamError(f"Could not reach {where}: {error}")
    return UpstreamError(f"The transfer with {where} failed: {error}")


def adapter_import(
    *,
    user,
    source: str,
    name: str = "",
    token: str = "",
    endpoint: str = "",
    on_progress: Callable[[str], None] = _no_progress,
) -> Adapter:
    """Fetch `owner/name[@revision]` from upstream and catalog it under `user`; the
    download's progress goes to `on_progress` as a line of text."""
    repo_id, revision = parse_source(source)
    endpoint = endpoint or settings.LORAHUB_UPSTREAM_ENDPOINT
    client = _client(token, endpoint)
    try:
        with guarded(endpoint):
            info = client.model_info(repo_id, revision=revision, files_metadata=True)
        wanted = [s for s in info.siblings if s.rfilename in ALLOWED_FILES]
        for sibling in wanted:  # refused before a byte is downloaded
            _check_size(repo_id, sibling.rfilename, sibling.size or 0)
        total, done = sum(s.size or 0 for s in wanted), 0
        quota_check(user, total)  # before a byte is downloaded

        with tempfile.TemporaryDirectory() as tmp:
            for sibling in wanted:
                got = 0

                def advance(n: int, name: str = sibling.rfilename) -> None:
                    nonlocal done, got
                    done, got = done + n, got + n
                    _check_size(repo_id, name, got)  # a listing that lied: stop now
                    on_progress(f"Downloading {repo_id}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")

                with guarded(endpoint):
                    client.hf_hub_download(
                        repo_id,
                        sibling.rfilename,
                        revision=info.sha,
                        local_dir=tmp,
                        tqdm_class=counting_bar(advance),
                    )
            on_progress(f"Downloaded {repo_id} ({total / 1e6:.1f} MB); checking the files")
            files = {f: Path(tmp, f) for f in ALLOWED_FILES if Path(tmp, f).is_file()}
            card = info.card_data.to_dict() if info.card_data else {}
            with transaction.atomic():
                adapter = adapter_create(
                    owner=user,
                    name=name.strip() or repo_id.split("/")[1],
                    files=files,
                    license=str(card.get("license") or "")[:40],
                    private=bool(info.private),
                    message=f"Imported from {repo_id} at {info.sha}",
                )
                AdapterSource.objects.create(
                    adapter=adapter,
                    endpoint=endpoint,
                    repo_id=repo_id,
                    revision=info.sha,
                )
    except ValidationError as error:
        raise UpstreamError(" ".join(error.messages)) from None
    except InternalAddress as error:
        raise UpstreamError(str(error)) from None
    except UPSTREAM_ERRORS as error:
        raise _explain(error, repo_id, revision, endpoint) from None
    return adapter


def _check_size(repo_id: str, filename: str, size: int) -> None:
    """Refuse a file past the catalog's limit for it (a config or card: MAX_TEXT_BYTES)."""
    limit = settings.LORAHUB_MAX_FILE_BYTES if filename == WEIGHTS_FILE else MAX_TEXT_BYTES
    if size > limit:
        raise UpstreamError(
            f"{repo_id}: {filename} is larger than the {filesizeformat(limit)} this hub "
            "accepts for it; the import stopped."
        )


def base_model_import(
    identifier: str, source: str, *, endpoint: str = "", token: str = ""
) -> BaseModel:
    """Register the model repository `repo[@revision]` of an upstream hub as `identifier`."""
    repo_id, _, revision = source.strip().partition("@")
    revision = revision or "main"
    endpoint = endpoint or settings.LORAHUB_UPSTREAM_ENDPOINT
    client = HfApi(endpoint=endpoint, token=token or False)
    try:
        info = client.model_info(repo_id, revision=revision)
        with tempfile.TemporaryDirectory(prefix="base-model-") as tmp:
            client.snapshot_download(
                repo_id, revision=info.sha, local_dir=tmp, allow_patterns=BASE_MODEL_PATTERNS
            )
            return base_model_register(identifier, tmp, source=f"{endpoint} {repo_id}@{info.sha}")
    except ValidationError as error:
        raise UpstreamError(" ".join(error.messages)) from None
    except UPSTREAM_ERRORS as error:
        raise _explain(error, repo_id, revision, endpoint) from None


def model_card(version: AdapterVersion) -> str:
    """README.md for the upstream: metadata peft and the Hub read, then our card."""
    adapter = version.adapter
    meta = {
        "library_name": "peft",
        "base_model": adapter.base_model.identifier,
        "tags": ["peft", "lora", *[t.name for t in adapter.tags.all()]],
    }
    if adapter.license:
        meta["license"] = adapter.license
    if adapter.task:
        meta["pipeline_tag"] = adapter.task
    meta.update({k: v for k, v in adapter.card_data.items() if k in ("datasets", "language")})
    parents = list(version.lineage_parents.select_related("parent__adapter__owner"))
    if parents:
        meta["base_model_relation"] = "merge"
        meta["parents"] = [
            p.parent.adapter.full_name if p.parent else p.parent_label for p in parents
        ]
        meta["merge_method"] = parents[0].method
    # Keys the catalog does not hold (model-index...) travel from the version's own card.
    kept = front_matter_of(stored_card(version))
    meta.update({k: v for k, v in kept.items() if k not in OWNED and k not in meta})
    body = card_body(adapter.description) or f"# {adapter.name}"
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n{body}\n"


def adapter_push(
    *,
    version: AdapterVersion,
    repo_id: str,
    token: str,
    private: bool = False,
    endpoint: str = "",
    on_progress: Callable[[str], None] = _no_progress,
) -> str:
    """Push `version` to `repo_id` upstream with upload_folder; returns the commit URL."""
    if not REPO_ID.fullmatch(repo_id):
        raise UpstreamError(f"{repo_id!r} is not a repository id such as owner/name")
    endpoint = endpoint or settings.LORAHUB_UPSTREAM_ENDPOINT
    client = _client(token, endpoint)
    try:
        on_progress(f"Creating {repo_id}")
        client.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            for item in version.files.select_related("blob"):
                if item.filename == CARD_FILE:
                    continue
                target = Path(tmp, item.filename)  # checkpoint-N/... keep their folder
                target.parent.mkdir(parents=True, exist_ok=True)
                with blob_open(item.blob) as src, open(target, "wb") as out:
                    while chunk := src.read(COPY_CHUNK):
                        out.write(chunk)
            Path(tmp, CARD_FILE).write_text(model_card(version), encoding="utf-8")
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
            on_progress(f"Uploading {repo_id}: {size / 1e6:.1f} MB")
            commit = client.upload_folder(
                repo_id=repo_id,
                folder_path=tmp,
                commit_message=f"{version.adapter.full_name} v{version.number} from LoRA Hub",
            )
    except (*UPSTREAM_ERRORS, ValueError) as error:
        raise _explain(error, repo_id, "main", endpoint) from None
    return commit.commit_url
