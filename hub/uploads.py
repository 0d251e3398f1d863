"""Request bodies: who may send a large one, and how it is received.

Every view gets at most LORAHUB_MAX_BODY_BYTES of body (`BodyLimitMiddleware`, from the
Content-Length, before reading it) unless it declares its own limit with `body_limit`: the
job forms (example files), the upload forms (`upload_view`: the user is authenticated, and
may change the target, before a byte of the body is read) and the Hub API endpoints that
stream and bound their bodies themselves (`body_limit(None)`).
"""

import hashlib
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpResponse, JsonResponse
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from .services.quota import WriteRefused, write_allow

PLAIN_TEXT = "text/plain; charset=utf-8"


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Spools every uploaded file to disk (never memory) and records its sha256 as
    `.sha256`. Bytes past LORAHUB_MAX_FILE_BYTES are counted but not written, so an
    oversized file is refused by validation (by its `.size`) without filling the disk."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()
        self.limit = settings.LORAHUB_MAX_FILE_BYTES

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            return None
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        f = super().file_complete(file_size)
        f.sha256 = self.digest.hexdigest()
        return f


def body_chunks(request, size: int = 1024 * 1024):
    """The request's body as it streams in, `size` bytes at a time (never whole in memory)."""
    while chunk := request.read(size):
        yield chunk


def body_limit(limit: int | None):
    """Declare a view's largest request body in bytes; None: the view bounds it itself."""

    def decorator(view):
        view.body_limit = limit
        return view

    return decorator


def upload_view(check=None):
    """Decorate a view that receives adapter files.

    Anonymous users are sent to the login page, `check(request, *args, **kwargs)` (which
    raises Http404 / PermissionDenied) runs and a POST counts as one of the user's writes
    (hub.services.quota: 429 past LORAHUB_WRITES_PER_HOUR, 413 with no storage left),
    before anything reads the body. Then uploads are hashed as they arrive; upload handlers
    must be set before the body is read, and CSRF checking reads it, so CSRF is checked
    here (csrf_protect), after the handlers.
    """

    def decorator(view):
        protected = csrf_protect(view)

        @body_limit(None)  # files are capped by HashingUploadHandler
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if check is not None:
                check(request, *args, **kwargs)
            if request.method == "POST":
                try:
                    write_allow(request.user)
                except WriteRefused as refused:
                    text = " ".join(refused.messages)
                    return HttpResponse(text, status=refused.status, content_type=PLAIN_TEXT)
            request.upload_handlers = [HashingUploadHandler(request)]
            return protected(request, *args, **kwargs)

        return wrapper

    return decorator


class BodyLimitMiddleware:
    """Refuse a body over the view's `body_limit` (LORAHUB_MAX_BODY_BYTES by default) by its
    Content-Length, before reading it. Django reads no more than the Content-Length (none
    without one), so what a view then receives is bounded too. Place it before
    CsrfViewMiddleware, which reads form bodies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        limit = getattr(view, "body_limit", settings.LORAHUB_MAX_BODY_BYTES)
        if limit is None:
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            message = (
                f"The request body is {filesizeformat(length)}; this page accepts at most "
                f"{filesizeformat(limit)}."
            )
            if request.path.startswith("/api/"):
                return JsonResponse({"error": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return None
