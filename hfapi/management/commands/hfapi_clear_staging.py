"""Delete LFS objects uploaded for a commit that never came (run it from cron)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from hfapi.staging import clear_stale


class Command(BaseCommand):
    help = "Delete staged Hub API LFS uploads older than --hours (default 24)."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=float, default=24.0)

    def handle(self, *args, hours: float, **options):
        removed = clear_stale(timezone.now() - timedelta(hours=hours))
        self.stdout.write(f"removed {removed} staged LFS object(s)")
