"""Trying again, with backoff, what failed because a service was briefly away.

Only errors that `transient` accepts are tried again (a store or a server that did not
answer, a cut connection, a 5xx), never a refusal (4xx) or a bad value, and only while the
next try starts within `total` seconds: a service that stays away fails the caller with
its last error.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings

log = logging.getLogger(__name__)


def with_backoff(
    call: Callable,
    *,
    transient: Callable[[BaseException], bool],
    total: float,
    what: str,
    waiting: Callable[[BaseException, int, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
):
    """`call()`, tried again after each transient failure, the pause doubling from
    COMPOSER_RETRY_FIRST_PAUSE_SECONDS up to COMPOSER_RETRY_MAX_PAUSE_SECONDS.
    `waiting(error, attempt, pause)` hears each failure before its pause; `sleep` may raise
    to give up (a cancel)."""
    deadline = time.monotonic() + total
    pause = settings.COMPOSER_RETRY_FIRST_PAUSE_SECONDS
    attempt = 1
    while True:
        try:
            return call()
        except Exception as error:
            if not transient(error) or time.monotonic() + pause > deadline:
                raise
            log.warning("%s failed (attempt %d), again in %.1f s: %s", what, attempt, pause, error)
            if waiting is not None:
                waiting(error, attempt, pause)
            sleep(pause)
            pause = min(pause * 2, settings.COMPOSER_RETRY_MAX_PAUSE_SECONDS)
            attempt += 1
