"""Calling the engine for a job and keeping what it produced.

The result is a zip of the PEFT directory the engine wrote (adapter_config.json,
adapter_model.safetensors, result.json) plus a generated model card, stored through
STORAGES["default"] under jobs/<id>/. Unzipped, `PeftModel.from_pretrained` loads it.
"""

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


def job_run_engine(job: Job, monitor, device: str, tmp: Path) -> dict:
    """Run the engine for `job` in `tmp`; the fields to store on success."""
    from composer.engine import run
    from composer.engine.lorahub import Cancelled

    inputs = job_inputs(job, inputs_scratch(tmp))
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
    name = result_store(job, out_dir, tmp / "result.zip")
    fields = {"result": finite_json(result), "result_file": name}
    if job.kind != Job.Kind.LORAHUB:
        fields.update(step=1, budget=1)
    return fields


def result_store(job: Job, out_dir: Path, zip_path: Path) -> str:
    """Zip the engine's output directory (plus a model card) into storage; the stored name."""
    labels = [i.label for i in job.inputs.all()]
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(out_dir.iterdir()):
            if path.is_file():
                zf.write(path, path.name)
        if not (out_dir / "README.md").exists():
            zf.writestr("README.md", model_card(job, labels))
    with open(zip_path, "rb") as fh:
        return default_storage.save(f"jobs/{job.pk}/{result_filename(job)}", File(fh))


def result_filename(job: Job) -> str:
    return f"{job.kind}-job{job.pk}.zip"


def result_delete(name: str) -> None:
    default_storage.delete(name)
