"""The web's health check (docker-compose.yml): `python -m config.health [URL]` asks
gunicorn for the log-in page and exits 0 when it answers 200.

It asks under the internal name the settings always accept (COMPOSER_BASE_MODEL_ENDPOINT's
host, `web`), whatever ALLOWED_HOSTS lists, and says it came through the HTTPS proxy, whose
header the web trusts with LORAHUB_HTTPS=1 (else it would answer with a redirect). Standard
library only: no Django start-up at every check.
"""

import http.client
import os
import sys
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8000/accounts/login/"


def check(url: str = DEFAULT_URL, timeout: float = 10) -> int:
    """The status the web answers `url` with."""
    endpoint = os.environ.get("COMPOSER_BASE_MODEL_ENDPOINT", "http://127.0.0.1:8000")
    target = urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=timeout)
    try:
        connection.request(
            "GET",
            target.path or "/",
            headers={"Host": urlsplit(endpoint).netloc, "X-Forwarded-Proto": "https"},
        )
        return connection.getresponse().status
    finally:
        connection.close()


if __name__ == "__main__":
    try:
        status = check(*sys.argv[1:2])
    except OSError as error:
        sys.exit(f"no answer: {error}")
    sys.exit(0 if status == 200 else f"answered {status}")
