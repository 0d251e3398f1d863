"""Which errors mean that a service we depend on is briefly away (the store, the database),
as opposed to a request or a value it refuses: the first are worth a retry or a 503, the
second never are."""

from django.db import InterfaceError, OperationalError

STORE = "file store"
DATABASE = "database"


def _chain(exc: BaseException):
    """`exc` and the errors it was raised from. Not every error it was raised while
    handling: a cancel during a retry's pause is a cancel, not the outage before it; but
    boto3 wraps a failed upload in its own error without naming the cause."""
    from boto3.exceptions import Boto3Error

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or (exc.__context__ if isinstance(exc, Boto3Error) else None)


def store_unreachable(exc: BaseException) -> bool:
    """True for a store that did not answer, cut the connection, timed out or answered
    with a server error (5xx); False for a refusal (4xx) or anything else."""
    from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
    from botocore.exceptions import ConnectionError as NoConnection

    cut = (NoConnection, HTTPClientError, IncompleteReadError, ConnectionError, TimeoutError)
    for error in _chain(exc):
        if isinstance(error, cut):
            return True  # no answer (refused, timed out) or an answer cut short
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return status >= 500
    return False


def database_unreachable(exc: BaseException) -> bool:
    return any(isinstance(e, OperationalError | InterfaceError) for e in _chain(exc))


def outage(exc: BaseException) -> str | None:
    """The service that is away when `exc` was raised (STORE or DATABASE), or None."""
    if store_unreachable(exc):
        return STORE
    if database_unreachable(exc):
        return DATABASE
    return None
