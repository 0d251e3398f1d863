"""Write endpoints: create and delete repositories, preupload, commit (write tokens only)."""

from contextlib import ExitStack
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import JsonResponse
from django.template.defaultfilters import filesizeformat

from composer.engine import strict_json
from hub.models import Adapter
from hub.services.adapters import ADAPTER_NAME, MAX_TAGS, adapter_delete
from hub.services.card_metadata import card_metadata
from hub.services.cards import card_check
from hub.services.namespaces import adapter_id_check
from hub.services.quota import WriteRefused, quota_check, write_allow
from hub.services.throttle import address_check
from hub.uploads import body_chunks, body_limit

from .commits import commit_apply, commit_read
from .models import RepoReservation
from .repos import HEAD_NAMES, get_repo, resolve_version, version_files
from .responses import ApiError, api_view, require_write

MAX_PREUPLOAD_FILES = 100


def _json(request) -> dict:
    try:
        data = strict_json.loads(request.body or b"{}")
    except strict_json.JSONInputError as exc:
        raise ApiError(400, f"The request body is not acceptable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return data


def _count_write(auth) -> None:
    try:
        write_allow(auth.user)
    except WriteRefused as refused:
        raise ApiError(refused.status, " ".join(refused.messages)) from None


def _site(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _repo_name(auth, data: dict) -> str:
    if data.get("type", "model") not in (None, "model"):
        raise ApiError(400, "This hub holds model repositories (adapters) only")
    organization = data.get("organization")
    if organization not in (None, "", auth.user.get_username()):
        raise ApiError(403, f"You can only create repositories under {auth.user.get_username()}")
    return str(data.get("name") or "")


def _on_main(revision: str, request) -> None:
    if request.GET.get("create_pr"):
        raise ApiError(400, "Pull requests are not supported: commit to main")
    if revision not in HEAD_NAMES:
        raise ApiError(400, f"Commits go to main (got revision {revision!r})")


# A README at the card limit, every character JSON-escaped (\uXXXX), and room for the rest.
VALIDATE_YAML_BODY = 6 * settings.LORAHUB_MAX_CARD_BYTES + 4096


@body_limit(VALIDATE_YAML_BODY)
@api_view(("POST",))
def validate_yaml(request, auth):
    """Check a README as the client does before committing it, with the limits an upload
    of that README applies (size, front matter parsed strictly, metadata values).

    Anyone may call it, so it is counted per client address before the body is read."""
    limit = settings.LORAHUB_VALIDATE_YAML_PER_MINUTE
    if not address_check(request, "validate_yaml", limit, timedelta(minutes=1)):
        raise ApiError(429, f"At most {limit} README checks a minute: please try again later")
    content = _json(request).get("content") or ""
    if not isinstance(content, str):
        raise ApiError(400, "content must be a string")
    errors = []
    try:
        card_check(content, name="The README")
        card_metadata(content, MAX_TAGS)
    except ValidationError as error:
        errors = [{"message": message} for message in error.messages]
    if not errors and content.startswith("---") and "\n---" not in content[3:]:
        errors.append({"message": "The metadata block has no closing '---'"})
    return JsonResponse({"errors": errors, "warnings": []}, status=400 if errors else 200)


@api_view(("POST",))
def repo_create(request, auth):
    require_write(auth)
    _count_write(auth)
    data = _json(request)
    name = _repo_name(auth, data)
    if not ADAPTER_NAME.fullmatch(name):
        raise ApiError(
            400,
            "Repository names use letters, digits, '.', '_' and '-', start with a letter or "
            "digit, and have at most 96 characters",
        )
    owner = auth.user.get_username()
    try:
        adapter_id_check(owner, name)
    except ValidationError as error:
        raise ApiError(403, " ".join(error.messages)) from None
    url = f"{_site(request)}/{owner}/{name}"
    private = data.get("visibility") == "private" or bool(data.get("private"))
    with transaction.atomic():
        exists = (
            Adapter.objects.filter(owner=auth.user, name=name).exists()
            or RepoReservation.objects.select_for_update()
            .filter(owner=auth.user, name=name)
            .exists()
        )
        if exists:
            raise ApiError(409, "You already created this model repo", url=url)
        RepoReservation.objects.create(owner=auth.user, name=name, private=private)
    return JsonResponse({"url": url, "name": f"{owner}/{name}", "id": f"{owner}/{name}"})


@api_view(("DELETE",))
def repo_delete(request, auth):
    require_write(auth)
    data = _json(request)
    name = _repo_name(auth, data)
    repo = get_repo(auth, auth.user.get_username(), name, for_write=True)
    if repo.adapter is not None:
        adapter_delete(adapter=repo.adapter)
    else:
        repo.reservation.delete()
    return JsonResponse({})


def _preupload_check(user, entries: list[dict], current: dict) -> None:
    """Refuse, before any transfer, a file over the size limit or a batch that cannot fit
    the user's quota: the client shows this answer's message, whereas a refusal during the
    Xet transfer reaches the user as a bare status. The transfers and the commit check
    again, exactly (by content); here a file the same size as the one at its path now
    counts as unchanged."""
    limit, incoming = settings.LORAHUB_MAX_FILE_BYTES, 0
    for entry in entries:
        size = entry.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            continue
        path = str(entry.get("path", ""))[:1000]
        if size > limit:
            raise ApiError(413, f"{path} is larger than the {filesizeformat(limit)} file limit")
        blob = current.get(path)
        if blob is None or blob.size != size:
            incoming += size
    try:
        quota_check(user, incoming)
    except WriteRefused as refused:
        raise ApiError(refused.status, " ".join(refused.messages)) from None


@api_view(("POST",))
def preupload(request, auth, owner, name, revision):
    """Tell the client which files go inline and which through Git LFS."""
    require_write(auth)
    repo = get_repo(auth, owner, name, for_write=True)
    _on_main(revision, request)
    current = {f.filename: f.blob for f in version_files(resolve_version(repo, "main"))}
    answers = []
    entries = _json(request).get("files", [])
    if not (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
        raise ApiError(400, "files must be a list of objects")
    if len(entries) > MAX_PREUPLOAD_FILES:
        raise ApiError(400, f"At most {MAX_PREUPLOAD_FILES} files per request")
    _preupload_check(auth.user, entries, current)
    for entry in entries:
        path, size = str(entry.get("path", ""))[:1000], entry.get("size")
        lfs = isinstance(size, int) and size > settings.LORAHUB_API_LFS_THRESHOLD
        blob = current.get(path)
        answers.append(
            {
                "path": path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": False,
                # For LFS files the client compares this with its sha256 and skips
                # unchanged ones; inline files are compared on the server.
                "oid": blob.sha256 if lfs and blob is not None else None,
            }
        )
    return JsonResponse({"files": answers})


def _lines(request):
    """The body's lines, read as a stream (an inline file can be larger than Django's
    in-memory limit) and bounded: one inline file's base64 plus some room for JSON."""
    limit = settings.LORAHUB_API_LFS_THRESHOLD * 4 // 3 + 64 * 1024
    while line := request.readline(limit + 1):
        if len(line) > limit:
            # Read the rest so the client, still sending, gets this answer (not a reset).
            for _ in body_chunks(request):
                pass
            raise ApiError(413, "A file sent inline is larger than the hub accepts: use Git LFS")
        yield line


@body_limit(None)  # read line by line, each line bounded (_lines)
@api_view(("POST",))
def commit(request, auth, owner, name, revision):
    require_write(auth)
    _count_write(auth)
    repo = get_repo(auth, owner, name, for_write=True)
    _on_main(revision, request)
    with ExitStack() as stack:
        plan = commit_read(_lines(request), stack)
        oid = commit_apply(repo, auth.user, plan, stack)
    site = _site(request)
    return JsonResponse(
        {
            "commitUrl": f"{site}/{repo.repo_id}/commit/{oid}",
            "commitOid": oid,
            "pullRequestUrl": None,
            "success": True,
        }
    )
