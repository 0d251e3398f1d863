"""The Git LFS batch API with the basic transfer, as `huggingface_hub` uses it.

The batch answer hands out signed, short-lived upload and verify links: the client PUTs
the bytes without an Authorization header (as it would to S3), so the link itself names
the user and the object it may store.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from composer.engine import strict_json
from hub.services.quota import WriteRefused, quota_check, write_allow
from hub.uploads import body_chunks, body_limit

from . import staging
from .repos import get_repo
from .responses import ApiError, api_view, require_write

TICKET_SALT = "hfapi.lfs"
TICKET_MAX_AGE = 3600
LFS_JSON = "application/vnd.git-lfs+json"
MAX_BATCH_OBJECTS = 100
# Objects one user may have staged and not yet committed.
MAX_STAGED_OBJECTS = 2 * MAX_BATCH_OBJECTS


def _ticket(user_id: int, oid: str, size: int) -> str:
    return signing.dumps({"u": user_id, "o": oid, "s": size}, salt=TICKET_SALT, compress=True)


def _read_ticket(ticket: str) -> dict:
    try:
        return signing.loads(ticket, salt=TICKET_SALT, max_age=TICKET_MAX_AGE)
    except signing.BadSignature:
        raise ApiError(403, "This upload link is invalid or has expired") from None


def _object_answer(request, user, obj) -> dict:
    oid, size = obj.get("oid"), obj.get("size")
    if not (isinstance(oid, str) and staging.SHA256_RE.fullmatch(oid)) or not (
        isinstance(size, int) and not isinstance(size, bool) and size >= 0
    ):
        error = {"code": 422, "message": "Invalid oid or size"}
        return {"oid": str(oid)[:64], "size": 0, "error": error}
    if size > settings.LORAHUB_MAX_FILE_BYTES:
        message = f"File is larger than the {settings.LORAHUB_MAX_FILE_BYTES}-byte limit"
        return {"oid": oid, "size": size, "error": {"code": 422, "message": message}}
    answer = {"oid": oid, "size": size, "authenticated": True}
    if staging.is_staged(user.pk, oid, size):
        return answer  # no actions: the client skips the upload
    ticket = _ticket(user.pk, oid, size)
    answer["actions"] = {
        "upload": {
            "href": request.build_absolute_uri(reverse("hfapi:lfs_upload", args=[ticket])),
            "expires_in": TICKET_MAX_AGE,
        },
        "verify": {
            "href": request.build_absolute_uri(reverse("hfapi:lfs_verify", args=[ticket])),
            "expires_in": TICKET_MAX_AGE,
        },
    }
    return answer


def _count_batch(user, objects: list[dict]) -> None:
    """One write for the batch; the objects not staged yet must fit the user's quota, and
    the staged ones be at most MAX_STAGED_OBJECTS."""
    staged = staging.staged_sizes(user.pk)
    new = {
        o["oid"]: o["size"]
        for o in objects
        if isinstance(o.get("oid"), str)
        and isinstance(o.get("size"), int)
        and 0 <= o["size"] <= settings.LORAHUB_MAX_FILE_BYTES
        and staged.get(o["oid"]) != o["size"]
    }
    if len(staged) + len(new) > MAX_STAGED_OBJECTS:
        raise ApiError(
            400, f"At most {MAX_STAGED_OBJECTS} LFS objects may wait for a commit: commit first"
        )
    try:
        write_allow(user, sum(new.values()))
    except WriteRefused as refused:
        raise ApiError(refused.status, " ".join(refused.messages)) from None


@api_view(("POST",))
def batch(request, auth, owner, name):
    require_write(auth)
    get_repo(auth, owner, name, for_write=True)
    try:
        payload = strict_json.loads(request.body)
    except strict_json.JSONInputError as exc:
        raise ApiError(400, f"The LFS batch request is not acceptable JSON: {exc}") from None
    objects = payload.get("objects", []) if isinstance(payload, dict) else None
    if not (isinstance(objects, list) and all(isinstance(o, dict) for o in objects)):
        raise ApiError(400, "The LFS batch request must be an object with a list of objects")
    if len(objects) > MAX_BATCH_OBJECTS:
        raise ApiError(400, f"At most {MAX_BATCH_OBJECTS} objects per LFS batch request")
    if payload.get("operation") != "upload":
        raise ApiError(400, "Only the upload operation is supported; download through /resolve")
    transfers = payload.get("transfers") or ["basic"]
    if not isinstance(transfers, list) or "basic" not in transfers:
        raise ApiError(400, "Only the basic LFS transfer is supported")
    _count_batch(auth.user, objects)
    objects = [_object_answer(request, auth.user, obj) for obj in objects]
    return JsonResponse({"transfer": "basic", "objects": objects}, content_type=LFS_JSON)


@body_limit(None)  # the signed link's size, checked while the body streams in
@csrf_exempt  # authorised by the signed link, never by a cookie
def upload(request, ticket):
    if request.method != "PUT":
        return ApiError(405, "Upload with PUT").response()
    try:
        claim = _read_ticket(ticket)
        user_id, oid, size = claim["u"], claim["o"], claim["s"]
        if staging.is_staged(user_id, oid, size):
            # Stored already: a link used again must not rewrite it (nor count again).
            received = 0
            for chunk in body_chunks(request, staging.CHUNK):
                received += len(chunk)
                if received > size:
                    break
            return HttpResponse(status=200)
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            raise ApiError(403, "This upload link's user is gone")
        # The batch checked the quota; other uploads may have filled it since.
        quota_check(user, size, staged_except={oid})
        staging.stage_stream(user_id, oid, size, body_chunks(request, staging.CHUNK))
    except ApiError as error:
        return error.response()
    except WriteRefused as refused:
        return ApiError(refused.status, " ".join(refused.messages)).response()
    except staging.StagingError as error:
        return ApiError(400, f"LFS upload refused: {error}").response()
    return HttpResponse(status=200)


@api_view(("POST",))
def verify(request, auth, ticket):
    claim = _read_ticket(ticket)
    require_write(auth)
    if auth.user.pk != claim["u"]:
        raise ApiError(403, "This upload belongs to another user")
    if not staging.is_staged(claim["u"], claim["o"], claim["s"]):
        raise ApiError(404, "The LFS object was not uploaded", "EntryNotFound")
    return JsonResponse({"oid": claim["o"], "size": claim["s"]}, content_type=LFS_JSON)
