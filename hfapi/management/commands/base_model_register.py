"""`manage.py base_model_register ID --folder DIR` or `--from-hub REPO[@REVISION]`."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from hfapi.upstream import UpstreamError, base_model_import
from hub.services.base_models import base_model_register


class Command(BaseCommand):
    help = (
        "Register a base model's files (a from_pretrained folder, or a repository of an "
        "upstream hub), so the Hub API serves it by its identifier and workers fetch it."
    )

    def add_arguments(self, parser):
        parser.add_argument("identifier", help="the base model's id here, e.g. org/model")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--folder", help="a folder written by save_pretrained")
        source.add_argument("--from-hub", metavar="REPO[@REVISION]", help="an upstream repo")
        parser.add_argument("--endpoint", default="", help="default: LORAHUB_UPSTREAM_ENDPOINT")
        parser.add_argument("--token", default="", help="a token for a private upstream repo")

    def handle(self, *args, identifier, folder, from_hub, endpoint, token, **options):
        try:
            if folder:
                base = base_model_register(identifier, folder)
            else:
                base = base_model_import(identifier, from_hub, endpoint=endpoint, token=token)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except UpstreamError as error:
            raise CommandError(str(error)) from None
        count = base.files.count()
        self.stdout.write(f"{base.identifier}: {count} file(s), revision {base.commit}")
