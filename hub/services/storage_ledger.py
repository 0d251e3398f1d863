"""The storage ledger: what the database says about stored files that may be garbage.

A file is stored only after an intent naming it is committed, and the intent goes in the
transaction whose row comes to name the file; a row that stops naming a file leaves a
tombstone in the same transaction. A sweep (hub.services.storage_sweep) deletes a file
only through such an entry, older than its grace period, while no row names the file: a
file the database does not mention at all is never deleted.

The rows that name stored files are registered with `track` by their apps."""

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model
from django.utils import timezone

from ..models import StorageEntry

Kind = StorageEntry.Kind
# (model, field naming a stored file, folder of the store holding such files)
TRACKED: list[tuple[type[Model], str, str]] = []


def track(model: type[Model], field: str, folder: str) -> None:
    if (model, field, folder) not in TRACKED:
        TRACKED.append((model, field, folder))


def referenced(names: Iterable[str]) -> set[str]:
    """The names among `names` that a tracked row names."""
    names = list(names)
    found: set[str] = set()
    for model, field, _ in TRACKED:
        rows = model._default_manager.filter(**{f"{field}__in": names})
        found.update(rows.values_list(field, flat=True))
    return found


def intents_record(names: Iterable[str]) -> None:
    """Commit an intent for each of `names` now, whatever transaction the caller is in: a
    rollback of the caller's transaction must leave it behind.

    Inside a transaction, a second connection writes it, on PostgreSQL. SQLite has one
    writer at a time, so there it joins the caller's transaction: a rolled-back upload's
    file is then one the database does not mention, kept (and reported), never deleted."""
    rows = [(name, Kind.INTENT, timezone.now()) for name in names]
    if not rows:
        return
    if not connection.in_atomic_block or connection.vendor == "sqlite":
        StorageEntry.objects.bulk_create(StorageEntry(name=n, kind=k, since=s) for n, k, s in rows)
        return
    side = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        table = side.ops.quote_name(StorageEntry._meta.db_table)
        with side.cursor() as cursor:  # autocommit: committed by the statement
            cursor.executemany(f"INSERT INTO {table} (name, kind, since) VALUES (%s, %s, %s)", rows)
    finally:
        side.close()


def intents_settle(names: Iterable[str]) -> None:
    """Remove the intents of `names`, in the transaction whose rows now name them."""
    StorageEntry.objects.filter(name__in=list(names), kind=Kind.INTENT).delete()


def tombstones_write(names: Iterable[str]) -> None:
    """Mark `names` garbage, in the transaction that removes the rows naming them."""
    now = timezone.now()
    StorageEntry.objects.bulk_create(
        StorageEntry(name=name, kind=Kind.TOMBSTONE, since=now) for name in names if name
    )
