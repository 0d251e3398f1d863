"""Creating a job: the rows and the Celery message, sent only once the rows are committed."""

from django.db import transaction

from composer.dispatch import job_enqueue
from composer.example_sets import example_set_rows
from composer.lifecycle import job_check_limit
from composer.models import Job, JobInput
from composer.summary import job_default_name


def version_label(version) -> str:
    return f"{version.adapter.full_name} v{version.number}"


@transaction.atomic
def job_launch(
    *,
    owner,
    kind: str,
    versions,
    parameters: dict,
    base_model=None,
    weights=None,
    examples=(),
    heldout=(),
    name: str = "",
    example_sets=(),
) -> Job:
    """A QUEUED job over `versions` (in order); its message goes out after commit.
    `example_sets` (merges): one set, or one per input, stored as `examples` rows.
    Raises lifecycle.JobLimitReached when `owner` already has their most active jobs."""
    job_check_limit(owner)
    job = Job.objects.create(
        owner=owner,
        kind=kind,
        name=name.strip() or job_default_name(kind, versions, parameters),
        base_model=base_model,
        parameters=parameters,
        examples=[{"input": e.input, "output": e.output} for e in examples]
        + example_set_rows(example_sets),
        heldout=[{"input": e.input, "output": e.output} for e in heldout],
        budget=parameters.get("budget", 0),
    )
    JobInput.objects.bulk_create(
        JobInput(
            job=job,
            position=i,
            version=v,
            label=version_label(v),
            weight=weights[i] if weights else None,
        )
        for i, v in enumerate(versions)
    )
    job_enqueue(job)
    return job
