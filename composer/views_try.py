"""Try it: launch a trial from the box on adapter and job pages, and follow it (htmx)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from composer.models import Job, Trial
from composer.try_it import trial_launch, trial_settle
from hub.models import AdapterVersion
from hub.selectors import adapters_visible


@require_POST
@login_required
def trial_new(request):
    version = job = None
    if request.POST.get("job", "").isdecimal():
        job = get_object_or_404(
            Job, pk=int(request.POST["job"]), owner=request.user, status=Job.Status.SUCCEEDED
        )
    elif request.POST.get("version", "").isdecimal():
        version = get_object_or_404(
            AdapterVersion.objects.select_related("adapter__base_model"),
            pk=int(request.POST["version"]),
            adapter__in=adapters_visible(request.user),
        )
    else:
        return _refused(request, "Nothing to try.")
    try:
        trial = trial_launch(
            user=request.user, text=request.POST.get("text", ""), version=version, job=job
        )
    except ValidationError as error:
        status = 429 if error.code == "throttled" else 400
        return _refused(request, " ".join(error.messages), status)
    if request.headers.get("HX-Request"):
        return render(request, "composer/_trial.html", {"trial": trial})
    return redirect("composer:trial", trial.pk)


@login_required
def trial_detail(request, pk: int):
    trial = trial_settle(get_object_or_404(Trial, pk=pk, owner=request.user))
    if request.headers.get("HX-Request"):
        return render(request, "composer/_trial.html", {"trial": trial})
    return render(request, "composer/trial_detail.html", {"trial": trial})


def _refused(request, message: str, status: int = 400):
    # htmx swaps these answers into the page too (base.html's htmx-config).
    return render(request, "composer/_trial.html", {"error": message}, status=status)
