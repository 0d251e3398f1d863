"""Import from / push to an upstream hub as jobs on the workers' fast lane, with progress.

The web request only records a Transfer and sends its id (and the token, which lives in
the task message only and is masked in its printed arguments); a worker runs
hfapi.upstream's import or push and writes progress lines and the outcome on the row. An
upstream that refuses or cannot be reached ends the transfer with a message.
"""

import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from hub.services.quota import write_allow

from .models import Transfer
from .upstream import UpstreamError, adapter_import, adapter_push

log = logging.getLogger(__name__)
Status = Transfer.Status
MAX_ACTIVE = 2  # transfers waiting or running per user
PROGRESS_SECONDS = 0.5
TASK = "hfapi.tasks.run_transfer"


def transfer_launch(*, user, kind: str, token: str = "", **fields) -> Transfer:
    """Record and queue an import (fields: repo_id=source, name) or a push (fields:
    version, repo_id, private). Raises ValidationError when the user has too many, or an
    import would pass the user's writes or storage (hub.services.quota)."""
    with transaction.atomic():
        active = Transfer.objects.select_for_update().filter(
            owner=user, status__in=[Status.QUEUED, Status.RUNNING]
        )
        if len(active) >= MAX_ACTIVE:
            raise ValidationError("Your earlier transfers are still running: wait for them.")
        if kind == Transfer.Kind.IMPORT:  # a write, with room for what imports may bring
            write_allow(user, imports=True)
        transfer = Transfer.objects.create(
            owner=user, kind=kind, endpoint=settings.LORAHUB_UPSTREAM_ENDPOINT, **fields
        )
        transaction.on_commit(lambda: _send(transfer, token))
    return transfer


def _send(transfer: Transfer, token: str) -> None:
    from composer.dispatch import task_send

    try:
        task_send(TASK, (transfer.pk,), kwargs={"token": token}, kwargsrepr="{'token': '***'}")
    except Exception:
        log.exception("transfer %s: could not be queued", transfer.pk)
        Transfer.objects.filter(pk=transfer.pk, status=Status.QUEUED).update(
            status=Status.FAILED,
            error="The job queue cannot be reached right now: try again in a minute.",
            finished_at=timezone.now(),
        )


def transfer_execute(transfer_id: int, token: str = "") -> str | None:
    """Run a transfer if this worker can claim it; its final status (None: not ours)."""
    claimed = Transfer.objects.filter(pk=transfer_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    transfer = Transfer.objects.select_related("owner", "version__adapter").get(pk=transfer_id)
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
                token=token,
                endpoint=transfer.endpoint,
                on_progress=progress,
            )
            fields = {"adapter": adapter, "progress": f"Imported as {adapter.full_name}"}
        else:
            url = adapter_push(
                version=transfer.version,
                repo_id=transfer.repo_id,
                token=token,
                private=transfer.private,
                endpoint=transfer.endpoint,
                on_progress=progress,
            )
            fields = {"url": url, "progress": f"Pushed to {transfer.repo_id}"}
        fields["status"] = Status.DONE
    except UpstreamError as error:
        fields = {"status": Status.FAILED, "error": str(error)}
    except Exception as error:
        log.exception("transfer %s failed", transfer.pk)
        fields = {"status": Status.FAILED, "error": f"Internal error ({type(error).__name__})."}
    Transfer.objects.filter(pk=transfer.pk).update(**fields, finished_at=timezone.now())
    return fields["status"]
