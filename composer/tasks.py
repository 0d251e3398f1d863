"""Celery tasks (routed to the `gpu` queue by CELERY_TASK_ROUTES). Thin: see execution.py."""

import logging
import threading

from celery import shared_task
from celery.signals import worker_init, worker_ready
from django.conf import settings
from django.db import connections

from composer.execution import job_execute
from composer.lifecycle import jobs_reap

log = logging.getLogger(__name__)


@shared_task(name="composer.tasks.run_job", bind=True)
def run_job(self, job_id: int) -> str | None:
    return job_execute(job_id, task_id=self.request.id or "")


def reap_once() -> None:
    try:
        jobs_reap()
    except Exception:  # the database may be briefly away; the next round retries
        log.exception("reaping orphaned jobs failed")
    finally:
        # Close this thread's connections: none may be open when the pool forks a child.
        connections.close_all()


def _reap_forever() -> None:
    while True:
        threading.Event().wait(settings.COMPOSER_HEARTBEAT_STALE_SECONDS)
        reap_once()


@worker_init.connect
def preload_engine(**kwargs) -> None:
    """Import torch, transformers and peft once in the parent: every forked child (a new one
    after a crash included) starts with them. Importing torch does not initialise CUDA."""
    import composer.engine.run  # noqa: F401


@worker_ready.connect
def reap_when_worker_starts(**kwargs) -> None:
    """A worker that starts settles the jobs its predecessors left running, then keeps
    checking every COMPOSER_HEARTBEAT_STALE_SECONDS (no beat scheduler needed)."""
    reap_once()
    threading.Thread(target=_reap_forever, name="composer-reaper", daemon=True).start()
