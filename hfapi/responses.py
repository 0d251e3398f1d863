"""JSON answers and errors shaped like the Hugging Face Hub's.

The client maps errors by the `X-Error-Code` header (RepoNotFound, RevisionNotFound,
EntryNotFound) and shows `X-Error-Message` and the body's `error` to the user.
"""

from functools import wraps

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .tokens import InvalidToken, authenticate


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra

    def response(self) -> JsonResponse:
        response = JsonResponse({"error": self.message, **self.extra}, status=self.status)
        # Header values must be one line of latin-1.
        response["X-Error-Message"] = (
            self.message.splitlines()[0].encode("latin-1", "replace").decode("latin-1")
        )
        if self.code:
            response["X-Error-Code"] = self.code
        return response


def repo_not_found() -> ApiError:
    # The same answer for a missing repository and for someone else's private one, so a
    # private adapter's existence does not leak. (The Hub says 401 to anonymous callers;
    # the client maps both by X-Error-Code, and this site answers 404 to everyone.)
    return ApiError(404, "Repository not found", "RepoNotFound")


def revision_not_found(revision: str) -> ApiError:
    return ApiError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


def entry_not_found(path: str) -> ApiError:
    return ApiError(404, f"Entry not found: {path}", "EntryNotFound")


def api_view(methods: tuple[str, ...]):
    """Decorate a Hub API view: method check, bearer authentication, ApiError answers.

    CSRF: the views are exempt from CsrfViewMiddleware because `authenticate` reads
    only the Authorization header and never the session cookie. A cross-site page can
    make a browser send cookies but cannot set that header, so a forged request acts
    anonymously and every write refuses it; a session never authorises an API write.
    """

    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return ApiError(405, f"Method {request.method} not allowed").response()
            try:
                auth = authenticate(request)
            except InvalidToken:
                return ApiError(401, "Invalid credentials in Authorization header").response()
            try:
                return view(request, auth, *args, **kwargs)
            except ApiError as error:
                return error.response()

        return wrapper

    return decorator


def require_write(auth) -> None:
    if auth.user is None:
        raise ApiError(401, "Authentication required: send a write token as a Bearer token")
    if not auth.can_write:
        raise ApiError(403, "This token is read-only; create a write token in your settings")
