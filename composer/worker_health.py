"""A job worker's health: whether it has the disk and memory a job needs.

A worker with less free disk in COMPOSER_WORK_DIR than COMPOSER_MIN_FREE_DISK_BYTES, or
less available memory than COMPOSER_MIN_FREE_MEMORY_BYTES, declines jobs: it claims none,
notes on the job it was sent for why it waits, and sends the job's message again for
another worker, so one sick machine (a full disk fails fast, so it is always free first)
cannot fail everyone's queued jobs. Each look is written to its WorkerBeat row.
"""

import logging
import shutil
import socket
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from composer.models import Job, WorkerBeat

log = logging.getLogger(__name__)


def available_memory() -> int | None:
    """Bytes of memory the machine can give without swapping (Linux), else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def gigabytes(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def health() -> tuple[int, int | None, str]:
    """(free disk bytes, available memory bytes, problem: empty when healthy)."""
    work = Path(settings.COMPOSER_WORK_DIR)
    memory = available_memory()
    try:
        work.mkdir(parents=True, exist_ok=True)
        disk = shutil.disk_usage(work).free
    except OSError as error:  # a full disk may refuse even the folder
        return 0, memory, f"a work folder it cannot use ({error.strerror or error})"
    need_disk, need_memory = (
        settings.COMPOSER_MIN_FREE_DISK_BYTES,
        settings.COMPOSER_MIN_FREE_MEMORY_BYTES,
    )
    if disk < need_disk:
        return (
            disk,
            memory,
            (f"too little free disk ({gigabytes(disk)} free, a job needs {gigabytes(need_disk)})"),
        )
    if memory is not None and memory < need_memory:
        return (
            disk,
            memory,
            (
                f"too little free memory ({gigabytes(memory)} available, a job needs "
                f"{gigabytes(need_memory)})"
            ),
        )
    return disk, memory, ""


def health_beat() -> str:
    """Look at this worker's health and write it down; the problem ("" when healthy)."""
    disk, memory, problem = health()
    host = socket.gethostname()
    WorkerBeat.objects.update_or_create(
        name=f"{host}:{Path(settings.COMPOSER_WORK_DIR).resolve()}"[:600],
        defaults={
            "host": host,
            "beat_at": timezone.now(),
            "free_disk": disk,
            "free_memory": memory,
            "problem": problem,
        },
    )
    return problem


def job_decline(sent_for: int | None, problem: str) -> None:
    """Leave the job this message was sent for (or the queue's next) to another worker:
    say on it why it waits, send its message again, then pause so that a healthy worker
    takes that message rather than this one."""
    import time

    from composer.dispatch import job_send
    from composer.lifecycle import queue_order

    job_id = sent_for
    if not Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).exists():
        job_id = queue_order().values_list("pk", flat=True).first()
    if job_id is None:
        return
    note = f"Waiting: the worker on {socket.gethostname()} has {problem}; another worker takes it."
    Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(waiting=note[:300])
    log.warning("job %s: declined, this worker has %s", job_id, problem)
    job_send(job_id)
    time.sleep(settings.COMPOSER_DECLINE_PAUSE_SECONDS)
