"""Rows to plain objects: local directories of the adapter versions and base model a job uses.

Adapter files live in STORAGES["default"] (possibly a bucket on another machine), stored
once per sha256. The engine wants a PEFT directory: a job gets one per version in its own
scratch folder, linked to the worker's bounded cache of stored files (input_cache.py).
`version_dir` keeps one per version and machine under COMPOSER_WORK_DIR/adapters/<commit>/
for the web's checks (atomically: a finished directory is renamed into place, so a
half-copied one is never used).
"""

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from hub.services.repo_files import is_pickle
from hub.services.storage import blob_open


@dataclass(frozen=True)
class EngineInputs:
    base_dir: Path | None
    adapter_dirs: list[Path]
    weights: list[float] | None  # user weights of baseline merges, in input order


def version_dir(version) -> Path:
    """A local PEFT directory with the files of an AdapterVersion."""

    def fill(tmp: Path) -> None:
        for name, blob in flat_files(version):
            with blob_open(blob) as src, open(tmp / name, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1024 * 1024)

    return folder_once(Path(settings.COMPOSER_WORK_DIR) / "adapters" / version.commit, fill)


def folder_once(target: Path, fill) -> Path:
    """`target`, written by `fill(tmp)` into a temporary sibling then renamed into place
    (once per machine: a half-written folder is never seen, a concurrent writer wins)."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        fill(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process materialised it first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def flat_files(version):
    """The version's files that belong in a PEFT directory: top-level ones, pickles
    (training_args.bin...) left out, as nothing here may load them."""
    for f in version.files.select_related("blob"):
        name = Path(f.filename).name
        if name == f.filename and not name.startswith(".") and not is_pickle(name):
            yield name, f.blob


def version_into(version, folder: Path) -> Path:
    """`folder`, a new PEFT directory with the version's files from the input cache."""
    from composer.input_cache import link_blob

    folder.mkdir(parents=True)
    for name, blob in flat_files(version):
        link_blob(blob, folder / name)
    return folder


def base_dir(job, should_stop=None) -> Path | None:
    """The job's base model as a local folder, downloaded (the job's phase) if needed; a
    download that `should_stop()` interrupts is the engine's Cancelled."""
    from composer.base_model_fetch import Stopped, base_model_path, phase_reporter
    from composer.engine.lorahub import Cancelled

    if job.base_model is None or (job.kind != job.Kind.LORAHUB and not job.examples):
        return None  # merges work on the adapters alone, unless scored on examples
    try:
        return base_model_path(
            job.base_model, on_progress=phase_reporter(job), should_stop=should_stop
        )
    except Stopped:
        raise Cancelled() from None


def inputs_scratch(job_tmp: Path) -> Path:
    """Where a running job's input folders go inside its temporary folder."""
    return job_tmp / "inputs"


def input_dir(scratch: Path, position: int) -> Path:
    return scratch / f"input-{position}"


def inputs_named(message: str, job, scratch: Path) -> str:
    """An engine message with the job's input folders (full paths, or the bare folder names
    the engine calls adapters by) replaced by the inputs' labels, `owner/name vN`."""
    labels = [i.label for i in job.inputs.all()]
    for n, label in enumerate(labels):
        message = message.replace(str(input_dir(scratch, n)), label)
    return re.sub(
        r"\binput-(\d+)\b",
        lambda m: labels[int(m[1])] if int(m[1]) < len(labels) else m[0],
        message,
    )


def job_inputs(job, scratch: Path, should_stop=None) -> EngineInputs:
    """The job's inputs as local folders, its adapters under `scratch` (the job's own);
    `should_stop()` (read from a signal handler: no database) ends a base model's download."""
    inputs = list(job.inputs.select_related("version"))
    missing = [i.label for i in inputs if i.version is None]
    if missing:
        raise ValueError(f"Input adapter(s) no longer in the catalog: {', '.join(missing)}.")
    weights = [i.weight for i in inputs]
    return EngineInputs(
        base_dir=base_dir(job, should_stop),
        adapter_dirs=[version_into(i.version, input_dir(scratch, n)) for n, i in enumerate(inputs)],
        weights=weights if all(w is not None for w in weights) else None,
    )
