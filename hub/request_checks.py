"""Checks on every request and response: NUL characters refused, a Content-Security-Policy."""

from django.conf import settings
from django.http import HttpResponseBadRequest


class NulCharacterMiddleware:
    """Refuse a URL or query string holding a NUL character (400) before any view passes it
    to the database (PostgreSQL refuses NUL in text: a 500 otherwise)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest(
                "The address holds a NUL character (%00), which no page accepts.",
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Send settings.CONTENT_SECURITY_POLICY with every response that has none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
