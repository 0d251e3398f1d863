"""The Docker image (no Docker daemon here: the files it is built from): dependencies at
locked versions within pyproject.toml's ranges, and static files under hashed names."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")  # every line is pinned
            pins[canonicalize_name(name)] = version
    return pins


def test_the_image_installs_the_locked_versions_of_the_declared_ranges():
    assert "pip install --no-deps -r requirements.lock" in DOCKERFILE
    assert re.search(r'ARG TORCH_SPEC="torch==[\d.]+"', DOCKERFILE)  # torch: pinned there
    pins = locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        # A new major version is a deliberate upgrade, not a rebuild's surprise.
        assert any(s.operator == "<" for s in requirement.specifier), line
        name = canonicalize_name(requirement.name)
        if name == "torch":
            continue
        assert name in pins, f"{name} is not in requirements.lock (make lock)"
        assert requirement.specifier.contains(pins[name]), (line, pins[name])
        for extra in requirement.extras:  # psycopg[binary], celery[redis]
            assert {"binary": "psycopg-binary", "redis": "redis"}[extra] in pins


def static_backend(**env) -> str:
    code = "from django.conf import settings; print(settings.STORAGES['staticfiles']['BACKEND'])"
    environ = {k: v for k, v in os.environ.items() if k != "LORAHUB_STATIC_MANIFEST"}
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        env={**environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_static_files_are_collected_with_a_manifest_in_the_image(tmp_path):
    # The image's collectstatic runs with the manifest storage, which writes the manifest
    # (ENV before the RUN); without it, no manifest was ever written and files stayed
    # cached 60 s under plain names.
    env_line = DOCKERFILE.index("LORAHUB_STATIC_MANIFEST=1")
    assert env_line < DOCKERFILE.index("manage.py collectstatic")
    manifest = "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert static_backend(STATIC_ROOT=str(tmp_path), LORAHUB_STATIC_MANIFEST="1") == manifest
    # Development and tests (no collectstatic): plain names, or every page would fail.
    plain = "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert static_backend(STATIC_ROOT=str(tmp_path)) == plain
    # ... until a manifest exists there.
    (tmp_path / "staticfiles.json").write_text("{}")
    assert static_backend(STATIC_ROOT=str(tmp_path)) == manifest
