"""Import from / push to an upstream hub as short jobs on the workers' transfer lane, with
progress.

The web request records a Transfer (the upstream token with it: the broker's message
carries the id alone, so the token never sits in Redis) and sends its id; a worker on
LORAHUB_TRANSFER_QUEUE (its own worker, so Try it never waits behind a long import) runs
hfapi.upstream's import or push and writes progress lines and the outcome on the row; the
token is emptied when the transfer ends, however it ends. Queueing, turns, waits and
time-outs are the short jobs' lifecycle (composer.short_jobs): a lost message or a dead
worker fails the transfer after a wait and never blocks its owner. An upstream that
refuses or cannot be reached ends the transfer with a message.
"""

import logging
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from composer.short_jobs import (
    Lane,
    settled,
    short_claim_next,
    short_finish,
    short_heartbeat,
    short_reserve,
    short_send,
)
from hub.services.quota import write_allow

from .models import Transfer
from .upstream import UpstreamError, adapter_import, adapter_push

log = logging.getLogger(__name__)
Status = Transfer.Status
MAX_ACTIVE = 2  # transfers waiting or running per user
PROGRESS_SECONDS = 0.5
TASK = "hfapi.tasks.run_transfer"
TRANSFERS = Lane(
    model=Transfer,
    noun="transfer",
    nouns="transfers",
    wait_setting="LORAHUB_TRANSFER_WAIT_SECONDS",
    limit_setting="LORAHUB_TRANSFER_TIME_LIMIT",
    no_worker="imports and pushes",
    cleared={"token": ""},
    heartbeat=True,
)


def transfer_launch(*, user, kind: str, token: str = "", **fields) -> Transfer:
    """Record and queue an import (fields: repo_id=source, name) or a push (fields:
    version, repo_id, private). Raises ValidationError when the user has too many, or an
    import would pass the user's writes or storage (hub.services.quota)."""

    def create() -> Transfer:
        if kind == Transfer.Kind.IMPORT:  # a write, with room for what imports may bring
            write_allow(user, imports=True)
        return Transfer.objects.create(
            owner=user,
            kind=kind,
            endpoint=settings.LORAHUB_UPSTREAM_ENDPOINT,
            token=token,
            **fields,
        )

    with transaction.atomic():
        transfer = short_reserve(TRANSFERS, user, max_active=MAX_ACTIVE, create=create)
        transaction.on_commit(lambda: _send(transfer))
    return transfer


def _send(transfer: Transfer) -> None:
    from composer.dispatch import task_send

    short_send(TRANSFERS, transfer, lambda: task_send(TASK, (transfer.pk,)), log)


def transfer_settle(transfer: Transfer) -> Transfer:
    """Fail a transfer that no worker took in time, or whose worker went away."""
    return settled(TRANSFERS, transfer)


def transfer_execute(transfer_id: int) -> str | None:
    """A turn on the transfer lane: run the next transfer in fair order (the one
    `transfer_id` was sent for, or another user's); its final status (None: none left)."""
    claimed = short_claim_next(TRANSFERS)
    if claimed is None:
        return None
    transfer = Transfer.objects.select_related("owner", "version__adapter").get(pk=claimed.pk)
    with short_heartbeat(TRANSFERS, transfer.pk):
        fields = _outcome(transfer)
    short_finish(TRANSFERS, transfer.pk, **fields)
    return fields["status"]


def _outcome(transfer: Transfer) -> dict:
    """Run the transfer: the fields of its end (status, and a result or an error)."""
    last = 0.0

    def progress(text: str) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            Transfer.objects.filter(pk=transfer.pk).update(progress=text[:200])

    try:
        if transfer.kind == Transfer.Kind.IMPORT:
            adapter = adapter_import(
                user=transfer.owner,
                source=transfer.repo_id,
                name=transfer.name,
                token=transfer.token,
                endpoint=transfer.endpoint,
                on_progress=progress,
            )
            return {
                "status": Status.DONE,
                "adapter": adapter,
                "progress": f"Imported as {adapter.full_name}",
            }
        url = adapter_push(
            version=transfer.version,
            repo_id=transfer.repo_id,
            token=transfer.token,
            private=transfer.private,
            endpoint=transfer.endpoint,
            on_progress=progress,
        )
        return {"status": Status.DONE, "url": url, "progress": f"Pushed to {transfer.repo_id}"}
    except UpstreamError as error:
        return {"status": Status.FAILED, "error": str(error)}
    except SoftTimeLimitExceeded:
        limit = settings.LORAHUB_TRANSFER_TIME_LIMIT
        return {
            "status": Status.FAILED,
            "error": f"The transfer ran past its time limit ({limit} s).",
        }
    except Exception as error:
        log.exception("transfer %s failed", transfer.pk)
        return {"status": Status.FAILED, "error": f"Internal error ({type(error).__name__})."}
