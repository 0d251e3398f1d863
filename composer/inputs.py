"""Rows to plain objects: local directories of the adapter versions and base model a job uses.

Adapter files live in STORAGES["default"] (possibly a bucket on another machine), stored
once per sha256. The engine wants a PEFT directory, so each version is materialised once
per machine under COMPOSER_WORK_DIR/adapters/<commit>/ (atomically: a finished directory
is renamed into place, so a half-copied one is never used) and reused by later jobs.
"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from hub.services.storage import blob_open


@dataclass(frozen=True)
class EngineInputs:
    base_dir: Path | None
    adapter_dirs: list[Path]
    weights: list[float] | None  # user weights of baseline merges, in input order


def version_dir(version) -> Path:
    """A local PEFT directory with the files of an AdapterVersion."""
    root = Path(settings.COMPOSER_WORK_DIR) / "adapters"
    target = root / version.commit
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{version.commit}-"))
    try:
        for f in version.files.select_related("blob"):
            name = Path(f.filename).name
            if name != f.filename or name.startswith("."):
                continue  # the catalog stores flat names; anything else is not for the engine
            with blob_open(f.blob) as src, open(tmp / name, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1024 * 1024)
        try:
            tmp.rename(target)
        except OSError:  # another process materialised it first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def base_dir(job) -> Path | None:
    """The job's base model as a local folder, downloaded (the job's phase) if needed."""
    from composer.base_model_fetch import base_model_path, phase_reporter

    if job.base_model is None or job.kind != job.Kind.LORAHUB:
        return None  # merges work on the adapters alone
    return base_model_path(job.base_model, on_progress=phase_reporter(job))


def job_inputs(job) -> EngineInputs:
    inputs = list(job.inputs.select_related("version"))
    missing = [i.label for i in inputs if i.version is None]
    if missing:
        raise ValueError(f"Input adapter(s) no longer in the catalog: {', '.join(missing)}.")
    weights = [i.weight for i in inputs]
    return EngineInputs(
        base_dir=base_dir(job),
        adapter_dirs=[version_dir(i.version) for i in inputs],
        weights=weights if all(w is not None for w in weights) else None,
    )
