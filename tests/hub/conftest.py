"""Fixtures of the catalog tests: real PEFT adapters on a tiny T5, cached on disk."""

import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hub.services.adapters import adapter_create

BASE_ID = "lorahub/tiny-t5"
# Bump when what the fixtures build changes.
CACHE = Path(os.environ.get("LORAHUB_TEST_CACHE", Path.home() / ".cache" / "lorahub")) / "hub-v1"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")


def _build_once(out: Path, build) -> Path:
    """Build into a temporary sibling and rename, so an interrupted build is never reused."""
    if out.exists():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    build(tmp)
    try:
        tmp.rename(out)
    except OSError:  # built meanwhile by another process
        shutil.rmtree(tmp, ignore_errors=True)
    return out


@pytest.fixture(scope="session")
def tiny_t5() -> Path:
    from composer.engine.toy import build_tiny_t5

    return _build_once(CACHE / "tiny-t5", build_tiny_t5)


@pytest.fixture(scope="session")
def adapter_dirs(tiny_t5) -> dict[str, Path]:
    """Real adapters written by peft's save_pretrained: r=4 on q,v and r=8 on q,k,v,o."""
    from composer.engine.toy import make_random_adapter

    specs = {"r4": dict(r=4, alpha=8, seed=1), "r8": dict(r=8, alpha=16, seed=2)}
    specs["r8"]["target_modules"] = ("q", "k", "v", "o")
    return {
        key: _build_once(
            CACHE / f"adapter-{key}",
            lambda out, spec=spec: make_random_adapter(
                tiny_t5, out, base_model_name=BASE_ID, **spec
            ),
        )
        for key, spec in specs.items()
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Real hashing is slow by design; these tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def empty_cache():
    """Cached catalog aggregates must not leak from one test's database to the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test stores files in its own MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def assert_swept_after_the_grace(media_root: Path, count: int) -> None:
    """The `count` files left in `media_root` are marked garbage: kept through the sweep's
    grace period (a restored database still finds them), deleted after it."""
    from datetime import timedelta

    from hub.models import StorageEntry
    from hub.services.storage_sweep import MARKER, ledger_sweep

    def files() -> set[str]:
        return {str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file()}

    left = files() - {MARKER}
    assert len(left) == count
    assert StorageEntry.objects.filter(name__in=left, kind="tombstone").count() == count
    assert ledger_sweep(timedelta(hours=1)) == [] and files() - {MARKER} == left
    assert sorted(ledger_sweep(timedelta(minutes=-1))) == sorted(left)
    assert files() == {MARKER}


def uploads(adapter_dir: Path, names=ADAPTER_FILES) -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile(name, (adapter_dir / name).read_bytes())
        for name in names
        if (adapter_dir / name).exists()
    ]


def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def folder_zip(adapter_dir: Path, folder: str = "my-adapter") -> bytes:
    return zip_bytes(
        {
            f"{folder}/{name}": (adapter_dir / name).read_bytes()
            for name in ADAPTER_FILES
            if (adapter_dir / name).exists()
        }
    )


@pytest.fixture
def make_adapter(adapter_dirs):
    def make(owner, name, key="r4", **kwargs):
        d = adapter_dirs[key]
        files = {f: d / f for f in ("adapter_config.json", "adapter_model.safetensors")}
        return adapter_create(owner=owner, name=name, files=files, **kwargs)

    return make


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture(scope="session")
def django_sync_under_playwright():
    """Playwright's sync API runs an event loop in the test thread; Django's ORM, called
    from the same thread between browser steps, must be told that this is fine."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield
