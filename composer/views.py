"""Job pages: launch forms, my jobs, a job page that follows the job live, cancel,
download and publish. Only the owner sees a job (404 for everyone else)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db.models import Count
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.views.decorators.http import require_POST

from composer.charts import FOLDED_MOST, loss_curve, weight_table
from composer.dispatch import jobs_maintain
from composer.forms import FORMS, PublishForm
from composer.lifecycle import (
    JobLimitReached,
    active_limit_message,
    held_by_cap,
    job_request_cancel,
    queue_position,
)
from composer.models import Job
from composer.publish import PublishError, job_publish
from composer.rerun import form_data, job_form_initial, missing_inputs
from composer.results import result_filename
from composer.summary import job_score, parameters_in_words
from hub.forms import form_status
from hub.services.storage import download_link
from hub.services.stored_reads import stored_open
from hub.uploads import body_limit


def owned_job(request, pk: int) -> Job:
    return get_object_or_404(Job.objects.select_related("base_model"), pk=pk, owner=request.user)


@login_required
def job_list(request):
    mine = Job.objects.filter(owner=request.user)
    jobs_maintain(mine, for_page=True)
    jobs = list(mine.annotate(n_inputs=Count("inputs"))[:200])
    for job in jobs:
        job.score = job_score(job)
    return render(request, "composer/job_list.html", {"jobs": jobs, "kinds": Job.Kind})


# Two example files (at most composer.engine.examples.MAX_FILE_BYTES, 20 MiB, each) and the
# fields; the engine module is not imported here (it imports torch).
@body_limit(44 * 1024 * 1024)
@login_required
def job_new(request, kind: str):
    form_class = FORMS.get(kind)
    if form_class is None:
        raise Http404("no such kind of job")
    if request.method == "POST":
        form = form_class(request.POST, request.FILES, user=request.user)
        # The limit first: a user at their limit costs no validation of adapters.
        refusal = active_limit_message(request.user)
        if refusal is None and form.is_valid():
            try:
                job = form.launch()
            except JobLimitReached as exc:
                refusal = str(exc)
            else:
                return launched(request, job)
        if refusal:  # the form comes back as it was filled in, unvalidated
            initial = {"adapters": request.POST.getlist("adapters")}
            initial |= {k: v for k, v in request.POST.items() if k != "adapters"}
            form = form_class(initial=initial, user=request.user)
            return render(
                request, "composer/job_new.html", new_context(form, kind, refusal), status=429
            )
    else:
        # A link may preset the adapters, the name and, for LoraHub, the examples (the
        # demo's do), or copy a job of the user's ("clone and edit").
        initial = {"adapters": request.GET.getlist("adapters")}
        initial |= {k: request.GET[k] for k in ("name", "examples", "heldout") if k in request.GET}
        source = request.GET.get("from", "")
        if source.isdecimal():
            job = owned_job(request, int(source))
            initial = job_form_initial(job, form_class)
            for label in missing_inputs(job):
                messages.warning(request, f"{label} is no longer in the catalog: left out.")
        form = form_class(initial=initial, user=request.user)
    return render(
        request, "composer/job_new.html", new_context(form, kind), status=form_status(form)
    )


def new_context(form, kind: str, refusal: str = "") -> dict:
    label = Job.Kind(kind).label
    return {"form": form, "kind": kind, "kind_label": label, "kinds": Job.Kind, "refusal": refusal}


def launched(request, job: Job):
    job.refresh_from_db()
    if job.sent_at is None and job.status == Job.Status.QUEUED:
        messages.warning(
            request,
            f"Job #{job.pk} is saved, but the job queue could not be reached just now; "
            "it is sent to the workers as soon as the queue is back, nothing to do.",
        )
    else:
        messages.success(request, f"Job #{job.pk} launched.")
    return redirect(job)


# Tables that other parts of the job page add (a LoraHub result against its candidates,
# the parents against a merge): each is shown under the status when its template exists.
JOB_TABLES = ("composer/_comparison.html", "composer/_merge_comparison.html")


def job_tables() -> list[str]:
    found = []
    for name in JOB_TABLES:
        try:
            get_template(name)
        except TemplateDoesNotExist:
            continue
        found.append(name)
    return found


def weights_title(job: Job) -> str:
    if job.kind != Job.Kind.LORAHUB:
        return "Weights"
    if job.status == Job.Status.SUCCEEDED:
        return "Weights (final)"
    return f"Best weights so far (step {job.step})" if job.step else "Weights"


def status_context(job: Job, publish_form=None) -> dict:
    inputs = list(job.inputs.select_related("version__adapter__owner"))
    labels = [i.label for i in inputs]
    result = job.result or {}
    # A finished job's result weights (a screened search may keep the screened winner over
    # the best mix it saw); the best so far while it runs.
    weights = result.get("weights") or job.best_weights or []
    if not weights and any(i.weight is not None for i in inputs):
        weights = [i.weight or 0.0 for i in inputs]
    links = [(i.label, i.version.adapter.get_absolute_url() if i.version else None) for i in inputs]
    searched = result.get("selected") or ()
    return {
        "job": job,
        "inputs": inputs,
        "inputs_listed": inputs[:FOLDED_MOST],
        "inputs_more": max(0, len(inputs) - FOLDED_MOST),
        "curve": loss_curve(job.history),
        "weights": weight_table(weights, links, result.get("screening"), searched),
        "weights_title": weights_title(job),
        "screened": job.kind == Job.Kind.LORAHUB and job.parameters.get("mode") != "reference",
        "score": job_score(job),
        "parameters": parameters_in_words(job),
        "job_tables": job_tables(),
        "evaluation": evaluation_rows(result),
        "predictions": prediction_rows(result.get("evaluation")),
        "merge_check": merge_check_table(result.get("merge_evaluation"), labels),
        "publish_form": publish_form or PublishForm(job=job),
        "queue_position": queue_position(job) if job.status == Job.Status.QUEUED else None,
        "held": held_by_cap(job),
    }


def evaluation_rows(result: dict) -> list[tuple[str, dict]]:
    """Held-out evaluation of the base model and of the result, for the table of jobs
    without a comparison (_comparison.html shows the same rows among its own)."""
    evaluation = result.get("evaluation")
    if not evaluation or result.get("comparison"):
        return []
    names = {"base": "Base model", "composed": "Result"}
    return [(label, evaluation[key]) for key, label in names.items() if key in evaluation]


def merge_check_table(evaluation: dict | None, labels: list[str]) -> dict | None:
    """A merge scored on examples: with one set, a row per model (base, each parent, the
    merge); with one set per input, a row per set (base, its parent, the merge)."""
    if not evaluation:
        return None
    sets = evaluation["sets"]

    def label(i: int) -> str:
        return labels[i] if i < len(labels) else f"input {i + 1}"

    if len(sets) == 1 and sets[0]["input"] is None:
        (s,) = sets
        rows = [("Base model", s["base"])]
        rows += [(label(p["input"]), p) for p in s["parents"]]
        rows.append(("Merged adapter", s["merged"]))
        return {"per_task": False, "n": s["n"], "rows": rows}
    rows = [
        {
            "label": label(s["input"]),
            "n": s["n"],
            "base": s["base"],
            "parent": s["parents"][0],
            "merged": s["merged"],
        }
        for s in sets
    ]
    return {"per_task": True, "rows": rows}


def prediction_rows(evaluation: dict | None) -> list[dict]:
    """The first held-out examples with what the base model and the result generated
    (the engine keeps the same first rows of both)."""
    if not evaluation or "composed" not in evaluation:
        return []
    composed = evaluation["composed"].get("predictions", [])
    base = evaluation.get("base", {}).get("predictions", [])
    return [{**row, "base": base[i] if i < len(base) else {}} for i, row in enumerate(composed)]


@login_required
def job_detail(request, pk: int):
    job = owned_job(request, pk)
    return render(request, "composer/job_detail.html", status_context(job))


@login_required
def job_status(request, pk: int):
    """The live part of the job page, polled by htmx until the job is finished."""
    job = owned_job(request, pk)
    if job.status in (Job.Status.RUNNING, Job.Status.QUEUED):
        jobs_maintain(Job.objects.filter(pk=job.pk), for_page=True)
        job.refresh_from_db()
    context = {**status_context(job), "oob": job.is_finished}
    return render(request, "composer/_status.html", context)


@login_required
@require_POST
def job_again(request, pk: int):
    """Launch the same job again; when it no longer validates, its form shows why."""
    job = owned_job(request, pk)
    form_class = FORMS[job.kind]
    clone_url = reverse("composer:new", args=[job.kind]) + f"?from={job.pk}"
    if missing_inputs(job):
        return redirect(clone_url)
    form = form_class(form_data(form_class, job_form_initial(job, form_class)), user=request.user)
    if not form.is_valid():
        messages.error(request, "This job cannot run again as it was: " + form_errors(form))
        return redirect(clone_url)
    try:
        return launched(request, form.launch())
    except JobLimitReached as exc:
        messages.error(request, str(exc))
        return redirect(job)


def form_errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


@login_required
@require_POST
def job_cancel(request, pk: int):
    job = owned_job(request, pk)
    # A running job says "Cancelling…" in its polled status, which drops it once the
    # worker has stopped; a message above the page would stay.
    if job_request_cancel(job) == Job.Status.CANCELLED:
        messages.info(request, "The job is cancelled.")
    return redirect(job)


@login_required
def job_download(request, pk: int):
    job = owned_job(request, pk)
    if job.status != Job.Status.SUCCEEDED or not job.result_file:
        raise Http404("this job has no result")
    name = job.result_file.name
    size = default_storage.size(name)
    link = download_link(name, size, result_filename(job))
    if link:
        return HttpResponseRedirect(link)
    return FileResponse(
        stored_open(name, size),
        as_attachment=True,
        filename=result_filename(job),
        content_type="application/zip",
    )


@login_required
@require_POST
def job_publish_view(request, pk: int):
    job = owned_job(request, pk)
    form = PublishForm(request.POST, job=job)
    if form.is_valid():
        try:
            version = job_publish(job, **form.cleaned_data)
        except PublishError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Published as {version.adapter.full_name}.")
            return redirect(version.adapter)
    return render(request, "composer/job_detail.html", status_context(job, form), status=400)
