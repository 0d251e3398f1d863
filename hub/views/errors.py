"""The site's own error pages. Hub API paths answer JSON like the rest of the API."""

import sys

from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader

API_PREFIX = "/api/"


def page_not_found(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "Not found"}, status=404)
    return render(request, "404.html", {"path": request.path}, status=404)


RETRY_AFTER = 30  # seconds: a store or database restart, a failover


def outage_response(request, service: str):
    """503 for a request that met `service` away (hub.services.outages): the request kept
    nothing (its transaction rolled back, the files it stored were removed) and may be sent
    again as it is."""
    message = (
        f"The {service} is briefly unreachable, so nothing was saved. Please try again in a minute."
    )
    if request.path.startswith(API_PREFIX):
        response = JsonResponse({"error": message}, status=503)
    else:
        # No request context: its processors may need the database that is away.
        page = loader.get_template("503.html").render({"message": message})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response


def server_error(request):
    from hub.services.outages import outage

    # Raised outside a view (the session or user middleware reading the database).
    service = outage(sys.exc_info()[1]) if sys.exc_info()[1] else None
    if service:
        return outage_response(request, service)
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "Internal error"}, status=500)
    # No request context: whatever failed (the database, a context processor) must not
    # fail the error page too.
    return HttpResponseServerError(loader.get_template("500.html").render())
