"""Demo data for a new install: `manage.py seed_demo` (run by `make run`). Idempotent."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from hub.demo import architecture, demo_adapters, demo_base_models
from hub.models import Adapter, BaseModel
from hub.services.adapters import adapter_create

DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"
FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")


class Command(BaseCommand):
    help = "Create a demo user, tiny base models on disk and a few real PEFT adapters."

    def handle(self, *args, **options):
        root = settings.LORAHUB_DEMO_DIR
        user, created = get_user_model().objects.get_or_create(username=DEMO_USER)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        base_dirs = demo_base_models(root)
        for identifier, path in base_dirs.items():
            BaseModel.objects.update_or_create(
                identifier=identifier,
                defaults={"local_path": str(path), "architecture": architecture(path)},
            )
        added = 0
        for name, adapter_dir, meta in demo_adapters(base_dirs, root):
            if Adapter.objects.filter(owner=user, name=name).exists():
                continue
            adapter_create(
                owner=user,
                name=name,
                files={f: adapter_dir / f for f in FILES if (adapter_dir / f).exists()},
                task=meta["task"],
                license=meta["license"],
                tags=meta["tags"],
            )
            added += 1
        self.stdout.write(
            f"Demo ready: user {DEMO_USER} / {DEMO_PASSWORD}, {added} adapter(s) added, "
            f"base models in {root}."
        )
