"""`manage.py storage_copy --from fs --to s3`: copy every stored file into another store."""

from collections.abc import Iterator

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.management.base import BaseCommand, CommandError

from composer.models import Job
from hfapi.staging import ROOT as STAGED
from hub.models import Blob
from hub.services.storage import CopyError, stored_copy, stored_folders


def stored_files(source: Storage) -> Iterator[tuple[str, str]]:
    """(name, sha256, or "" where the name does not say it) of every file the site keeps:
    adapter and base model files, job results, and Hub API uploads staged for a commit."""
    blobs = Blob.objects.order_by("sha256").values_list("storage_name", "sha256")
    yield from blobs.iterator()
    results = Job.objects.exclude(result_file="").order_by("pk")
    for name in results.values_list("result_file", flat=True).iterator():
        yield name, ""
    for folder, names in stored_folders(STAGED, source):
        for name in names:
            yield f"{folder}/{name}", name


class Command(BaseCommand):
    help = (
        "Copy every stored file (adapter and base model files, job results, staged Hub API "
        "uploads) from one store of LORAHUB_STORES to another, under the same names, e.g. "
        "from the file system to S3 before switching to it. Each file is streamed and its "
        "copy's sha256 checked; files the target holds already are skipped, so a second run "
        "copies nothing and an interrupted run resumes. Nothing is deleted from the source."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", required=True, help="e.g. fs")
        parser.add_argument("--to", dest="target", required=True, help="e.g. s3")
        parser.add_argument(
            "--verify",
            action="store_true",
            help="check the sha256 of files the target holds already too (reads them)",
        )

    def handle(self, *args, source: str, target: str, verify: bool, **options):
        stores = settings.LORAHUB_STORES
        for name in (source, target):
            if name not in stores:
                raise CommandError(
                    f"No store {name!r}; there are: {', '.join(stores)} "
                    "(s3 needs LORAHUB_S3_BUCKET and its settings)."
                )
        if source == target:
            raise CommandError("--from and --to name the same store.")
        src, dst = storages.create_storage(stores[source]), storages.create_storage(stores[target])
        copied, present, failed, size = 0, 0, [], 0
        for name, sha256 in stored_files(src):
            try:
                done = stored_copy(src, dst, name, sha256, verify=verify)
            except CopyError as error:
                failed.append(name)
                self.stderr.write(f"failed {error}")
                continue
            if done:
                copied += 1
                size += dst.size(name)
                self.stdout.write(f"copied {name}")
            else:
                present += 1
        self.stdout.write(
            f"{source} -> {target}: {copied} copied ({size:,} bytes), "
            f"{present} there already, {len(failed)} failed"
        )
        if failed:
            raise CommandError(f"{len(failed)} files were not copied: run again once fixed.")
