"""Pages: "Import from Hugging Face" and "Push to Hugging Face"."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters

from hub.selectors import adapter_get_owned

from .forms import ImportForm, PushForm
from .upstream import UpstreamError, adapter_import, adapter_push


@sensitive_post_parameters("token")
@login_required
def import_adapter(request):
    form = ImportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            adapter = adapter_import(user=request.user, **form.cleaned_data)
        except UpstreamError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Imported {adapter.full_name}.")
            return redirect(adapter)
    context = {
        "form": form,
        "upstream": settings.LORAHUB_UPSTREAM_ENDPOINT,
        "own_adapters": request.user.adapters.filter(current_version__isnull=False).order_by(
            "name"
        ),
    }
    return render(request, "hfapi/import.html", context)


@sensitive_post_parameters("token")
@login_required
def push_adapter(request, owner, name):
    adapter = adapter_get_owned(request.user, owner, name)
    if adapter.owner_id != request.user.pk:
        raise PermissionDenied("Only the owner can push this adapter.")
    form = PushForm(request.POST or None, initial={"repo_id": f"{owner}/{name}"})
    if request.method == "POST" and form.is_valid():
        try:
            url = adapter_push(version=adapter.current_version, **form.cleaned_data)
        except UpstreamError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Pushed to {url}")
            return redirect(adapter)
    context = {"form": form, "adapter": adapter, "upstream": settings.LORAHUB_UPSTREAM_ENDPOINT}
    return render(request, "hfapi/push.html", context)
