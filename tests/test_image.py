"""The Docker image (no Docker daemon here: the files it is built from): dependencies at
locked versions within pyproject.toml's ranges, and static files under hashed names."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.security.test_settings import manage

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


def static_backend(tmp_path, **env) -> str:
    code = "import config.settings as s; print(s.STORAGES['staticfiles']['BACKEND'])"
    result = manage(tmp_path / "var", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_static_files_are_collected_with_a_manifest_in_the_image(tmp_path):
    # The image's collectstatic runs with the manifest storage, which writes the manifest
    # (ENV before the RUN); without it, no manifest was ever written and files stayed
    # cached 60 s under plain names.
    env_line = DOCKERFILE.index("LORAHUB_STATIC_MANIFEST=1")
    assert env_line < DOCKERFILE.index("manage.py collectstatic")
    manifest = "whitenoise.storage.CompressedManifestStaticFilesStorage"
    root = str(tmp_path)
    assert static_backend(tmp_path, STATIC_ROOT=root, LORAHUB_STATIC_MANIFEST="1") == manifest
    # Development and tests (no collectstatic): plain names, or every page would fail.
    plain = "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert static_backend(tmp_path, STATIC_ROOT=root) == plain
    # ... until a manifest exists there.
    (tmp_path / "staticfiles.json").write_text("{}")
    assert static_backend(tmp_path, STATIC_ROOT=root) == manifest
