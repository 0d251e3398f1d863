"""Short-lived Xet access tokens: what the token endpoints hand out and the CAS calls carry.

A token is signed (Django's signing, with its own salt) and names the user, the repository
and the scope it was issued for; the CAS calls check the signature, age and scope only, so
they cost no database query. A write token is issued only to a caller who may change the
repository, through a write token of their own.
"""

import time

from django.core import signing

from ..responses import ApiError
from ..tokens import bearer_token

SALT = "hfapi.xet"
LIFETIME = 3600  # seconds; hf_xet asks for a new token before it expires
READ, WRITE = "read", "write"


def issue(user_id: int, repo_id: str, scope: str) -> tuple[str, int]:
    """A token and its expiry (Unix seconds)."""
    token = signing.dumps({"u": user_id, "r": repo_id, "s": scope}, salt=SALT, compress=True)
    return token, int(time.time()) + LIFETIME


def holder(request, scope: str) -> int:
    """The user id of the request's Xet token, which must grant `scope`."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "Send the Xet access token from the xet token endpoint")
    try:
        claim = signing.loads(token, salt=SALT, max_age=LIFETIME)
    except signing.BadSignature:
        raise ApiError(401, "This Xet access token is invalid or has expired") from None
    if scope == WRITE and claim.get("s") != WRITE:
        raise ApiError(403, "This Xet access token is read-only")
    return claim["u"]
