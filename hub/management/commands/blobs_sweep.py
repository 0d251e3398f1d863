"""`manage.py blobs_sweep`: delete what interrupted work left behind (see composer.sweep)."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from composer.sweep import leftovers_sweep
from hub.services.storage_sweep import StoreRefused, unknown_files


class Command(BaseCommand):
    help = (
        "Delete leftovers older than --grace-minutes: stored files that the database marks "
        "as garbage (rolled-back uploads, results of failed saves, files of deleted rows), "
        "temporary upload files of killed web processes and scratch folders of killed job "
        "attempts on this machine. Stored files the database does not mention are never "
        "deleted; the store is refused (exit status 1) when another database marked it, or "
        "when this database looks empty beside it. Workers run it on their own schedule "
        "(COMPOSER_SWEEP_SECONDS); run it on web machines too."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=24 * 60,
            help="spare files younger than this: work still in progress (default: a day)",
        )
        parser.add_argument(
            "--report-unknown",
            action="store_true",
            help="count the stored files that the database does not mention (kept)",
        )

    def handle(self, *args, grace_minutes: int, report_unknown: bool, **options):
        try:
            swept = leftovers_sweep(timedelta(minutes=grace_minutes))
        except StoreRefused as refused:
            raise CommandError(f"Stored files were not swept. {refused}") from None
        for kind, names in swept.items():
            for name in names:
                self.stdout.write(f"deleted {name}")
            self.stdout.write(f"{kind}: {len(names)} deleted")
        if report_unknown:
            unknown = unknown_files()
            for name in unknown:
                self.stdout.write(f"unknown {name}")
            self.stdout.write(f"unknown: {len(unknown)} kept (the database does not mention them)")
