"""`manage.py backup DIR`: the database, then every stored file it names (hub.services.backup)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hub.services.backup import BackupError, backup


class Command(BaseCommand):
    help = (
        "Back up this installation into DIR (new or empty): the database in one snapshot "
        "(database.jsonl), then every stored file its rows name (files/, and their sha256 in "
        "files.json). Runs while the site runs; `manage.py restore DIR` restores it into an "
        "empty installation."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)

    def handle(self, *args, folder: Path, **options):
        try:
            copied = backup(folder, self.stdout.write)
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"backup in {folder}: the database and {copied} stored files")
