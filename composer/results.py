"""Calling the engine for a job and keeping what it produced.

The result is a zip of the PEFT directory the engine wrote (adapter_config.json,
adapter_model.safetensors, result.json) plus a generated model card, stored through
STORAGES["default"] under jobs/<id>/. Unzipped, `PeftModel.from_pretrained` loads it.
"""

import logging
import time
import zipfile
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from composer.example_sets import example_sets_of
from composer.inputs import inputs_scratch, job_inputs
from composer.model_cache import process_model_cache
from composer.model_card import model_card
from composer.models import Job
from composer.progress import finite_json
from hub.services.storage import storage_discard
from hub.services.storage_ledger import intents_record, tombstones_write

RESULTS_DIR = "jobs"

log = logging.getLogger(__name__)


def job_run_engine(job: Job, monitor, device: str, tmp: Path) -> dict:
    """Run the engine for `job` in `tmp` and store its result (composer.result_saving);
    the fields to finish with. A result an earlier attempt kept on this disk is stored
    instead of computed again."""
    from composer.engine.lorahub import Cancelled
    from composer.result_saving import result_keep, result_kept, result_save

    def nap(seconds: float) -> None:  # between tries to store: a cancel ends the wait
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if monitor.should_stop():
                raise Cancelled()
            time.sleep(min(0.2, seconds))

    kept = result_kept(job)
    if kept is not None:
        log.info("job %s: storing the result an earlier attempt kept on this disk", job.pk)
        return result_save(job, kept, nap)
    fields = _run(job, monitor, device, tmp)
    monitor.flush()  # the progress kept with the result is the last step's
    zip_path = result_zip(job, tmp / "result", tmp / "result.zip")
    result_keep(job, zip_path, fields)
    return result_save(job, fields, nap)


def _run(job: Job, monitor, device: str, tmp: Path) -> dict:
    """The engine's run for `job`; the fields of its outcome (its output in tmp/result)."""
    from composer.engine import run
    from composer.engine.lorahub import Cancelled

    inputs = job_inputs(job, inputs_scratch(tmp), lambda: monitor.cancelled or monitor.lost)
    out_dir = tmp / "result"
    params = dict(job.parameters)
    if job.kind == Job.Kind.LORAHUB:
        from composer.engine.examples import Example
        from composer.engine.lorahub import LoraHubParams

        result = run.run_lorahub(
            inputs.base_dir,
            inputs.adapter_dirs,
            [Example(e["input"], e["output"]) for e in job.examples],
            out_dir,
            LoraHubParams(**params),
            on_step=monitor.on_step,
            should_stop=monitor.should_yield,  # a stopping worker: saved, resumed elsewhere
            on_checkpoint=monitor.on_checkpoint,
            resume=job.checkpoint,
            heldout=[Example(e["input"], e["output"]) for e in job.heldout] or None,
            device=device,
            model_cache=process_model_cache(),
            names=[i.label for i in job.inputs.all()],
        )
    else:
        check = None
        if job.examples:  # scored on examples: the base model, each parent and the merge
            check = run.MergeCheck(
                inputs.base_dir,
                example_sets_of(job.examples),
                device,
                model_cache=process_model_cache(),
            )
        if job.kind == Job.Kind.LEGO:
            from composer.engine.lego import LegoParams

            params = LegoParams(**params, device=device)
            result = run.run_lego(inputs.adapter_dirs, out_dir, params, check=check)
        else:
            method = params.pop("method")
            result = run.run_merge(
                method,
                inputs.adapter_dirs,
                out_dir,
                weights=inputs.weights,
                check=check,
                **params,
            )
    if monitor.should_stop():  # cancelled while the last step ran: keep nothing
        raise Cancelled()
    job.result = result
    fields = {"result": finite_json(result)}
    if job.kind != Job.Kind.LORAHUB:
        fields.update(step=1, budget=1)
    return fields


def result_store(job: Job, out_dir: Path, zip_path: Path) -> str:
    """Zip the engine's output directory (plus a model card) into storage; the stored name."""
    return result_upload(job, result_zip(job, out_dir, zip_path))


def result_upload(job: Job, zip_path: Path) -> str:
    """Write the zip at `zip_path` into storage as the job's result; the stored name."""
    # Committed in the ledger before the file is written; job_finish settles it.
    name = default_storage.get_available_name(f"{RESULTS_DIR}/{job.pk}/{result_filename(job)}")
    intents_record([name])
    with open(zip_path, "rb") as fh:
        written = default_storage.save(name, File(fh))
    if written != name:  # taken meanwhile
        intents_record([written])
    return written


def result_zip(job: Job, out_dir: Path, zip_path: Path) -> Path:
    """`zip_path`, the engine's output directory zipped with a model card."""
    labels = [i.label for i in job.inputs.all()]
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(out_dir.iterdir()):
            if path.is_file():
                zf.write(path, path.name)
        if not (out_dir / "README.md").exists():
            zf.writestr("README.md", model_card(job, labels))
    return zip_path


def result_filename(job: Job) -> str:
    return f"{job.kind}-job{job.pk}.zip"


def result_delete(name: str) -> None:
    """Delete a result stored for an attempt whose job never came to name it."""
    storage_discard([name])


def result_forget(sender, instance: Job, **kwargs) -> None:
    """A job about to be deleted leaves its result as garbage, deleted by the sweep after
    its grace period (read from its row: the instance may predate the result)."""
    tombstones_write(Job.objects.filter(pk=instance.pk).values_list("result_file", flat=True))
