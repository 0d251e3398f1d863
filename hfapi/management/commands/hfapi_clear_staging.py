"""Delete LFS objects uploaded for a commit that never came, and old xorbs (run from cron)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from hfapi import staging
from hfapi.xet import store


class Command(BaseCommand):
    help = "Delete staged Hub API LFS uploads older than --hours (default 24)."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=float, default=24.0)

    def handle(self, *args, hours: float, **options):
        removed = staging.clear_stale(timezone.now() - timedelta(hours=hours))
        self.stdout.write(f"removed {removed} staged LFS object(s)")
        removed = store.clear_stale(timezone.now() - max(timedelta(hours=hours), store.KEEP))
        self.stdout.write(f"removed {removed} xorb(s)")
