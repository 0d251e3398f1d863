"""Owners' actions: create an adapter, upload a new version, edit, delete."""

import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ..forms import AdapterCreateForm, AdapterEditForm, AdapterVersionForm, form_status
from ..selectors import adapter_get_owned
from ..services.adapters import adapter_create, adapter_delete, adapter_update, adapter_upload
from ..services.quota import WriteRefused, write_count
from ..services.zips import files_from_upload
from ..uploads import upload_view

# Which form field a service error belongs to (the rest concern the files).
ERROR_FIELDS = {"exists": "name", "invalid_name": "name", "base_model": "base_model"}


@upload_view()
@login_required
@require_http_methods(["GET", "POST"])
def adapter_new(request):
    form = AdapterCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as workdir:
                adapter = adapter_create(
                    owner=request.user,
                    name=data["name"],
                    files=files_from_upload(data["files"], Path(workdir)),
                    description=data["description"],
                    task=data["task"],
                    license=data["license"],
                    private=data["private"],
                    tags=data["tags"],
                    base_model=data["base_model"],
                )
        except ValidationError as exc:
            form.add_error(ERROR_FIELDS.get(exc.code, "files"), exc)
        else:
            messages.success(request, f"Uploaded {adapter.full_name}.")
            return redirect(adapter)
    return render(request, "hub/adapter_new.html", {"form": form}, status=form_status(form))


def _owned(request, owner, name):
    adapter = adapter_get_owned(request.user, owner, name)
    if adapter.owner_id != request.user.pk:
        raise PermissionDenied("Only the owner can change this adapter.")
    return adapter


@upload_view(check=_owned)
@login_required
@require_http_methods(["GET", "POST"])
def adapter_new_version(request, owner, name):
    adapter = _owned(request, owner, name)
    form = AdapterVersionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as workdir:
                version = adapter_upload(
                    adapter=adapter,
                    files=files_from_upload(form.cleaned_data["files"], Path(workdir)),
                    user=request.user,
                    message=form.cleaned_data["message"],
                    keep_card=True,
                )
        except ValidationError as exc:
            form.add_error("files", exc)
        else:
            messages.success(request, f"Uploaded version {version.number} of {adapter.full_name}.")
            return redirect(adapter)
    context = {"form": form, "adapter": adapter}
    return render(request, "hub/adapter_new_version.html", context, status=form_status(form))


@login_required
@require_http_methods(["GET", "POST"])
def adapter_edit(request, owner, name):
    adapter = _owned(request, owner, name)
    initial = {
        "description": adapter.description,
        "task": adapter.task,
        "license": adapter.license,
        "tags": ", ".join(t.name for t in adapter.tags.all()),
        "private": adapter.private,
    }
    form = AdapterEditForm(request.POST or None, initial=initial)
    # An edit writes a card (rendered, reindexed): counted like an upload, before any work.
    # (Its one new file is a small README.md: a full account can still edit.)
    if request.method == "POST":
        try:
            write_count(request.user)
        except WriteRefused as refused:
            form.add_error(None, refused)
            context = {"form": form, "adapter": adapter}
            return render(request, "hub/adapter_edit.html", context, status=429)
    if request.method == "POST" and form.is_valid():
        adapter_update(adapter=adapter, user=request.user, **form.cleaned_data)
        messages.success(request, "Saved.")
        return redirect(adapter)
    context = {"form": form, "adapter": adapter}
    return render(request, "hub/adapter_edit.html", context, status=form_status(form))


@login_required
@require_http_methods(["GET", "POST"])
def adapter_remove(request, owner, name):
    adapter = _owned(request, owner, name)
    status = 200
    if request.method == "POST":
        if request.POST.get("confirm") != adapter.name:
            messages.error(request, "Type the adapter's name to confirm.")
            status = 400
        else:
            full_name = adapter.full_name
            adapter_delete(adapter=adapter)
            messages.success(request, f"Deleted {full_name}.")
            return redirect("hub:user_detail", owner=request.user.get_username())
    return render(request, "hub/adapter_delete.html", {"adapter": adapter}, status=status)
