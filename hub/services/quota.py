"""One account of what a user writes, for every path that stores their bytes.

Uploads, Hub API commits, LFS staging, imports, publishing a job's result and card edits
each count one write against LORAHUB_WRITES_PER_HOUR (`write_allow`), and the bytes a
write will store are checked against LORAHUB_USER_QUOTA_BYTES before they are stored
(`quota_check`; the catalog checks every new version's files again, exactly, in
hub.services.adapters). A user's storage is the files of their adapters (each content
once), their staged LFS objects, the Xet xorbs they uploaded while those are kept and,
for a new import, the imports still in progress.
"""

from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.template.defaultfilters import filesizeformat

from hfapi.models import Transfer
from hfapi.staging import staged_sizes
from hfapi.xet.ledger import kept_bytes

from ..models import AdapterFile, Blob
from .throttle import write_check
from .validation import FileLike, file_size


class WriteRefused(ValidationError):
    """A write refused by the hourly limit (status 429) or the storage quota (413)."""

    def __init__(self, message: str, code: str):
        super().__init__(message, code=code)
        self.status = 429 if code == "throttled" else 413


def adapter_blobs(user) -> set[str]:
    """sha256 of every file of `user`'s adapters, all versions."""
    files = AdapterFile.objects.filter(version__adapter__owner=user)
    return set(files.values_list("blob_id", flat=True).distinct())


def storage_used(user, *, staged_except=()) -> int:
    """Bytes `user` stores: their adapters' files (each content once), their staged LFS
    objects but for those in `staged_except` (about to become adapter files), and the Xet
    xorbs they uploaded that are still kept."""
    shas = AdapterFile.objects.filter(version__adapter__owner=user).values("blob_id")
    stored = Blob.objects.filter(pk__in=shas).aggregate(total=Sum("size"))["total"] or 0
    staged = staged_sizes(user.pk)
    staged_bytes = sum(size for sha, size in staged.items() if sha not in staged_except)
    return stored + staged_bytes + kept_bytes(user.pk)


def imports_reserved(user) -> int:
    """What the imports in progress may still store: each, at most one largest file."""
    active = Transfer.objects.filter(
        owner=user,
        kind=Transfer.Kind.IMPORT,
        status__in=[Transfer.Status.QUEUED, Transfer.Status.RUNNING],
    )
    return active.count() * settings.LORAHUB_MAX_FILE_BYTES


def quota_check(user, incoming: int = 0, *, staged_except=(), imports=False) -> None:
    """Refuse (WriteRefused, 413) storing `incoming` more bytes for `user` when their storage
    is full or would pass LORAHUB_USER_QUOTA_BYTES; `imports`: count the imports in
    progress too."""
    quota = settings.LORAHUB_USER_QUOTA_BYTES
    used = storage_used(user, staged_except=staged_except)
    if imports:
        used += imports_reserved(user)
    if used < quota and used + incoming <= quota:
        return
    what = "your adapters' files and pending uploads" + (
        ", and imports in progress" if imports else ""
    )
    need = f"This needs {filesizeformat(incoming)} more, but you" if incoming else "You"
    raise WriteRefused(
        f"{need} use {filesizeformat(used)} of your {filesizeformat(quota)} storage quota "
        f"({what}): delete adapters you no longer need.",
        code="quota",
    )


def write_count(user) -> None:
    """Count one write by `user`; raises WriteRefused past the hourly limit."""
    message = write_check(user)
    if message:
        raise WriteRefused(message, code="throttled")


def write_allow(user, incoming: int = 0, **quota) -> None:
    """Count one write by `user` that stores bytes, and check the `incoming` bytes it will
    store (see quota_check); raises WriteRefused."""
    write_count(user)
    quota_check(user, incoming, **quota)


def files_quota_check(owner_id: int, files: Mapping[str, FileLike]) -> None:
    """Check, before they are stored, the files of a new version of an adapter of
    `owner_id`: contents the owner's adapters hold already cost nothing more, staged
    objects among them are counted once. Locks the owner's row until the transaction
    ends, so that one owner's versions are checked and stored one at a time."""
    owner = get_user_model().objects.select_for_update().get(pk=owner_id)
    have = adapter_blobs(owner)
    shas = {name: getattr(f, "sha256", None) for name, f in files.items()}
    incoming = sum(file_size(f) for name, f in files.items() if shas[name] not in have)
    quota_check(owner, incoming, staged_except=set(shas.values()))
