"""Try it: an input through the base model alone and with an adapter, side by side.

A trial is a short job on the workers' fast lane (the COMPOSER_FAST_QUEUE queue, served by
its own worker, so it never waits behind a long composition). It reuses the worker's
cached base models (composer.base_model_fetch, composer.model_cache). Each user has at
most COMPOSER_TRY_MAX_ACTIVE trials waiting or running and COMPOSER_TRY_PER_HOUR an hour.
A trial that no worker takes within COMPOSER_TRY_WAIT_SECONDS, or that runs past the
fast lane's time limit, is settled as failed with a message when its page is polled.
"""

import logging
import re
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from composer.engine.adapters import CONFIG_NAME, WEIGHTS_NAME
from composer.models import Job, Trial

log = logging.getLogger(__name__)
Status = Trial.Status
# A model card's example rows: | `input` | `output` |
CARD_EXAMPLE = re.compile(r"^\|\s*`([^`\n]{1,200})`\s*\|\s*`([^`\n]{0,200})`\s*\|", re.MULTILINE)
MAX_EXAMPLES = 5
TASK = "composer.fast.run_trial"


def try_examples(*, version=None, job=None) -> list[dict]:
    """Up to MAX_EXAMPLES {"input", "output"} to pick from: a job's few-shot examples, or
    the rows of the model card's example tables."""
    if job is not None:
        return [{"input": e["input"], "output": e["output"]} for e in job.examples[:MAX_EXAMPLES]]
    card = version.adapter.description if version is not None else ""
    rows = CARD_EXAMPLE.findall(card[:20000])
    return [{"input": i, "output": o} for i, o in rows if i.strip() != "input"][:MAX_EXAMPLES]


def trial_base_model(*, version=None, job=None):
    return version.adapter.base_model if version is not None else job.base_model


def trial_launch(*, user, text: str, version=None, job=None) -> Trial:
    """Queue a trial of `version` (a catalog adapter version) or `job` (a finished job's
    result) on `text`. Raises ValidationError with a message for the user."""
    if not text.strip():
        raise ValidationError("Type an input, or pick one of the examples.")
    if "\x00" in text:  # PostgreSQL refuses it in text: a 500 otherwise
        raise ValidationError("An input cannot hold a NUL character (\\u0000).")
    limit = settings.COMPOSER_TRY_MAX_CHARS
    if len(text) > limit:
        raise ValidationError(f"Inputs have at most {limit} characters (this one: {len(text)}).")
    base = trial_base_model(version=version, job=job)
    if base is None or not (base.commit or base.local_path):
        name = base.identifier if base is not None else "of this adapter"
        raise ValidationError(
            f"No worker has the base model {name}: its files are not registered on this hub."
        )
    now = timezone.now()
    with transaction.atomic():
        # One launch per user at a time, so two requests cannot both pass the limits.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        mine = Trial.objects.filter(owner=user)
        active = mine.filter(status__in=[Status.QUEUED, Status.RUNNING])
        if active.filter(created_at__gte=now - _settle_after()).count() >= (
            settings.COMPOSER_TRY_MAX_ACTIVE
        ):
            raise ValidationError(
                "Your earlier tries are still running: wait for them to end.", code="throttled"
            )
        per_hour = settings.COMPOSER_TRY_PER_HOUR
        if mine.filter(created_at__gte=now - timedelta(hours=1)).count() >= per_hour:
            raise ValidationError(
                f"At most {per_hour} tries an hour: try again later.", code="throttled"
            )
        trial = Trial.objects.create(
            owner=user, version=version, job=job, base_model=base, text=text
        )
        transaction.on_commit(lambda: _send(trial))
    return trial


def _send(trial: Trial) -> None:
    from composer.dispatch import task_send

    try:
        task_send(TASK, (trial.pk,))
    except Exception:  # the broker is unreachable: say so instead of waiting forever
        log.exception("trial %s: could not be queued", trial.pk)
        Trial.objects.filter(pk=trial.pk, status=Status.QUEUED).update(
            status=Status.FAILED,
            error="The job queue cannot be reached right now: try again in a minute.",
            finished_at=timezone.now(),
        )


def _settle_after() -> timedelta:
    return timedelta(
        seconds=settings.COMPOSER_TRY_WAIT_SECONDS + settings.COMPOSER_TRY_TIME_LIMIT + 30
    )


def trial_settle(trial: Trial) -> Trial:
    """Fail a trial that no worker took in time, or whose worker went away."""
    now = timezone.now()
    wait = settings.COMPOSER_TRY_WAIT_SECONDS
    waited = Trial.objects.filter(
        pk=trial.pk, status=Status.QUEUED, created_at__lt=now - timedelta(seconds=wait)
    ).update(
        status=Status.FAILED,
        finished_at=now,
        error=f"No worker took this try within {wait} s: no worker serves the fast lane "
        "right now. Try again later.",
    )
    stopped = Trial.objects.filter(
        pk=trial.pk,
        status=Status.RUNNING,
        started_at__lt=now - timedelta(seconds=settings.COMPOSER_TRY_TIME_LIMIT + 30),
    ).update(status=Status.FAILED, finished_at=now, error="The worker running this try stopped.")
    if waited or stopped:
        trial.refresh_from_db()
    return trial


def trial_execute(trial_id: int) -> str | None:
    """Run a trial if this worker can claim it; its final status (None: not ours)."""
    claimed = Trial.objects.filter(pk=trial_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    trial = Trial.objects.select_related("base_model", "version", "job").get(pk=trial_id)
    try:
        fields = {"status": Status.DONE, **_run(trial)}
    except SoftTimeLimitExceeded:
        limit = settings.COMPOSER_TRY_TIME_LIMIT
        fields = {"status": Status.FAILED, "error": f"The try ran past its time limit ({limit} s)."}
    except ValueError as exc:  # the engine's and the fetch's messages are meant for the user
        fields = {"status": Status.FAILED, "error": str(exc)}
    except Exception as exc:
        log.exception("trial %s failed", trial.pk)
        fields = {"status": Status.FAILED, "error": f"Internal error ({type(exc).__name__})."}
    Trial.objects.filter(pk=trial.pk, status=Status.RUNNING).update(
        **fields, finished_at=timezone.now()
    )
    return fields["status"]


def _run(trial: Trial) -> dict:
    from composer.base_model_fetch import base_model_path
    from composer.device import pick_device
    from composer.engine.run import run_try
    from composer.model_cache import process_model_cache

    base_dir = base_model_path(trial.base_model)
    separator = trial.job.parameters.get("separator", "") if trial.job is not None else ""
    with trial_adapter(trial) as adapter_dir:
        out = run_try(
            base_dir,
            adapter_dir,
            trial.text,
            device=pick_device(),
            model_cache=process_model_cache(),
            separator=separator,
            max_new_tokens=settings.COMPOSER_TRY_MAX_NEW_TOKENS,
        )
    return {"base_output": out["base"], "adapter_output": out["adapter"]}


@contextmanager
def trial_adapter(trial: Trial):
    """The trial's adapter as a local PEFT folder of its own (removed afterwards; a worker
    killed mid-trial leaves it to the sweep): links to the worker's bounded input cache,
    which holds a catalog version's files or the unpacked files of a job's result."""
    from composer.inputs import version_into

    root = Path(settings.COMPOSER_WORK_DIR) / "jobs"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f"trial-{trial.pk}-") as tmp:
        folder = Path(tmp) / "adapter"
        if trial.version is None:
            yield result_into(trial.job, folder)
        else:
            yield version_into(trial.version, folder)


def result_into(job: Job, folder: Path) -> Path:
    """`folder`, a new PEFT directory with the files of a finished job's result."""
    from composer.input_cache import link_cached

    if job.status != Job.Status.SUCCEEDED or not job.result_file:
        raise ValueError(f"Job #{job.pk} has no result to try.")
    folder.mkdir(parents=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        link_cached(lambda name=name: cached_result_file(job, name), folder / name)
    return folder


def cached_result_file(job: Job, name: str) -> Path:
    """The cached copy of one file of a job's stored result zip, unpacked now if need be."""
    from composer.input_cache import CHUNK, cache_lookup, cache_store

    key = f"job-{job.pk}-{name}"
    found = cache_lookup(key)
    if found is not None:
        return found
    with default_storage.open(job.result_file.name, "rb") as fh, zipfile.ZipFile(fh) as zf:
        with zf.open(name) as src:
            size = zf.getinfo(name).file_size
            return cache_store(key, size, lambda dst: shutil.copyfileobj(src, dst, CHUNK))
