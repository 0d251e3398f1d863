"""Demo data for a new install: `manage.py seed_demo` (run by `make run`). Idempotent."""

import io
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.urls import reverse

from hub.demo import (
    architecture,
    base_model_card,
    base_model_id,
    demo_adapters,
    demo_suite,
    write_fewshot_files,
)
from hub.models import Adapter, BaseModel
from hub.services.adapters import adapter_create
from hub.services.base_models import base_model_register

DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"
FILES = ("adapter_config.json", "adapter_model.safetensors")


class Command(BaseCommand):
    help = (
        "Create a demo user, the tiny trained base model and its task adapters (trained "
        "offline on first use, then cached), and ready few-shot examples of held-out tasks."
    )

    def progress(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def handle(self, *args, **options):
        user, created = get_user_model().objects.get_or_create(username=DEMO_USER)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        start = time.perf_counter()
        self.stdout.write("Preparing the demo models (the first time trains them: minutes)...")
        suite = demo_suite(progress=self.progress)
        base, _ = BaseModel.objects.update_or_create(
            identifier=base_model_id(suite),
            defaults={
                "local_path": str(suite.base_dir),
                "architecture": architecture(suite.base_dir),
            },
        )
        # Its files, served by the Hub API (from_pretrained by identifier; workers fetch it).
        base = base_model_register(base.identifier, suite.base_dir)
        added, names = 0, []
        for name, adapter_dir, meta in demo_adapters(suite):
            names.append(name)
            if Adapter.objects.filter(owner=user, name=name).exists():
                continue
            files = {f: adapter_dir / f for f in FILES}
            files["README.md"] = io.BytesIO(meta["model_card"].encode())
            adapter_create(
                owner=user,
                name=name,
                files=files,
                task=meta["task"],
                license=meta["license"],
                tags=meta["tags"],
            )
            added += 1
        pks = Adapter.objects.filter(owner=user, name__in=names).values_list("pk", flat=True)
        compose_url = (
            reverse("composer:new", args=["lorahub"])
            + "?"
            + urlencode([("adapters", pk) for pk in sorted(pks)])
        )
        base.description = base_model_card(suite, compose_url)
        base.save(update_fields=["description"])
        fewshot = write_fewshot_files(suite, settings.LORAHUB_DEMO_DIR)
        self.stdout.write(
            f"Demo ready in {time.perf_counter() - start:.0f} s: user {DEMO_USER} / "
            f"{DEMO_PASSWORD}, {added} adapter(s) added, base model {base_model_id(suite)}; "
            f"few-shot examples of held-out tasks on its page and in {fewshot}."
        )
