"""The site's own error pages. Hub API paths answer JSON like the rest of the API."""

from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader

API_PREFIX = "/api/"


def page_not_found(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "Not found"}, status=404)
    return render(request, "404.html", {"path": request.path}, status=404)


def server_error(request):
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"error": "Internal error"}, status=500)
    # No request context: whatever failed (the database, a context processor) must not
    # fail the error page too.
    return HttpResponseServerError(loader.get_template("500.html").render())
