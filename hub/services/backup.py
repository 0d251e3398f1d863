"""A backup of an installation (`manage.py backup DIR`), and its restore into an empty
installation (`manage.py restore DIR`), on PostgreSQL or SQLite, file system or S3.

A backup folder holds `database.jsonl` (every app's rows but those `migrate` makes), then
`files/`, every stored file those rows name, and `files.json`, their sha256. The database
goes first, in one snapshot: the store keeps a file whose row goes meanwhile for the sweep's
grace period (a tombstone), so every file the dump names is still there to copy, and a file
stored after the dump is simply not in the backup.

A restore copies the files first (checked against their sha256), then loads the rows in one
transaction, marks the store as the restored installation's, and reads every file back to
check it. Hub API uploads staged for a commit, sessions and the storage ledger are left out.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management import call_command
from django.db import connection, transaction

from ..models import Installation
from .storage import CopyError, stored_copy, stored_folders, stored_sha256
from .storage_ledger import TRACKED
from .storage_sweep import MARKER, installation_check, marker_read, marker_write

DUMP = "database.jsonl"
FILES = "files"
MANIFEST = "files.json"
# Recreated by `migrate`, per session, or about files that the backup does not copy.
EXCLUDED = ["contenttypes", "auth.permission", "sessions", "hub.storageentry"]
Say = Callable[[str], None]


class BackupError(Exception):
    pass


def _named_files(dump: Path) -> Iterator[tuple[str, str]]:
    """(stored name, sha256 or "" where the row does not say it) of each file that a row of
    the dump names."""
    fields = {model._meta.label_lower: (field, model) for model, field, _ in TRACKED}
    with open(dump, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["model"] not in fields:
                continue
            field, model = fields[row["model"]]
            name = row["fields"].get(field)
            if name:
                # A Blob's key is its sha256; a job's result has none in the database.
                yield name, row["pk"] if model._meta.label_lower == "hub.blob" else ""


def backup(folder: Path, say: Say) -> int:
    """Write a backup of this installation into `folder` (new or empty); the files copied."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: back up into a new folder.")
    dump = folder / DUMP
    with transaction.atomic():
        if connection.vendor == "postgresql":  # one snapshot of every table
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        call_command(
            "dumpdata",
            exclude=EXCLUDED,
            format="jsonl",
            natural_foreign=True,
            output=str(dump),
            verbosity=0,
        )
    say(f"database: {dump}")
    target = FileSystemStorage(location=folder / FILES)
    manifest = {}
    for name, sha256 in _named_files(dump):
        try:
            stored_copy(default_storage, target, name, sha256)
        except CopyError as error:
            raise BackupError(f"{error}: the backup in {folder} is incomplete.") from None
        manifest[name] = sha256 or stored_sha256(target, name)
        say(f"copied {name}")
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return len(manifest)


def _installation_of(dump: Path) -> str | None:
    with open(dump, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["model"] == "hub.installation":
                return row["fields"]["uid"]
    return None


def _restore_refusal(manifest: dict[str, str], uid: str | None) -> str | None:
    """Why this installation cannot take a restore: any row in what the dump holds (a
    restore would overwrite it), or a stored file that is not one of the backup's (one of
    them: an interrupted restore, resumed), unless the store is the backed-up
    installation's own (its database lost): files newer than the backup stay there, unknown
    to the restored database, never deleted."""
    from django.apps import apps

    for model in apps.get_models():
        label = model._meta.label_lower
        if label == "hub.installation" or any(
            label == ex or label.startswith(f"{ex}.") for ex in EXCLUDED
        ):
            continue
        if model._default_manager.exists():
            return f"its database holds rows ({label}): restore into an empty installation."
    if uid is not None and marker_read() == uid:
        return None
    for _, _, top in TRACKED:
        for sub, names in stored_folders(top):
            for name in names:
                if f"{sub}/{name}" not in manifest:
                    return f"its store holds {sub}/{name}: restore into an empty store."
    return None


def restore(folder: Path, say: Say) -> int:
    """Restore the backup in `folder` into this installation, which must be empty; the
    files checked."""
    dump, manifest_path = folder / DUMP, folder / MANIFEST
    if not dump.is_file() or not manifest_path.is_file():
        raise BackupError(f"{folder} holds no complete backup ({DUMP} and {MANIFEST}).")
    manifest = json.loads(manifest_path.read_text())
    refusal = _restore_refusal(manifest, _installation_of(dump))
    if refusal:
        raise BackupError(f"This installation is not empty: {refusal}")
    source = FileSystemStorage(location=folder / FILES)
    for name, sha256 in sorted(manifest.items()):
        try:
            if stored_copy(source, default_storage, name, sha256):
                say(f"copied {name}")
        except CopyError as error:
            raise BackupError(f"{error}: nothing was restored into the database.") from None
    with transaction.atomic():
        Installation.objects.all().delete()  # the restored installation's id comes with it
        call_command("loaddata", str(dump), verbosity=0)
    say(f"database: {dump} loaded")
    restored = Installation.objects.order_by("pk").first()
    if restored is not None:
        marker_write(restored.uid)
    else:  # a backup from before installation ids: the empty installation's id goes
        default_storage.delete(MARKER)
    installation_check()
    return _verify(manifest, say)


def _verify(manifest: dict[str, str], say: Say) -> int:
    """Read back every stored file the restored rows name and check its sha256."""
    wrong, checked = [], 0
    for model, field, _ in TRACKED:
        rows = model._default_manager.exclude(**{field: ""}).values_list(field, flat=True)
        for name in rows.iterator():
            expected = manifest.get(name)
            if expected is None or stored_sha256(default_storage, name) != expected:
                wrong.append(name)
            checked += 1
    if wrong:
        raise BackupError(f"{len(wrong)} restored files are missing or differ: {wrong[:10]}")
    say(f"checked the sha256 of {checked} stored files")
    return checked
