"""Deleting stored files that the database marks as garbage (hub.services.storage_ledger),
and only against the store of this installation.

The database and its store share an installation id (the Installation row, and the object
`.lorahub/installation` in the store). The sweep refuses a store marked by another database,
and a database that looks empty (no stored file named) beside a store that is not: a lost
database volume, or a machine left on another database host, must not empty the store.
"""

import logging
import uuid
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from ..models import Installation, StorageEntry
from .storage import stored_folders
from .storage_ledger import TRACKED, referenced

MARKER = ".lorahub/installation"
BATCH = 500
log = logging.getLogger(__name__)


class StoreRefused(Exception):
    """The store does not belong to this database, or this database looks empty beside it."""


def marker_read() -> str | None:
    if not default_storage.exists(MARKER):
        return None
    with default_storage.open(MARKER, "rb") as fh:
        return fh.read(100).decode("ascii", "replace").strip()


def marker_write(uid: str) -> None:
    if default_storage.exists(MARKER):
        default_storage.delete(MARKER)
    default_storage.save(MARKER, ContentFile(uid.encode()))


def database_names_files() -> bool:
    """Whether a row or a ledger entry names a stored file."""
    return StorageEntry.objects.exists() or any(
        model._default_manager.exclude(**{field: ""}).exists() for model, field, _ in TRACKED
    )


def store_holds_files() -> bool:
    return any(next(stored_folders(folder), None) for _, _, folder in TRACKED)


def installation_check() -> str:
    """This installation's id once the store is known to be its own (marked now if it is
    new, or if this database names stored files beside an unmarked store); raises
    StoreRefused otherwise."""
    row = Installation.objects.order_by("pk").first()
    marker = marker_read()
    if marker is not None:
        if row is not None and row.uid == marker:
            return marker
        if not database_names_files():
            raise StoreRefused(
                f"The store belongs to installation {marker} and this database names no "
                "stored file: it looks empty or new (a lost database volume, a wrong "
                "DATABASE_URL). Restore the database (manage.py restore), or point this "
                "site at its own store."
            )
        raise StoreRefused(
            f"The store belongs to installation {marker}, this database to "
            f"{row.uid if row else 'none yet'}: they are not the same installation. Point "
            f"the site at its own store (or database). Only if this database is the store's, "
            f"delete the store's {MARKER} and run again to adopt it."
        )
    if store_holds_files() and not database_names_files():
        raise StoreRefused(
            "The store holds files but carries no installation id, and this database names "
            "no stored file: it looks empty or new. Restore the database (manage.py "
            "restore), or point this site at its own store."
        )
    if row is None:
        row, _ = Installation.objects.get_or_create(pk=1, defaults={"uid": str(uuid.uuid4())})
    marker_write(row.uid)
    log.info("store marked as installation %s's", row.uid)
    return row.uid


def ledger_sweep(grace: timedelta) -> list[str]:
    """Delete the stored files whose newest ledger entry is older than `grace` and that no
    row names, with their entries; the names deleted. Refuses (StoreRefused) a store that
    is not this installation's."""
    installation_check()
    cutoff = timezone.now() - grace
    fresh = StorageEntry.objects.filter(since__gte=cutoff).values("name")
    due = (
        StorageEntry.objects.filter(since__lt=cutoff)
        .exclude(name__in=fresh)
        .order_by("name", "-since")
        .values_list("name", "kind", "since")
    )
    newest: dict[str, tuple[str, object]] = {}
    for name, kind, since in due.iterator(chunk_size=BATCH):
        newest.setdefault(name, (kind, since))
    swept = []
    names = list(newest)
    for start in range(0, len(names), BATCH):
        batch = names[start : start + BATCH]
        named = referenced(batch)
        outcome = {name: _delete(name, *newest[name]) for name in batch if name not in named}
        # A file that could not be deleted keeps its entries: the next sweep tries again.
        settled = [name for name in batch if outcome.get(name) != "failed"]
        StorageEntry.objects.filter(name__in=settled, since__lt=cutoff).delete()
        swept += [name for name, done in outcome.items() if done == "deleted"]
    return swept


def _delete(name: str, kind: str, since) -> str:
    """Delete the file `name`: "deleted", "absent" (an intent may precede a store that
    failed), or "failed" (the store refused; its entries stay for the next sweep)."""
    try:
        if not default_storage.exists(name):
            return "absent"
        default_storage.delete(name)
    except OSError:
        log.exception("could not delete stored file %s", name)
        return "failed"
    log.info("deleted stored file %s (%s since %s)", name, kind, since.isoformat())
    return "deleted"


def unknown_files() -> list[str]:
    """Stored files that no row and no ledger entry names: never deleted, only reported
    (leftovers of versions before the ledger, or files put there by hand)."""
    unknown = []
    for _, _, folder in TRACKED:
        for sub, files in stored_folders(folder):
            paths = [f"{sub}/{name}" for name in files]
            known = referenced(paths)
            known.update(StorageEntry.objects.filter(name__in=paths).values_list("name", flat=True))
            unknown += [path for path in paths if path not in known]
    return unknown
