"""Celery task of imports and pushes (routed to the fast lane by CELERY_TASK_ROUTES)."""

from celery import shared_task

from .transfers import TASK, transfer_execute


@shared_task(name=TASK, soft_time_limit=1800, time_limit=1830)
def run_transfer(transfer_id: int, token: str = "") -> str | None:
    return transfer_execute(transfer_id, token)
