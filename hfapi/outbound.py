"""Where an import may connect: the upstream hub's own origin, or public addresses only.

An upstream answers downloads with redirects (to its CDN); a hostile one could redirect a
worker to this network's own services (a database's web console, a cloud's metadata at
169.254.169.254). While `guarded(endpoint)` is active, every request huggingface_hub sends
from this thread (each hop of a redirect included) must go to the endpoint's origin, which
the operator chose, or to a host all of whose addresses, once resolved, are public.
(Resolution happens again when httpx2 connects: a name that rebinds in between is not
caught here; the worker's network policy is the second line.)
"""

import ipaddress
import socket
from contextlib import contextmanager
from contextvars import ContextVar

import httpx2

_ORIGIN: ContextVar[tuple | None] = ContextVar("upstream_origin", default=None)
_installed = False


class InternalAddress(Exception):
    """A request of an import was about to go to a loopback, private or link-local host."""


def origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone names no other host
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_request(request: httpx2.Request) -> None:
    """An httpx2 request hook: refuse a request outside the guarded endpoint's origin to a
    host that is, or resolves to, an internal address."""
    allowed = _ORIGIN.get()
    if allowed is None or origin(request.url) == allowed:
        return
    host = request.url.host
    try:
        found = socket.getaddrinfo(host, origin(request.url)[2], type=socket.SOCK_STREAM)
    except OSError:
        found = []  # httpx2 would fail to connect too: say where it was sent instead
    addresses = {info[4][0] for info in found}
    if not addresses or not all(is_public(a) for a in addresses):
        raise InternalAddress(
            f"The upstream sent this download to {host}, which is not a public address: refused."
        )


def _client_factory() -> httpx2.Client:
    from huggingface_hub.utils._http import default_client_factory

    client = default_client_factory()
    hooks = client.event_hooks
    hooks["request"] = [*hooks["request"], check_request]
    client.event_hooks = hooks
    return client


@contextmanager
def guarded(endpoint: str):
    """Within: huggingface_hub's requests from this thread go to `endpoint`'s origin or to
    public addresses only (InternalAddress otherwise)."""
    global _installed
    if not _installed:
        from huggingface_hub import set_client_factory

        set_client_factory(_client_factory)  # its shared client, with our hook
        _installed = True
    from huggingface_hub import constants

    token = _ORIGIN.set(origin(httpx2.URL(endpoint)))
    # Xet storage downloads through its own client, past this hook and the byte counts:
    # imports take the HTTP path (every Hub serves it).
    xet, constants.HF_HUB_DISABLE_XET = constants.HF_HUB_DISABLE_XET, True
    try:
        yield
    finally:
        constants.HF_HUB_DISABLE_XET = xet
        _ORIGIN.reset(token)
