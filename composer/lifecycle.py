"""State changes of a job, top to bottom: launch limits, queue order, claim, heartbeat
holder checks, recovery from a dead worker, cancel, finish.

No Celery here: sending messages is composer/dispatch.py's job. Every transition is a
conditional UPDATE on the status (and, while running, on the attempt), so two processes
racing for the same job cannot both win:
- a job is claimed once (QUEUED -> RUNNING); a second message for it finds it taken;
- a RUNNING job whose worker died goes back to QUEUED (while attempts are left) or to
  FAILED with a reason the user can read, never stays "running" forever; one that died
  past its worker's hard time limit fails once with that reason;
- a worker asked to stop (a restart, a deploy) gives its job back to the queue
  (`job_release`), or is killed after its stop grace having said it was stopping: either
  way a restart, which does not use up an attempt (a LoraHub search resumes from its
  checkpoint), unlike a worker killed without warning (out of memory);
- a worker that lost its job (recovered by someone else) can no longer write to it.

The queue is fair between users: a message does not name the job a worker runs; the worker
claims the queued job whose owner has the fewest jobs running or ahead of it (round robin
between users, oldest first within a round), skipping owners who already have
COMPOSER_MAX_RUNNING_JOBS_PER_USER jobs running (their jobs stay queued), so one user's
queue cannot occupy every worker.
"""

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from composer.models import Job
from hub.services.storage_ledger import intents_settle

log = logging.getLogger(__name__)
Status = Job.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)


class JobLimitReached(Exception):
    """The user already has as many jobs queued or running as they may."""


def active_limit_message(user) -> str | None:
    """Why `user` may not launch another job now, or None."""
    limit = settings.COMPOSER_MAX_ACTIVE_JOBS_PER_USER
    active = Job.objects.filter(owner=user, status__in=ACTIVE).count()
    if active < limit:
        return None
    return (
        f"You have {active} jobs queued or running, the most allowed at once ({limit}). "
        "Launch this one when one of them has finished, or cancel one."
    )


def job_check_limit(user) -> None:
    """Raise JobLimitReached unless `user` may launch a job; call inside the transaction
    that creates it: the user's row stays locked until then, so two submits at once cannot
    both pass."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    message = active_limit_message(user)
    if message:
        raise JobLimitReached(message)


def queue_order():
    """QUEUED jobs in the order workers take them, each annotated with its `turn`.

    turn = the owner's running jobs + the job's rank among the owner's queued jobs, so one
    user's tenth job waits behind everyone else's first and second.
    """
    running = (
        Job.objects.filter(owner=OuterRef("owner"), status=Status.RUNNING)
        .values("owner")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rank = Window(
        RowNumber(), partition_by=[F("owner")], order_by=[F("queued_at").asc(), F("id").asc()]
    )
    return (
        Job.objects.filter(status=Status.QUEUED)
        .annotate(owner_running=Coalesce(Subquery(running, output_field=IntegerField()), Value(0)))
        .annotate(turn=F("owner_running") + rank)
        .order_by("turn", "queued_at", "id")
    )


def queue_position(job: Job, most: int = 1000) -> int | None:
    """1 for the next job a worker takes; None when the job is not queued, is held by its
    owner's running cap (its turn is past COMPOSER_MAX_RUNNING_JOBS_PER_USER: see
    held_by_cap) or has more than `most` jobs ahead of it (a bounded read)."""
    cap = settings.COMPOSER_MAX_RUNNING_JOBS_PER_USER
    ahead = queue_order().values_list("pk", "turn")[:most]
    for position, (pk, turn) in enumerate(ahead, start=1):
        if pk == job.pk:
            return position if turn <= cap else None
    return None


def running_count(owner_id: int) -> int:
    return Job.objects.filter(owner=owner_id, status=Status.RUNNING).count()


def held_by_cap(job: Job) -> dict | None:
    """When queued `job` cannot start before one of its owner's jobs ends: its owner's
    `running` jobs and those queued `earlier`, which start first, reach `cap`
    (COMPOSER_MAX_RUNNING_JOBS_PER_USER; the job's turn in queue_order is past it). Else None."""
    if job.status != Status.QUEUED:
        return None
    cap = settings.COMPOSER_MAX_RUNNING_JOBS_PER_USER
    running = running_count(job.owner_id)
    earlier = (
        Job.objects.filter(owner=job.owner_id, status=Status.QUEUED)
        .filter(Q(queued_at__lt=job.queued_at) | Q(queued_at=job.queued_at, pk__lt=job.pk))
        .count()
    )
    if running + earlier < cap:
        return None
    return {"running": running, "earlier": earlier, "cap": cap}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder_is_dead(job: Job, now=None) -> bool:
    """Whether the worker that holds a RUNNING job is gone.

    A stale heartbeat means dead wherever the worker ran; on the same host a vanished
    pid says so at once (a killed worker child, a worker restarted on this machine).
    """
    now = now or timezone.now()
    stale = timedelta(seconds=settings.COMPOSER_HEARTBEAT_STALE_SECONDS)
    if job.heartbeat_at is None or job.heartbeat_at < now - stale:
        return True
    return (
        job.worker_host == socket.gethostname()
        and job.worker_pid is not None
        and not pid_alive(job.worker_pid)
    )


def past_time_limit(job: Job, now) -> bool:
    """Whether the job ran longer than its worker's hard time limit (the worker killed it)."""
    if not job.time_limit or job.started_at is None:
        return False
    return now >= job.started_at + timedelta(seconds=job.time_limit)


def time_limit_message(seconds) -> str:
    return (
        f"The job ran past its time limit ({seconds:g} s on its worker) and was stopped. "
        "Launch it with a smaller budget, fewer adapters or fewer examples."
    )


def job_recover(job: Job) -> str | None:
    """Take a RUNNING job away from a dead worker: re-queue it or fail it.

    Returns the new status, or None when the job was not running or its worker is alive
    (or another process recovered it first).
    """
    now = timezone.now()
    if job.status != Status.RUNNING or not holder_is_dead(job, now):
        return None
    held = Job.objects.filter(
        pk=job.pk, status=Status.RUNNING, attempts=job.attempts, worker_pid=job.worker_pid
    )
    where = f"{job.worker_host or 'unknown host'}"
    max_attempts = settings.COMPOSER_JOB_MAX_ATTEMPTS
    if job.result_file:  # its result was stored before the worker stopped: never run again
        changed = held.update(status=Status.SUCCEEDED, finished_at=now, phase="")
        return Status.SUCCEEDED if changed else None
    if job.cancel_requested:
        changed = held.update(
            status=Status.CANCELLED,
            finished_at=now,
            checkpoint=None,
            error="Cancelled (the worker stopped before it could confirm).",
        )
        return Status.CANCELLED if changed else None
    if past_time_limit(job, now):
        changed = held.update(
            status=Status.FAILED,
            finished_at=now,
            error=time_limit_message(job.time_limit),
            checkpoint=None,
        )
        return Status.FAILED if changed else None
    if job.worker_stopping:  # asked to stop, then killed past its stop grace: a restart
        note = f"{_stamp(now)}: {_restart_note(job, where, job.step)}"
        changed = held.update(**_requeued(job, now, note), restarts=F("restarts") + 1)
        return Status.QUEUED if changed else None
    failed = job.attempts - job.restarts  # attempts that ended otherwise than by a restart
    if failed < max_attempts:
        note = (
            f"{_stamp(now)}: the worker on {where} stopped during attempt {failed} of "
            f"{max_attempts} without warning (killed: out of memory, or its machine was "
            f"lost); the job was queued again{_resumes(job)}."
        )
        changed = held.update(**_requeued(job, now, note))
        return Status.QUEUED if changed else None
    error = (
        f"The worker running this job stopped unexpectedly: it was killed without warning "
        f"(on {where}, attempt {failed} of {max_attempts}), most likely because it ran out "
        "of memory, or its machine was lost. The job was not retried again; you can launch "
        "it anew, with fewer adapters or examples if memory is the cause."
    )
    if job.restarts:
        error += (
            f" Before that, its worker was stopped {_times(job.restarts)} by a restart or "
            "deploy, which does not count as an attempt."
        )
    changed = held.update(status=Status.FAILED, finished_at=now, error=error, checkpoint=None)
    return Status.FAILED if changed else None


def job_release(job: Job, checkpoint: dict | None) -> str | None:
    """Give a RUNNING job back to the queue because its worker is stopping (a restart, a
    deploy), with its search's `checkpoint` to resume from; not counted as an attempt.
    Past the hard time limit it fails instead. The new status, or None when the job was no
    longer this attempt's."""
    now = timezone.now()
    if past_time_limit(job, now):
        error = time_limit_message(job.time_limit)
        return Status.FAILED if job_finish(job, Status.FAILED, error=error) else None
    if checkpoint is not None:
        job.checkpoint = checkpoint
    step = _checkpoint_step(job) or 0  # where it stopped: it saved every step made
    note = f"{_stamp(now)}: {_restart_note(job, job.worker_host or 'unknown host', step)}"
    fields = _requeued(job, now, note)
    changed = running(job).update(**fields, checkpoint=job.checkpoint, restarts=F("restarts") + 1)
    return Status.QUEUED if changed else None


def _stamp(now) -> str:
    return f"{now:%Y-%m-%d %H:%M:%S} UTC"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _checkpoint_step(job: Job) -> int | None:
    return job.checkpoint.get("step") if isinstance(job.checkpoint, dict) else None


def _resumes(job: Job) -> str:
    """How the next attempt goes on: from a checkpoint's step, or from the start."""
    step = _checkpoint_step(job)
    return f" and resumes from step {step}, its last checkpoint" if step else ""


def _restart_note(job: Job, where: str, step: int) -> str:
    return (
        f"the worker on {where} was stopped (restart or deploy) at step {step}; the job "
        f"was queued again{_resumes(job)} (a restart does not count as an attempt)."
    )


def _requeued(job: Job, now, note: str) -> dict:
    return {"status": Status.QUEUED, "queued_at": now, "sent_at": None, "notes": [*job.notes, note]}


def jobs_reap(queryset=None) -> dict[int, str]:
    """Recover every RUNNING job (of `queryset`) whose worker is gone. Re-queued jobs are
    left unsent (sent_at None) for dispatch.jobs_maintain to send."""
    queryset = Job.objects.all() if queryset is None else queryset
    outcome = {}
    for job in queryset.filter(status=Status.RUNNING):
        status = job_recover(job)
        if status is not None:
            outcome[job.pk] = status
            log.warning("job %s: worker gone, now %s", job.pk, status)
    return outcome


def jobs_to_send(queryset=None) -> tuple[list[int], list[int]]:
    """QUEUED jobs whose message may be gone, as (never sent, sent long ago): never sent
    (the broker was unreachable, or a re-queue), or sent longer than
    COMPOSER_QUEUED_STALE_SECONDS ago (a broker that lost its data). A duplicate message is
    harmless: a job is claimed once."""
    queryset = Job.objects.all() if queryset is None else queryset
    stale = timezone.now() - timedelta(seconds=settings.COMPOSER_QUEUED_STALE_SECONDS)
    batch = settings.COMPOSER_RESEND_BATCH
    queued = queryset.filter(status=Status.QUEUED).order_by("queued_at", "id")
    unsent = queued.filter(sent_at__isnull=True).values_list("pk", flat=True)[:batch]
    old = queued.filter(sent_at__lt=stale).values_list("pk", flat=True)[:batch]
    return list(unsent), list(old)


def job_mark_sent(job_id: int, task_id: str) -> None:
    Job.objects.filter(pk=job_id, status=Status.QUEUED).update(
        sent_at=timezone.now(), task_id=task_id
    )


def job_claim(job_id: int, *, device: str, task_id: str = "") -> Job | None:
    """Make this worker process the job's only runner, or return None (the job is running
    elsewhere, finished or cancelled, or its owner has their most jobs running at once)."""
    with transaction.atomic():
        owner = Job.objects.filter(pk=job_id, status=Status.QUEUED).values("owner").first()
        if owner is None:
            return None
        # The owner's row stays locked until the claim commits: two workers cannot both
        # take a user's last running slot.
        get_user_model().objects.select_for_update().filter(pk=owner["owner"]).first()
        if running_count(owner["owner"]) >= settings.COMPOSER_MAX_RUNNING_JOBS_PER_USER:
            return None
        claimed = _claim(job_id, device=device, task_id=task_id)
    return Job.objects.get(pk=job_id) if claimed else None


def _claim(job_id: int, *, device: str, task_id: str) -> int:
    now = timezone.now()
    return Job.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        worker_host=socket.gethostname(),
        worker_pid=os.getpid(),
        device=device,
        task_id=task_id,
        time_limit=settings.CELERY_TASK_TIME_LIMIT or None,
        worker_stopping=False,
        step=0,
        best_loss=None,
        history=[],
        weights=[],
        best_weights=[],
        error="",
        waiting="",
    )


def job_claim_next(*, device: str, task_id: str = "") -> Job | None:
    """Claim the first queued job in the fair order, of an owner below the running cap,
    that no other worker took first."""
    cap = settings.COMPOSER_MAX_RUNNING_JOBS_PER_USER
    claimable = queue_order().filter(owner_running__lt=cap)
    for job_id in claimable.values_list("pk", flat=True)[:50]:
        job = job_claim(job_id, device=device, task_id=task_id)
        if job is not None:
            return job
    return None


def job_request_cancel(job: Job) -> str:
    """Cancel a queued job at once; ask a running one to stop at its next step."""
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, cancel_requested=True, finished_at=now
    ):
        return Status.CANCELLED
    Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    if job.status == Status.RUNNING:
        job_recover(job)  # a dead worker cannot confirm: settle it here
        job.refresh_from_db()
    return job.status


def running(job: Job):
    """The rows of `job` as long as this attempt still holds it."""
    return Job.objects.filter(
        pk=job.pk, status=Status.RUNNING, attempts=job.attempts, worker_pid=job.worker_pid
    )


def job_finish(job: Job, status: str, **fields) -> bool:
    """End this attempt; False when the job was taken away from it meanwhile. A result file
    it names leaves the storage ledger in the same transaction; a finished job's checkpoint
    is dropped: nothing resumes it."""
    fields = {"checkpoint": None, **fields}
    with transaction.atomic():
        done = bool(running(job).update(status=status, finished_at=timezone.now(), **fields))
        if done and fields.get("result_file"):
            intents_settle([fields["result_file"]])
    return done
