"""`manage.py restore DIR`: a backup of `manage.py backup`, into an empty installation."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hub.services.backup import BackupError, restore


class Command(BaseCommand):
    help = (
        "Restore the backup in DIR (`manage.py backup`) into this installation, which must be "
        "empty (a migrated database with no rows, a store with no files): the stored files "
        "first, checked against their sha256, then the database in one transaction; then "
        "every stored file is read back and checked. An interrupted restore can be run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)

    def handle(self, *args, folder: Path, **options):
        try:
            checked = restore(folder, self.stdout.write)
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"restored from {folder}: {checked} stored files, all checked")
