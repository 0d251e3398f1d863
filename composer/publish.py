"""Publishing a job's result as a catalog adapter, with its lineage.

The files go through the catalog's own `adapter_create`, so a published adapter passes the
same validation as any upload. Lineage rows record the parents, their weights, the method
and parameters, and the job.
"""

import tempfile
import zipfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction

from composer.model_card import model_card
from composer.models import Job, Lineage
from hub.services.adapters import adapter_create
from hub.services.quota import WriteRefused, write_allow
from hub.services.stored_reads import stored_open
from hub.services.validation import ALLOWED_FILES, CARD_FILE


class PublishError(Exception):
    """The result cannot be published; the message says why."""


def lineage_weights(job: Job) -> list[float | None]:
    inputs = list(job.inputs.all())
    weights = (job.result or {}).get("weights")
    if job.kind == Job.Kind.LORAHUB and weights and len(weights) == len(inputs):
        return [float(w) for w in weights]
    return [i.weight for i in inputs]


def method_name(job: Job) -> str:
    if job.kind == Job.Kind.MERGE:
        return job.parameters.get("method", "merge")
    return job.kind


def job_publish(job: Job, *, name: str, private: bool = False, license: str = ""):
    """Create `owner/name` from the job's result; returns the new AdapterVersion."""
    if job.status != Job.Status.SUCCEEDED or not job.result_file:
        raise PublishError("Only the result of a succeeded job can be published.")
    if job.published_version_id:
        raise PublishError("This result is already published.")
    try:
        write_allow(job.owner)  # its bytes are checked against the quota when stored
    except WriteRefused as refused:
        raise PublishError(" ".join(refused.messages)) from None
    inputs = list(job.inputs.select_related("version"))
    with tempfile.TemporaryDirectory() as tmp:
        files = _extract(job, Path(tmp))
        card = model_card(job, [i.label for i in inputs], license=license, every_input=False)
        (Path(tmp) / CARD_FILE).write_text(card)
        files[CARD_FILE] = Path(tmp) / CARD_FILE
        with transaction.atomic():
            locked = Job.objects.select_for_update().get(pk=job.pk)
            if locked.published_version_id:
                raise PublishError("This result is already published.")
            try:
                adapter = adapter_create(
                    owner=job.owner,
                    name=name,
                    files=files,
                    private=private,
                    license=license,
                    base_model=job.base_model.identifier if job.base_model else "",
                    tags=["composed", method_name(job).replace("_", "-")],
                    message=f"Made by job #{job.pk} ({job.get_kind_display()})",
                )
            except ValidationError as exc:
                raise PublishError(" ".join(exc.messages)) from None
            version = adapter.current_version
            weights = lineage_weights(job)
            Lineage.objects.bulk_create(
                Lineage(
                    child=version,
                    parent=i.version,
                    parent_label=i.label,
                    position=i.position,
                    weight=weights[n],
                    method=method_name(job),
                    parameters=job.parameters,
                    job=job,
                )
                for n, i in enumerate(inputs)
            )
            Job.objects.filter(pk=job.pk).update(published_version=version)
    job.published_version = version
    return version


def _extract(job: Job, dest: Path) -> dict[str, Path]:
    """The adapter files of the stored result zip (our own archive: flat, known names)."""
    files = {}
    name = job.result_file.name
    with stored_open(name, default_storage.size(name)) as fh, zipfile.ZipFile(fh) as zf:
        for info in zf.infolist():
            if info.filename in ALLOWED_FILES and info.filename != CARD_FILE:
                target = dest / info.filename
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1024 * 1024):
                        out.write(chunk)
                files[info.filename] = target
    return files
