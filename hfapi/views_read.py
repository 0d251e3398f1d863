"""Read endpoints: whoami, list_models, model_info, list_repo_tree, commits and refs."""

from urllib.parse import urlencode

from django.http import JsonResponse

from . import gitlfs, listing
from .payloads import commit_document, model_document, security_status
from .repos import get_repo, head_commit, resolve_version, version_files
from .responses import ApiError, api_view, entry_not_found

READ = ("GET", "HEAD")


@api_view(READ)
def whoami(request, auth):
    if auth.user is None:
        raise ApiError(401, "Invalid credentials in Authorization header")
    user = auth.user
    return JsonResponse(
        {
            "type": "user",
            "id": str(user.pk),
            "name": user.get_username(),
            "fullname": user.get_full_name() or user.get_username(),
            "email": user.email or None,
            "emailVerified": bool(user.email),
            "orgs": [],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": auth.token.name, "role": auth.token.scope},
            },
        }
    )


@api_view(READ)
def model_list(request, auth):
    try:
        query = listing.ListQuery.from_params(request.GET)
    except listing.ListError as exc:
        raise ApiError(400, str(exc)) from None
    documents, has_more = listing.list_models(query, auth.user)
    response = JsonResponse(documents, safe=False)
    if has_more:
        params = [(k, v) for k, values in request.GET.lists() for v in values if k != "cursor"]
        params.append(("cursor", str(query.offset + query.page_size)))
        next_url = f"{request.build_absolute_uri(request.path)}?{urlencode(params)}"
        response["Link"] = f'<{next_url}>; rel="next"'
    return response


@api_view(READ)
def model_info(request, auth, owner, name, revision="main"):
    repo = get_repo(auth, owner, name)
    version = resolve_version(repo, revision)
    files = version_files(version)
    return JsonResponse(model_document(repo, version, files=files, viewer=auth.user))


@api_view(READ)
def tree(request, auth, owner, name, revision, subpath=""):
    repo = get_repo(auth, owner, name)
    version = resolve_version(repo, revision)
    recursive = request.GET.get("recursive", "").lower() in {"1", "true"}
    prefix = subpath.strip("/") + "/" if subpath.strip("/") else ""
    entries, folders = [], set()
    for f in version_files(version):
        if not f.filename.startswith(prefix):
            continue
        rest = f.filename[len(prefix) :]
        if "/" in rest:
            # Every folder on the way down is listed, like git's recursive tree.
            parts = rest.split("/")[:-1]
            depth = len(parts) if recursive else 1
            for i in range(1, depth + 1):
                folders.add(prefix + "/".join(parts[:i]))
            if not recursive:
                continue
        entry = gitlfs.tree_entry(f.filename, f.blob.size, f.blob.sha256)
        entries.append(entry | security_status(f.filename))
    if prefix and not entries and not folders:
        raise entry_not_found(subpath)
    commit = head_commit(version)
    listed = [
        {"type": "directory", "path": path, "oid": gitlfs.folder_id(path, commit)}
        for path in sorted(folders)
    ]
    return JsonResponse(listed + entries, safe=False)


@api_view(READ)
def commits(request, auth, owner, name, revision):
    repo = get_repo(auth, owner, name)
    version = resolve_version(repo, revision)
    if version is None:
        return JsonResponse([], safe=False)
    history = (
        repo.adapter.versions.filter(number__lte=version.number)
        .select_related("created_by")
        .order_by("-number")
    )
    return JsonResponse([commit_document(v, owner) for v in history], safe=False)


@api_view(READ)
def refs(request, auth, owner, name):
    repo = get_repo(auth, owner, name)
    head = resolve_version(repo, "main")
    main = {"name": "main", "ref": "refs/heads/main", "targetCommit": head_commit(head)}
    tags = []
    if repo.adapter is not None:
        tags = [
            {"name": f"v{v.number}", "ref": f"refs/tags/v{v.number}", "targetCommit": v.commit}
            for v in repo.adapter.versions.order_by("number")
        ]
    return JsonResponse({"branches": [main], "converts": [], "tags": tags})
