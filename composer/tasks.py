"""Celery tasks (routed to the `gpu` queue by CELERY_TASK_ROUTES). Thin: see execution.py."""

from celery import shared_task
from celery.signals import worker_ready
from django.db import connections

from composer.execution import job_execute
from composer.lifecycle import jobs_reap


@shared_task(name="composer.tasks.run_job", bind=True)
def run_job(self, job_id: int) -> str | None:
    return job_execute(job_id, task_id=self.request.id or "")


@worker_ready.connect
def reap_when_worker_starts(**kwargs) -> None:
    """A worker that (re)starts settles the jobs that died with its predecessors."""
    try:
        jobs_reap()
    finally:
        connections.close_all()  # the parent's connection must not leak into forked children
