"""`manage.py blobs_sweep`: delete stored adapter files that no catalog row refers to."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from hub.services.storage import blobs_sweep


class Command(BaseCommand):
    help = (
        "Delete stored files that no blob row names (left by rolled-back or interrupted "
        "uploads) once they are older than --grace-minutes. Run it daily, e.g. from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=24 * 60,
            help="spare files younger than this: uploads still in progress (default: a day)",
        )

    def handle(self, *args, grace_minutes: int, **options):
        swept = blobs_sweep(timedelta(minutes=grace_minutes))
        for name in swept:
            self.stdout.write(f"deleted {name}")
        self.stdout.write(f"{len(swept)} unreferenced file(s) deleted")
