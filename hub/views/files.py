"""Downloads: one file of a version, or the whole adapter folder as a streamed zip.

`file_response` and `archive_response` take a resolved version so that other front doors
(an API) can serve the same bytes with the same headers.
"""

from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.views.decorators.http import require_GET

from ..models import Adapter, AdapterVersion
from ..selectors import adapter_get_visible, version_resolve
from ..services.downloads import adapter_download_record
from ..services.storage import download_link
from ..services.stored_reads import blob_reader
from ..services.validation import WEIGHTS_FILE
from ..services.zips import zip_stream


def file_response(version: AdapterVersion, filename: str) -> HttpResponse:
    """The file's bytes, or a redirect (302) to the store when it serves large files itself
    (the same ETag and commit headers either way)."""
    item = version.files.select_related("blob").filter(filename=filename).first()
    if item is None:
        raise Http404("No such file in this revision")
    link = download_link(item.blob.storage_name, item.blob.size, filename)
    if link:
        response = HttpResponseRedirect(link)
    else:
        response = FileResponse(
            blob_reader(item.blob, now=True),
            as_attachment=True,
            filename=filename,
            content_type=_type(filename),
        )
        response["Content-Length"] = str(item.blob.size)
    response["ETag"] = f'"{item.blob.sha256}"'
    response["X-Repo-Commit"] = version.commit
    return response


def archive_response(version: AdapterVersion) -> StreamingHttpResponse:
    adapter = version.adapter
    items = list(version.files.select_related("blob"))
    folder = adapter.name
    # The first file is reached now: a store that is away is a 503, not a cut archive.
    first = blob_reader(items[0].blob, now=True) if items else None
    entries = (
        (f"{folder}/{i.filename}", i.blob.size, first if n == 0 else blob_reader(i.blob))
        for n, i in enumerate(items)
    )
    created = version.created.timetuple()[:6]
    response = StreamingHttpResponse(
        zip_stream(entries, date_time=created), content_type="application/zip"
    )
    filename = f"{adapter.name}-v{version.number}.zip"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Repo-Commit"] = version.commit
    return response


@require_GET
def adapter_resolve(request, owner, name, revision, filename):
    adapter, version = _visible_version(request, owner, name, revision)
    response = file_response(version, filename)
    if filename == WEIGHTS_FILE:
        adapter_download_record(adapter, request, filename)
    return response


@require_GET
def adapter_archive(request, owner, name, revision):
    adapter, version = _visible_version(request, owner, name, revision)
    adapter_download_record(adapter, request, "archive.zip")
    return archive_response(version)


def _visible_version(request, owner, name, revision) -> tuple[Adapter, AdapterVersion]:
    adapter = adapter_get_visible(request.user, owner, name)
    version = version_resolve(adapter, revision)
    if version is None:
        raise Http404("No such revision")
    return adapter, version


def _type(filename: str) -> str:
    if filename.endswith(".json"):
        return "application/json"
    if filename.endswith(".md"):
        return "text/markdown; charset=utf-8"
    return "application/octet-stream"
