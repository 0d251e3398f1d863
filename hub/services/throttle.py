"""Limits on how often one user or address may do something: failed log-ins, sign-ups,
uploads and Hub API writes. Events are rows in the database, so every web process sees the
same counts; each check drops its key's events older than the period."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from ..models import ThrottleEvent


def throttle_count(scope: str, key: str, period: timedelta) -> int:
    """Events of (scope, key) within the last `period`; older ones are deleted."""
    events = ThrottleEvent.objects.filter(scope=scope, key=key[:200])
    events.filter(at__lt=timezone.now() - period).delete()
    return events.count()


def throttle_record(scope: str, key: str) -> None:
    ThrottleEvent.objects.create(scope=scope, key=key[:200])


def client_address(request) -> str:
    """The client's address: the one the first proxy saw, with LORAHUB_PROXY_HOPS proxies
    in front, else the peer's."""
    address = request.META.get("REMOTE_ADDR", "")
    hops = settings.LORAHUB_PROXY_HOPS
    if hops:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    return address


LOGIN_PERIOD = timedelta(minutes=15)
# An address the account logged in from within this period is the owner's own.
KNOWN_ADDRESS_PERIOD = timedelta(days=30)


def _login_names(request, username: str) -> tuple[str, str]:
    address = client_address(request) if request is not None else ""
    return (username or "").strip().lower(), address


def login_keys(request, username: str) -> list[tuple[str, int]]:
    """(key, limit) pairs a log-in attempt is counted under.

    Failures count per (account, address) and per address, so an attacker's guesses lock
    out the attacker's address only, never the owner at theirs. A per-account count across
    all addresses bounds guessing from many addresses; an address the account logged in
    from recently is exempt from it, so no one can lock the owner out from there."""
    account, address = _login_names(request, username)
    keys = [
        (f"user-address:{account}|{address}", settings.LORAHUB_LOGIN_FAILURES),
        (f"address:{address}", settings.LORAHUB_LOGIN_FAILURES_PER_ADDRESS),
    ]
    if not throttle_count("login-ok", f"{account}|{address}", KNOWN_ADDRESS_PERIOD):
        keys.append((f"user:{account}", settings.LORAHUB_LOGIN_FAILURES_PER_ACCOUNT))
    return keys


def login_check(request, username: str) -> None:
    """Refuse a log-in attempt while one of its keys has too many recent failures."""
    for key, limit in login_keys(request, username):
        if throttle_count("login", key, LOGIN_PERIOD) >= limit:
            minutes = int(LOGIN_PERIOD.total_seconds() // 60)
            raise ValidationError(
                f"Too many failed log-ins for this account or from this address: try again in "
                f"{minutes} minutes.",
                code="throttled",
            )


def login_failed(request, username: str) -> None:
    account, address = _login_names(request, username)
    for key in (f"user-address:{account}|{address}", f"address:{address}", f"user:{account}"):
        throttle_record("login", key)


def login_succeeded(request, username: str) -> None:
    """Remember the address as the account's own (one row per account and address)."""
    key = "{}|{}".format(*_login_names(request, username))
    ThrottleEvent.objects.filter(scope="login-ok", key=key[:200]).delete()
    throttle_record("login-ok", key)


WRITE_PERIOD = timedelta(hours=1)


def write_check(user) -> str | None:
    """Count one upload or Hub API write by `user`; a message when over the hourly limit."""
    limit = settings.LORAHUB_WRITES_PER_HOUR
    if throttle_count("write", f"user:{user.pk}", WRITE_PERIOD) >= limit:
        return (
            f"You have uploaded or changed adapters {limit} times in the last hour, the limit: "
            "please try again later."
        )
    throttle_record("write", f"user:{user.pk}")
    return None


SIGNUP_PERIOD = timedelta(hours=1)


def signup_check(request) -> None:
    """Refuse a sign-up from an address that made LORAHUB_SIGNUPS_PER_HOUR accounts within
    the last hour (more accounts would get around every per-user limit)."""
    limit = settings.LORAHUB_SIGNUPS_PER_HOUR
    if throttle_count("signup", f"address:{client_address(request)}", SIGNUP_PERIOD) >= limit:
        raise ValidationError(
            f"At most {limit} sign-ups an hour from one address: please try again later.",
            code="throttled",
        )


def signup_record(request) -> None:
    throttle_record("signup", f"address:{client_address(request)}")


def address_check(request, scope: str, limit: int, period: timedelta) -> bool:
    """Count one `scope` request from the client's address; False when over `limit` in
    `period` (for what anyone may do without an account)."""
    key = f"address:{client_address(request)}"
    if throttle_count(scope, key, period) >= limit:
        return False
    throttle_record(scope, key)
    return True
