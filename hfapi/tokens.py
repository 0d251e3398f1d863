"""Access tokens: create, revoke, and authenticate a request's `Authorization: Bearer`."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import AccessToken

TOKEN_PREFIX = "hf_"
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidToken(Exception):
    """The request carries a bearer token that matches no live token."""


@dataclass(frozen=True)
class ApiAuth:
    """Who an API request acts for; `user` is None for anonymous requests."""

    user: AbstractBaseUser | None = None
    token: AccessToken | None = None

    @property
    def can_write(self) -> bool:
        return self.token is not None and self.token.can_write


ANONYMOUS = ApiAuth()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(*, user, name: str, scope: str) -> tuple[AccessToken, str]:
    """Create a token; returns the row and the plain token, which is never stored.
    Raises ValidationError when the user holds LORAHUB_MAX_TOKENS_PER_USER already."""
    if scope not in dict(AccessToken.SCOPES):
        raise ValueError(f"unknown scope {scope!r}")
    limit = settings.LORAHUB_MAX_TOKENS_PER_USER
    if AccessToken.objects.filter(user=user).count() >= limit:
        raise ValidationError(
            f"You have {limit} tokens, the most one account may hold: revoke one you no "
            "longer use first.",
            code="tokens",
        )
    plain = TOKEN_PREFIX + secrets.token_urlsafe(30).replace("-", "A").replace("_", "z")
    token = AccessToken.objects.create(
        user=user,
        name=name.strip() or "token",
        scope=scope,
        token_hash=hash_token(plain),
        prefix=plain[:8],
    )
    return token, plain


def token_revoke(*, user, token_id: int) -> bool:
    """Delete one of `user`'s tokens; False when it is not theirs or already gone."""
    deleted, _ = AccessToken.objects.filter(user=user, id=token_id).delete()
    return deleted > 0


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(request) -> ApiAuth:
    """The identity behind the request's bearer token (anonymous when it has none).

    Only the Authorization header counts: a session cookie never authenticates an API
    request, so cross-site requests (which can carry cookies but cannot set this header)
    act anonymously. Raises InvalidToken for an unknown or revoked token.
    """
    plain = bearer_token(request)
    if plain is None:
        return ANONYMOUS
    token = (
        AccessToken.objects.select_related("user")
        .filter(token_hash=hash_token(plain), user__is_active=True)
        .first()
    )
    if token is None:
        raise InvalidToken
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        AccessToken.objects.filter(id=token.id).update(last_used_at=now)
        token.last_used_at = now
    return ApiAuth(user=token.user, token=token)
