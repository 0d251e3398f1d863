"""Celery tasks (routed to the `gpu` queue by CELERY_TASK_ROUTES) and the worker's own
schedule. Thin: see execution.py (running a job) and dispatch.py (sending, re-sending)."""

import logging
import threading
import time
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutting_down
from django.conf import settings
from django.db import connections

from composer import shutdown
from composer.dispatch import jobs_maintain
from composer.execution import job_execute
from composer.short_jobs import short_jobs_settle
from composer.try_it import TASK as TRIAL_TASK
from composer.try_it import trial_execute
from composer.worker_health import health_beat

log = logging.getLogger(__name__)


@shared_task(name="composer.tasks.run_job", bind=True)
def run_job(self, job_id: int | None = None) -> str | None:
    """A turn for one queued job (`job_id` is the job it was sent for; the worker takes the
    next one in the queue's fair order). When the worker shuts down meanwhile, the job
    stops at its next step, its search saved for the next worker (composer/shutdown.py)."""
    with shutdown.sigterm_deferred():
        return job_execute(job_id, task_id=self.request.id or "")


@shared_task(
    name=TRIAL_TASK,
    soft_time_limit=settings.COMPOSER_TRY_TIME_LIMIT,
    time_limit=settings.COMPOSER_TRY_TIME_LIMIT + 10,
)
def run_trial(trial_id: int) -> str | None:
    """A "Try it" trial, on the fast lane (CELERY_TASK_ROUTES: COMPOSER_FAST_QUEUE). Its
    limits are this worker's COMPOSER_TRY_TIME_LIMIT (messages carry none)."""
    return trial_execute(trial_id)


def maintain_once() -> None:
    try:
        jobs_maintain()
        short_jobs_settle()
        health_beat()
    except Exception:  # the database or the broker may be briefly away; the next round retries
        log.exception("job maintenance failed")
    finally:
        # Close this thread's connections: none may be open when the pool forks a child.
        connections.close_all()


def sweep_once() -> None:
    from composer.result_saving import kept_results_sweep
    from composer.sweep import leftovers_sweep
    from hub.services.storage_sweep import StoreRefused

    try:
        kept_results_sweep()
        leftovers_sweep(timedelta(seconds=settings.COMPOSER_SWEEP_GRACE_SECONDS))
    except StoreRefused as refused:
        log.error("stored files were not swept: %s", refused)
    except Exception:
        log.exception("sweeping leftovers failed")
    finally:
        connections.close_all()


def _schedule_forever() -> None:
    """Every COMPOSER_MAINTENANCE_SECONDS: beat this worker's own heartbeat (its health),
    settle jobs of dead workers (on any host), re-send lost messages and settle short jobs
    no worker took or whose worker died; every COMPOSER_SWEEP_SECONDS: sweep leftovers
    (kept results no job waits for included)."""
    next_sweep = time.monotonic()
    while True:
        threading.Event().wait(settings.COMPOSER_MAINTENANCE_SECONDS)
        maintain_once()
        if time.monotonic() >= next_sweep:
            sweep_once()
            next_sweep = time.monotonic() + settings.COMPOSER_SWEEP_SECONDS


@worker_init.connect
def preload_engine(**kwargs) -> None:
    """Import torch, transformers and peft once in the parent: every forked child (a new one
    after a crash included) starts with them. Importing torch does not initialise CUDA."""
    import composer.engine.run  # noqa: F401


@worker_ready.connect
def maintain_when_worker_starts(**kwargs) -> None:
    """A worker that starts settles the jobs its predecessors left and sends what is unsent,
    then keeps doing so on its own schedule (no beat scheduler needed)."""
    maintain_once()
    threading.Thread(target=_schedule_forever, name="composer-maintenance", daemon=True).start()
    log.info("composer maintenance every %ss", settings.COMPOSER_MAINTENANCE_SECONDS)


@worker_process_init.connect
def stop_jobs_on_request(**kwargs) -> None:
    """A pool process stops its job when the main process is asked to stop."""
    shutdown.on_stop_signal()


@worker_shutting_down.connect
def forward_stop(**kwargs) -> None:
    """A shutdown (a restart, a deploy) waits for the running job: ask it to save its
    checkpoint and go back to the queue now, so the stop grace can be short."""
    shutdown.forward_to_children()
