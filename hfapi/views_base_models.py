"""Registered base models as model repositories: model_info, tree and resolve by identifier.

`AutoModelForCausalLM.from_pretrained("lorahub-tiny-llama")` with HF_ENDPOINT pointing here
asks for `/api/models/<id>` and `/<id>/resolve/<revision>/<file>`. An identifier has one
segment (`lorahub-tiny-llama`) or two (`org/model`); these routes come before the adapters'
and match only an identifier registered with files (`BaseModelId`), so a user can never
shadow, under an adapter of the same name, the weights that workers download. A base
model has one revision: "main" or its commit id.
"""

from django.conf import settings
from django.http import (
    FileResponse,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)

from hub.models import BaseModel, BaseModelFile
from hub.services.storage import download_link
from hub.services.stored_reads import blob_reader

from . import gitlfs
from .payloads import hub_time
from .repos import HEAD_NAMES
from .responses import api_view, entry_not_found, revision_not_found
from .views_resolve import byte_range, byte_slice, hub_headers

READ = ("GET", "HEAD")


class BaseModelId:
    """A URL converter for the identifier of a base model that has registered files."""

    regex = r"[A-Za-z0-9][\w.-]{0,95}(?:/[A-Za-z0-9][\w.-]{0,95})?"

    def to_python(self, value: str) -> BaseModel:
        base = BaseModel.objects.filter(identifier=value).exclude(commit="").first()
        if base is None:
            raise ValueError(value)  # not ours: the adapter routes below get their turn
        return base

    def to_url(self, value) -> str:
        return value.identifier if isinstance(value, BaseModel) else str(value)


def _files(base: BaseModel, revision: str) -> list[BaseModelFile]:
    if revision not in HEAD_NAMES and revision != base.commit:
        raise revision_not_found(revision)
    return list(base.files.select_related("blob"))


def model_document(base: BaseModel, files: list[BaseModelFile]) -> dict:
    author, _, _ = base.identifier.rpartition("/")
    return {
        "id": base.identifier,
        "modelId": base.identifier,
        "author": author or None,
        "sha": base.commit,
        "private": False,
        "gated": False,
        "disabled": False,
        "likes": 0,
        "downloads": 0,
        "library_name": "transformers",
        "tags": ["transformers", "safetensors"],
        "createdAt": hub_time(base.created),
        "lastModified": hub_time(base.created),
        "cardData": {"library_name": "transformers"},
        "siblings": [gitlfs.sibling(f.filename, f.blob.size, f.blob.sha256) for f in files],
        "usedStorage": sum(f.blob.size for f in files),
    }


@api_view(READ)
def model_info(request, auth, base, revision="main"):
    return JsonResponse(model_document(base, _files(base, revision)))


@api_view(READ)
def tree(request, auth, base, revision, subpath=""):
    prefix = subpath.strip("/") + "/" if subpath.strip("/") else ""
    entries, folders = [], set()
    recursive = request.GET.get("recursive", "").lower() in {"1", "true"}
    for f in _files(base, revision):
        if not f.filename.startswith(prefix):
            continue
        parts = f.filename[len(prefix) :].split("/")
        if len(parts) > 1:
            depth = len(parts) - 1 if recursive else 1
            folders.update(prefix + "/".join(parts[:i]) for i in range(1, depth + 1))
            if not recursive:
                continue
        entries.append(gitlfs.tree_entry(f.filename, f.blob.size, f.blob.sha256))
    if prefix and not entries and not folders:
        raise entry_not_found(subpath)
    listed = [
        {"type": "directory", "path": p, "oid": gitlfs.folder_id(p, base.commit)}
        for p in sorted(folders)
    ]
    return JsonResponse(listed + entries, safe=False)


@api_view(READ)
def resolve(request, auth, base, revision, filename):
    """The file's bytes with the Hub's headers; HEAD, and Range requests (206). A large file
    on a bucket is a redirect (302) to a short-lived link of the store, as an adapter's is."""
    files = {f.filename: f for f in _files(base, revision)}
    item = files.get(filename)
    if item is None:
        error = entry_not_found(filename).response()
        error["X-Repo-Commit"] = base.commit
        return error
    size = item.blob.size
    internal = request.get_host().rsplit(":", 1)[0] == settings.LORAHUB_INTERNAL_HOST
    link = download_link(item.blob.storage_name, size, filename.rsplit("/", 1)[-1], internal)
    if link:  # the store serves large files, and their ranges, itself
        response = HttpResponseRedirect(link)
        response["ETag"] = f'"{item.blob.sha256}"'
        response["X-Repo-Commit"] = base.commit
        hub_headers(response, item.blob.sha256, size)
        return response
    span = None
    if request.method == "GET" and request.headers.get("Range"):
        span = byte_range(request.headers["Range"], size)
        if span is None:
            refused = HttpResponse(status=416)
            refused["Content-Range"] = f"bytes */{size}"
            return refused
    if request.method == "HEAD":
        response = HttpResponse(status=200, content_type="application/octet-stream")
    elif span is None:
        response = FileResponse(
            blob_reader(item.blob, now=True), content_type="application/octet-stream"
        )
    else:
        first, last = span
        response = StreamingHttpResponse(
            byte_slice(blob_reader(item.blob), first, last),
            status=206,
            content_type="application/octet-stream",
        )
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        size = last - first + 1
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = f'attachment; filename="{filename.rsplit("/", 1)[-1]}"'
    response["ETag"] = f'"{item.blob.sha256}"'
    response["X-Repo-Commit"] = base.commit
    hub_headers(response, item.blob.sha256, item.blob.size)
    return response
