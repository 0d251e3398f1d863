"""The site's 404 page also when DEBUG is on (Django's debug 404 lists every URL pattern);
503, not 500, for a request that met the store or the database away."""

import logging

from django.conf import settings
from django.http import Http404

from .services.outages import outage
from .views.errors import outage_response, page_not_found

log = logging.getLogger(__name__)


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


class OutageMiddleware:
    """A view that raised because the store or the database did not answer answers 503
    with a message (its transaction rolled back and services remove what they stored)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        service = outage(exception)
        if service is None:
            return None
        log.warning(
            "%s %s: the %s is unreachable",
            request.method,
            request.path,
            service,
            exc_info=exception,
        )
        return outage_response(request, service)
