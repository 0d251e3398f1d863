"""The site's 404 page also when DEBUG is on (Django's debug 404 lists every URL pattern)."""

from django.conf import settings
from django.http import Http404

from .views.errors import page_not_found


class SiteNotFoundMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # A path no pattern matched: with DEBUG on Django answered with its URLconf listing.
        if settings.DEBUG and response.status_code == 404 and request.resolver_match is None:
            return page_not_found(request)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        return None
