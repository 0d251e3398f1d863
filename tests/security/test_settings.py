"""Settings: DEBUG off unless asked for, `check --deploy` clean from the environment, a
Content-Security-Policy on every page, passwords and tokens hidden from error pages."""

import os
import subprocess
import sys
from pathlib import Path

from django.test import RequestFactory
from django.urls import reverse
from django.views.debug import technical_500_response

ROOT = Path(__file__).resolve().parents[2]


def manage(tmp_path, *args, **env) -> subprocess.CompletedProcess:
    """manage.py (or, with "-c", python) in a fresh process with `env`."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    return subprocess.run(
        [sys.executable, *(args if args[0] == "-c" else ("manage.py", *args))],
        cwd=ROOT,
        env={**clean, "LORAHUB_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_debug_is_off_unless_asked_for(tmp_path):
    code = "import config.settings as s; print(s.DEBUG, len(s.SECRET_KEY) >= 50)"
    assert manage(tmp_path, "-c", code).stdout.strip() == "False True"
    assert manage(tmp_path, "-c", code, DEBUG="1").stdout.strip() == "True True"
    # The generated key is kept: every process of the site signs with the same one.
    key = "import config.settings as s; print(s.SECRET_KEY)"
    assert manage(tmp_path, "-c", key).stdout == manage(tmp_path, "-c", key).stdout


def test_check_deploy_is_clean_from_the_environment(tmp_path):
    env = {
        "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
        "ALLOWED_HOSTS": "lorahub.example",
        "LORAHUB_HTTPS": "1",
    }
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # Without the HTTPS switch the same check lists what is missing.
    env.pop("LORAHUB_HTTPS")
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0 and "SECURE_HSTS_SECONDS" in result.stdout + result.stderr


def test_pages_carry_a_content_security_policy(client, db):
    policy = client.get(reverse("hub:adapter_list")).headers["Content-Security-Policy"]
    assert "img-src 'self' data:" in policy and "script-src 'self';" in policy
    assert "default-src 'self'" in policy


def test_signup_passwords_never_reach_an_error_page(db):
    from hub.views.accounts import signup

    password = "".join(reversed("terces-2retnuh"))  # not spelled out in this source
    request = RequestFactory().post(
        reverse("signup"), {"username": "x", "password1": password, "password2": "y"}
    )
    del password
    request.user = __import__("django.contrib.auth.models").contrib.auth.models.AnonymousUser()
    request._dont_enforce_csrf_checks = True
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore

    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    signup(request)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        page = technical_500_response(request, *sys.exc_info()).content.decode()
    assert "terces-2retnuh"[::-1] not in page and "password1" in page
