"""Try it: an input through the base model alone and with an adapter, side by side.

A trial is a short job on the workers' fast lane (the COMPOSER_FAST_QUEUE queue, served by
its own worker, so it never waits behind a long composition). It reuses the worker's
cached base models (composer.base_model_fetch, composer.model_cache). Each user has at
most COMPOSER_TRY_MAX_ACTIVE trials waiting or running and COMPOSER_TRY_PER_HOUR an hour;
the fast lane takes users in turn, and a try whose adapter work (parameters x tokens) is
past COMPOSER_TRY_MAX_WORK is refused before it is queued. Queueing, turns, waits and
time-outs are the short jobs' lifecycle (composer.short_jobs).
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
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from composer.engine.adapters import CONFIG_NAME, WEIGHTS_NAME
from composer.models import Job, Trial
from composer.short_jobs import (
    Lane,
    settled,
    short_claim_next,
    short_finish,
    short_reserve,
    short_send,
)

log = logging.getLogger(__name__)
Status = Trial.Status
# A model card's example rows: | `input` | `output` |
CARD_EXAMPLE = re.compile(r"^\|\s*`([^`\n]{1,200})`\s*\|\s*`([^`\n]{0,200})`\s*\|", re.MULTILINE)
MAX_EXAMPLES = 5
TASK = "composer.fast.run_trial"
TRIALS = Lane(
    model=Trial,
    noun="try",
    nouns="tries",
    wait_setting="COMPOSER_TRY_WAIT_SECONDS",
    limit_setting="COMPOSER_TRY_TIME_LIMIT",
    no_worker="the fast lane",
)


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
    _check_cost(text, version=version, job=job)
    now = timezone.now()
    with transaction.atomic():
        per_hour = settings.COMPOSER_TRY_PER_HOUR

        def create() -> Trial:
            recent = Trial.objects.filter(owner=user, created_at__gte=now - timedelta(hours=1))
            if recent.count() >= per_hour:
                raise ValidationError(
                    f"At most {per_hour} tries an hour: try again later.", code="throttled"
                )
            return Trial.objects.create(
                owner=user, version=version, job=job, base_model=base, text=text
            )

        trial = short_reserve(
            TRIALS, user, max_active=settings.COMPOSER_TRY_MAX_ACTIVE, create=create
        )
        transaction.on_commit(lambda: _send(trial))
    return trial


def _check_cost(text: str, *, version=None, job=None) -> None:
    """Refuse a try whose adapter work (its parameters x the tokens it sees) is past
    COMPOSER_TRY_MAX_WORK: a huge rank would hold the fast lane and its memory."""
    if version is not None:
        params = version.param_count
    else:  # a result holds at most its inputs' parameters (concatenating methods: their sum)
        params = job.inputs.aggregate(n=Sum("version__param_count"))["n"] or 0
    message = cost_refusal(text, params)
    if message:
        raise ValidationError(message, code="too_costly")


def cost_refusal(text: str, params: int) -> str:
    """Why a try of an adapter of `params` parameters on `text` costs too much ("": it
    does not)."""
    work = params * try_tokens(text)
    bound = settings.COMPOSER_TRY_MAX_WORK
    if work > bound:
        return (
            f"This adapter is too large to try here: {params:,} parameters on up to "
            f"{try_tokens(text)} tokens is {work:.2g} parameter-tokens of work, more than "
            f"the {bound:.2g} a try may cost. Download it and run it on your own machine."
        )
    return ""


def try_tokens(text: str) -> int:
    """At most how many tokens a try runs through the adapter: the input's UTF-8 bytes
    (byte-level and byte-fallback tokenizers make no more tokens than bytes), a few special
    tokens and the output's length."""
    return len(text.encode()) + 2 + settings.COMPOSER_TRY_MAX_NEW_TOKENS


def _send(trial: Trial) -> None:
    from composer.dispatch import task_send

    short_send(TRIALS, trial, lambda: task_send(TASK, (trial.pk,)), log)


def trial_settle(trial: Trial) -> Trial:
    """Fail a trial that no worker took in time, or whose worker went away."""
    return settled(TRIALS, trial)


def trial_execute(trial_id: int) -> str | None:
    """A turn on the fast lane: run the next trial in fair order (the one `trial_id` was
    sent for, or another user's); its final status (None: nothing left to run)."""
    trial = short_claim_next(TRIALS)
    if trial is None:
        return None
    trial = Trial.objects.select_related("base_model", "version", "job").get(pk=trial.pk)
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
    short_finish(TRIALS, trial.pk, **fields)
    return fields["status"]


def _run(trial: Trial) -> dict:
    from composer.base_model_fetch import base_model_path
    from composer.device import pick_device
    from composer.engine.run import run_try
    from composer.model_cache import process_model_cache

    base_dir = base_model_path(trial.base_model)
    separator = trial.job.parameters.get("separator", "") if trial.job is not None else ""
    with trial_adapter(trial) as adapter_dir:
        # The web bounded the work by the catalog's counts; the files decide here.
        refusal = cost_refusal(trial.text, adapter_params(adapter_dir))
        if refusal:
            raise ValueError(refusal)
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


def adapter_params(folder: Path) -> int:
    """The parameters an adapter folder's weights declare (their header alone is read)."""
    from hub.services.safetensors_header import read_safetensors_header
    from hub.services.validation import MAX_HEADER_BYTES

    path = folder / WEIGHTS_NAME
    with open(path, "rb") as fh:
        tensors = read_safetensors_header(
            fh, path.stat().st_size, filename=WEIGHTS_NAME, max_header_bytes=MAX_HEADER_BYTES
        )
    return sum(t.numel for t in tensors.values())


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
