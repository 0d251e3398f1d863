"""Run a job again, or open its launch form filled in ("clone and edit").

Both go through the job's launch form, so a rerun is checked like a new job (the adapters
still visible to the user, compatible, within the limits). The form takes adapters by their
catalog id: a rerun uses each adapter's current version."""

import json

from django.http import QueryDict

from composer.example_sets import example_sets_of
from composer.forms import weight_field
from composer.models import Job

# Parameters stored under another name than their form field.
FIELD_OF_PARAMETER = {Job.Kind.MERGE: {"method": "merge_method"}}


def jsonl(examples: list[dict]) -> str:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)


def job_form_initial(job: Job, form_class) -> dict:
    """The values of `form_class` that launch the same job again."""
    inputs = list(job.inputs.select_related("version"))
    initial = {
        "name": job.name,
        "adapters": [i.version.adapter_id for i in inputs if i.version],
    }
    renamed = FIELD_OF_PARAMETER.get(job.kind, {})
    for key, value in job.parameters.items():
        field = renamed.get(key, key)
        if field in form_class.base_fields:
            initial[field] = value
    if job.kind == Job.Kind.LORAHUB:
        initial |= {"candidates": "pick", "examples": jsonl(job.examples)}
        initial["heldout"] = jsonl(job.heldout)
    else:  # a merge's example sets: one, or one per input separated by a line ---
        sets = example_sets_of(job.examples)
        initial["examples"] = "---\n".join(
            jsonl([{"input": e.input, "output": e.output} for e in examples]) for examples in sets
        )
    if job.kind == Job.Kind.MERGE:
        for i in inputs:
            if i.version and i.weight is not None:
                initial[weight_field(i.version.adapter_id)] = i.weight
    return initial


def missing_inputs(job: Job) -> list[str]:
    """Inputs whose adapter version has left the catalog: a rerun goes without them."""
    return [i.label for i in job.inputs.all() if i.version_id is None]


def form_data(form_class, initial: dict) -> QueryDict:
    """`initial` as a browser would submit the form (the fields' defaults for the rest)."""
    data = QueryDict(mutable=True)
    defaults = {name: field.initial for name, field in form_class.base_fields.items()}
    for name, value in (defaults | initial).items():
        if value is None or value is False or value == "":
            continue
        if isinstance(value, list | tuple):
            data.setlist(name, [str(v) for v in value])
        else:
            data[name] = "on" if value is True else str(value)
    return data
