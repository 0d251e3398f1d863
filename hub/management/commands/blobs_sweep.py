"""`manage.py blobs_sweep`: delete what interrupted work left behind (see composer.sweep)."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from composer.sweep import leftovers_sweep


class Command(BaseCommand):
    help = (
        "Delete leftovers older than --grace-minutes: stored files that no row names "
        "(rolled-back uploads, results of failed saves), temporary upload files of killed "
        "web processes and scratch folders of killed job attempts on this machine. Workers "
        "run it on their own schedule (COMPOSER_SWEEP_SECONDS); run it on web machines too."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=24 * 60,
            help="spare files younger than this: work still in progress (default: a day)",
        )

    def handle(self, *args, grace_minutes: int, **options):
        swept = leftovers_sweep(timedelta(minutes=grace_minutes))
        for kind, names in swept.items():
            for name in names:
                self.stdout.write(f"deleted {name}")
            self.stdout.write(f"{kind}: {len(names)} deleted")
