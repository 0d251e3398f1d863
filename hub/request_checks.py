"""Refuse requests whose URL or query string holds a NUL character (400), before any view
passes one to the database (PostgreSQL refuses NUL in text: a 500 otherwise)."""

from django.http import HttpResponseBadRequest


class NulCharacterMiddleware:
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
