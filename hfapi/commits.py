"""Commits from the Hub API become catalog versions, through the catalog's own services.

A commit arrives as ndjson (`header`, then `file` (inline base64), `lfsFile` (staged
through the LFS batch API), `deletedFile` and `deletedFolder` lines). It is applied to
the head version's files and the result goes through `adapter_create`/`adapter_upload`:
the same validation as a browser upload, and nothing is stored when it is refused.
"""

import base64
import binascii
import hashlib
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from composer.engine import strict_json
from hub.models import AdapterFile, AdapterVersion, Blob
from hub.services.adapters import adapter_create, adapter_upload
from hub.services.stored_reads import blob_reader

from . import staging
from .repos import Repo, head_commit, resolve_version, version_files
from .responses import ApiError, entry_not_found

MAX_MESSAGE = 500
# An adapter has three files; room for deletions and renames, not for filling the disk.
MAX_OPERATIONS = 32


@dataclass
class InlineFile:
    sha256: str
    tmp: object  # an open temporary file holding the decoded content


@dataclass
class CommitPlan:
    summary: str = ""
    description: str = ""
    parent: str | None = None
    added: dict[str, InlineFile | tuple[str, int]] = field(default_factory=dict)
    deleted_files: list[str] = field(default_factory=list)
    deleted_folders: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        text = self.summary.strip()
        if self.description.strip():
            text += "\n\n" + self.description.strip()
        return text[:MAX_MESSAGE]


def _decode_inline(value: dict, stack: ExitStack) -> InlineFile:
    if value.get("encoding", "base64") != "base64":
        raise ApiError(400, "Inline files must be base64-encoded")
    if not isinstance(value.get("content", ""), str):
        raise ApiError(400, f"{str(value.get('path'))[:200]}: content must be a base64 string")
    try:
        content = base64.b64decode(value.get("content", ""), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{value.get('path')}: content is not valid base64") from None
    tmp = stack.enter_context(tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR))
    tmp.write(content)
    tmp.seek(0)
    return InlineFile(sha256=hashlib.sha256(content).hexdigest(), tmp=tmp)


def commit_read(lines, stack: ExitStack) -> CommitPlan:
    """Parse the ndjson commit body line by line; inline files go to temporary files.

    Raises ApiError (400) for anything malformed: a line that is not strict JSON (see
    composer.engine.strict_json), values of the wrong types, an LFS oid that is not a
    sha256, more than MAX_OPERATIONS operations.
    """
    plan = CommitPlan()
    operations = 0
    for raw in lines:
        if not raw.strip():
            continue
        operations += 1
        if operations > MAX_OPERATIONS:
            raise ApiError(400, f"A commit holds at most {MAX_OPERATIONS} operations")
        key, value = _commit_line(raw)
        path = _text(value, "path")
        if key == "header":
            plan.summary = _text(value, "summary")
            plan.description = _text(value, "description")
            plan.parent = _text(value, "parentCommit") or None
        elif key == "file":
            plan.added[path] = _decode_inline(value, stack)
        elif key == "lfsFile":
            oid, size = value.get("oid"), value.get("size")
            if value.get("algo", "sha256") != "sha256" or not (
                isinstance(oid, str) and staging.SHA256_RE.fullmatch(oid)
            ):
                raise ApiError(400, f"{path}: LFS files are identified by their sha256")
            if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
                raise ApiError(400, f"{path}: an LFS file's size must be a whole number")
            plan.added[path] = (oid, size)
        elif key == "deletedFile":
            plan.deleted_files.append(path)
        elif key == "deletedFolder":
            plan.deleted_folders.append(path.rstrip("/"))
        else:
            raise ApiError(400, f"Unsupported commit operation {str(key)[:40]!r}")
    if not plan.summary:
        raise ApiError(400, "A commit needs a summary (commit message)")
    return plan


def _commit_line(raw: bytes | str) -> tuple[str, dict]:
    try:
        item = strict_json.loads(raw)
    except strict_json.JSONInputError as exc:
        raise ApiError(400, f"Malformed commit: a line is not acceptable JSON ({exc})") from None
    if not (isinstance(item, dict) and isinstance(item.get("value"), dict)):
        raise ApiError(400, "Malformed commit: expected ndjson key/value lines")
    return item.get("key"), item["value"]


def _text(value: dict, name: str) -> str:
    text = value.get(name)
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ApiError(400, f"Malformed commit: {name} must be a string")
    return text


class _Named:
    """An open file plus the sha256 the catalog's blob_store should trust; `local` when its
    bytes are on this machine (validation then reads its values, not only its header)."""

    def __init__(self, handle, sha256: str, local: bool = False):
        self.handle, self.sha256, self.local = handle, sha256, local

    def __getattr__(self, name):
        return getattr(self.handle, name)


def _lfs_source(repo: Repo, user, path: str, oid: str, size, stack: ExitStack):
    if isinstance(size, int) and staging.is_staged(user.pk, oid, size):
        return _Named(stack.enter_context(staging.open_staged(user.pk, oid)), oid)
    # A file this repository already holds (e.g. copied from another path).
    if repo.adapter is not None:
        known = AdapterFile.objects.filter(version__adapter=repo.adapter, blob_id=oid).exists()
        if known:
            blob = Blob.objects.get(pk=oid)
            return _Named(stack.enter_context(blob_reader(blob)), oid)
    raise ApiError(400, f"{path}: its LFS object {oid} was not uploaded before the commit")


def _new_files(repo: Repo, user, head: AdapterVersion | None, plan: CommitPlan, stack):
    current = {f.filename: f.blob for f in version_files(head)}
    for path in plan.deleted_files:
        if current.pop(path, None) is None:
            raise entry_not_found(f"{path}: A file with this name doesn't exist")
    for folder in plan.deleted_folders:
        inside = [p for p in current if p.startswith(folder + "/")]
        if not inside:
            raise entry_not_found(f"{folder}: A folder with this name doesn't exist")
        for p in inside:
            del current[p]
    files = {
        name: _Named(stack.enter_context(blob_reader(blob)), blob.sha256)
        for name, blob in current.items()
        if name not in plan.added
    }
    for path, added in plan.added.items():
        if isinstance(added, InlineFile):
            files[path] = _Named(added.tmp, added.sha256, local=True)
        else:
            files[path] = _lfs_source(repo, user, path, *added, stack)
    return files


def commit_apply(repo: Repo, user, plan: CommitPlan, stack: ExitStack) -> str:
    """Apply the commit; returns the new head commit id. Raises ApiError when refused."""
    head = resolve_version(repo, "main")
    if plan.parent and plan.parent != head_commit(head):
        raise ApiError(412, "The commit's parent is not the head of main: pull and retry")
    files = _new_files(repo, user, head, plan, stack)
    try:
        if repo.adapter is None:
            with transaction.atomic():
                adapter = adapter_create(
                    owner=user,
                    name=repo.name,
                    files=files,
                    private=repo.private,
                    message=plan.message,
                )
                repo.reservation.delete()
            version = adapter.current_version
        else:
            version = adapter_upload(
                adapter=repo.adapter, files=files, user=user, message=plan.message
            )
    except ValidationError as error:
        if error.code == "identical":  # nothing changed: like the Hub, answer the head
            return head_commit(head)
        raise ApiError(400, "Commit refused: " + " ".join(error.messages)) from None
    staging.discard(user.pk, [a[0] for a in plan.added.values() if isinstance(a, tuple)])
    return version.commit
