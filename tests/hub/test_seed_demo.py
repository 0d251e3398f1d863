import io
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from hub.demo import ADAPTERS
from hub.models import Adapter, BaseModel
from tests.hub.conftest import CACHE


@pytest.mark.slow
def test_seed_demo_is_idempotent_and_loadable(db, settings, client):
    settings.LORAHUB_DEMO_DIR = CACHE / "demo"
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert f"{len(ADAPTERS)} adapter(s) added" in out.getvalue()
    call_command("seed_demo", stdout=out)
    assert "0 adapter(s) added" in out.getvalue()

    assert authenticate(username="demo", password="demo-password") is not None
    assert Adapter.objects.filter(owner__username="demo").count() == len(ADAPTERS)
    ranks = set(Adapter.objects.values_list("current_version__r", flat=True))
    assert len(ranks) >= 3
    for base in BaseModel.objects.all():
        assert base.local_path and base.architecture, base
        assert Path(base.local_path, "config.json").exists()
    page = client.get("/adapters/").content.decode()
    assert all(f">{name}<" in page for name, *_ in ADAPTERS)
