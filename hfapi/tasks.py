"""Celery task of imports and pushes (routed to the transfer lane by CELERY_TASK_ROUTES)."""

from celery import shared_task
from django.conf import settings

from .transfers import TASK, transfer_execute


@shared_task(
    name=TASK,
    soft_time_limit=settings.LORAHUB_TRANSFER_TIME_LIMIT,
    time_limit=settings.LORAHUB_TRANSFER_TIME_LIMIT + 30,
)
def run_transfer(transfer_id: int, token: str = "") -> str | None:
    """A turn for one queued transfer. `token` is ignored: messages sent before tokens moved
    to the transfer's row may still carry one."""
    return transfer_execute(transfer_id)
