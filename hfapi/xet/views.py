"""The Xet token endpoints under the Hub API, and the CAS endpoints hf_xet calls.

Uploads: the client asks `xet-write-token`, sends each xorb and then one shard per batch
of files; the shard's files are rebuilt into staged LFS objects here, and the commit that
follows names them by sha256 as after an LFS upload. Downloads stay on /resolve: this hub
sends no `X-Xet-Hash`, so the client never asks for a reconstruction.
"""

from functools import wraps

from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from hub.services.quota import WriteRefused
from hub.uploads import body_chunks, body_limit

from ..repos import get_repo
from ..responses import ApiError, api_view, require_write
from . import access, shards, store, xorbs


def _token_answer(request, auth, owner, name, scope) -> JsonResponse:
    repo = get_repo(auth, owner, name, for_write=scope == access.WRITE)
    token, expires = access.issue(auth.user.pk, repo.repo_id, scope)
    cas_url = request.build_absolute_uri("/xet").rstrip("/")
    response = JsonResponse({"accessToken": token, "exp": expires, "casUrl": cas_url})
    # huggingface_hub reads the same three values from headers.
    response["X-Xet-Access-Token"] = token
    response["X-Xet-Token-Expiration"] = str(expires)
    response["X-Xet-Cas-Url"] = cas_url
    return response


@api_view(("GET", "POST"))
def write_token(request, auth, owner, name, revision):
    require_write(auth)
    return _token_answer(request, auth, owner, name, access.WRITE)


@api_view(("GET", "POST"))
def read_token(request, auth, owner, name, revision):
    if auth.user is None:
        raise ApiError(401, "Authentication required for Xet access")
    return _token_answer(request, auth, owner, name, access.READ)


def cas_view(methods: tuple[str, ...], scope: str):
    """A CAS endpoint: method check, Xet token, ApiError and WriteRefused answers as JSON."""

    def decorator(view):
        @csrf_exempt  # authorised by the Xet token in the Authorization header only
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise ApiError(405, f"Method {request.method} not allowed")
                user_id = access.holder(request, scope)
                return view(request, user_id, *args, **kwargs)
            except ApiError as error:
                return error.response()
            except WriteRefused as refused:
                return ApiError(refused.status, " ".join(refused.messages)).response()

        return wrapper

    return decorator


def _uploader(user_id: int):
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ApiError(403, "This Xet access token's user is gone")
    return user


@body_limit(xorbs.MAX_SERIALIZED_BYTES)
@cas_view(("POST",), access.WRITE)
def xorb_upload(request, user_id, prefix, xorb_hash):
    if prefix != "default":
        raise ApiError(400, "Xorbs are stored under the prefix 'default'")
    user = _uploader(user_id)
    try:
        inserted = store.receive_xorb(user, xorb_hash, body_chunks(request))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    except store.XetError as exc:
        raise ApiError(400, str(exc)) from None
    return JsonResponse({"was_inserted": inserted})


@body_limit(shards.MAX_SHARD_BYTES)
@cas_view(("POST",), access.WRITE)
def shard_upload(request, user_id):
    user = _uploader(user_id)
    try:
        files = shards.read_files(request)
        store.rebuild_files(user, files)
        for _ in body_chunks(request):  # the xorb section and lookup tables, not needed here
            pass
    except shards.ShardFormatError as exc:
        raise ApiError(400, f"shard refused: {exc}") from None
    except store.XetError as exc:
        raise ApiError(400, str(exc)) from None
    return JsonResponse({"result": 1})


@body_limit(shards.MAX_SHARD_BYTES)
@csrf_exempt
def shard_upload_v2(request):
    # The client falls back to /v1/shards on 501.
    for _ in body_chunks(request):
        pass
    return ApiError(501, "Upload shards to /v1/shards").response()


@cas_view(("GET",), access.READ)
def chunk_dedup(request, user_id, prefix, chunk_hash):
    # Global deduplication is not offered: the client then uploads every chunk it has not
    # deduplicated locally.
    raise ApiError(404, "Chunk not known to global deduplication")


@cas_view(("GET",), access.READ)
def reconstruction(request, user_id, file_hash, version="v1"):
    raise ApiError(404, "Reconstructions are not served: download the file through /resolve")


@body_limit(1024 * 1024)
@csrf_exempt
def telemetry(request):
    # The client sends transfer statistics and ignores the answer; none are kept.
    for _ in body_chunks(request):
        pass
    return JsonResponse({})
