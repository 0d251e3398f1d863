"""Pages: "Import from Hugging Face" and "Push to Hugging Face" (both run as jobs on a
worker, see transfers.py), and a transfer's page that follows it."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters

from hub.forms import form_status
from hub.selectors import adapter_get_owned

from .forms import ImportForm, PushForm
from .models import Transfer
from .transfers import transfer_launch, transfer_settle
from .upstream import REPO_ID, UpstreamError, parse_source


@sensitive_post_parameters("token")
@login_required
def import_adapter(request):
    form = ImportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            parse_source(data["source"])  # a bad id is said now, not by a failed job
            transfer = transfer_launch(
                user=request.user,
                kind=Transfer.Kind.IMPORT,
                token=data["token"],
                repo_id=data["source"].strip(),
                name=data["name"].strip(),
            )
        except UpstreamError as error:
            form.add_error("source", str(error))
        except ValidationError as error:
            form.add_error(None, " ".join(error.messages))
        else:
            return redirect("hfapi:transfer", transfer.pk)
    context = {
        "form": form,
        "upstream": settings.LORAHUB_UPSTREAM_ENDPOINT,
        "own_adapters": request.user.adapters.filter(current_version__isnull=False).order_by(
            "name"
        ),
    }
    return render(request, "hfapi/import.html", context, status=form_status(form))


@sensitive_post_parameters("token")
@login_required
def push_adapter(request, owner, name):
    adapter = adapter_get_owned(request.user, owner, name)
    if adapter.owner_id != request.user.pk:
        raise PermissionDenied("Only the owner can push this adapter.")
    form = PushForm(request.POST or None, initial={"repo_id": f"{owner}/{name}"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if not REPO_ID.fullmatch(data["repo_id"]):
            form.add_error("repo_id", f"{data['repo_id']!r} is not a repository id: owner/name")
        else:
            try:
                transfer = transfer_launch(
                    user=request.user,
                    kind=Transfer.Kind.PUSH,
                    token=data["token"],
                    version=adapter.current_version,
                    repo_id=data["repo_id"],
                    private=data["private"],
                )
            except ValidationError as error:
                form.add_error(None, " ".join(error.messages))
            else:
                return redirect("hfapi:transfer", transfer.pk)
    context = {"form": form, "adapter": adapter, "upstream": settings.LORAHUB_UPSTREAM_ENDPOINT}
    return render(request, "hfapi/push.html", context, status=form_status(form))


@login_required
def transfer_detail(request, pk: int):
    transfer = transfer_settle(
        get_object_or_404(
            Transfer.objects.select_related("adapter__owner", "version__adapter"),
            pk=pk,
            owner=request.user,
        )
    )
    template = "hfapi/_transfer.html" if request.headers.get("HX-Request") else None
    return render(request, template or "hfapi/transfer.html", {"transfer": transfer})
