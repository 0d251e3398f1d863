"""Sending work to the workers: the one module that sends messages to the broker.

Every message (jobs, trials, imports and pushes) goes out by task name through `task_send`,
so it carries none of the sender's time limits: the limits are the worker's own. The queue
comes from CELERY_TASK_ROUTES by task name (trials and transfers: the fast lane).

A message is a turn for one queued job: the worker that receives it claims the next job in
the queue's fair order (composer.lifecycle.job_claim_next), or none when every queued job's
owner is at the running cap; so when a job ends, its owner's next queued job gets a turn.

A job's row is the source of truth and its message is disposable. Whatever loses messages
(a broker unreachable at submit, a Redis restarted without its data, a re-queue after a dead
worker) leaves the job QUEUED with an old or empty `sent_at`, and `jobs_maintain`, run by
every worker on its own schedule, sends it again.
"""

import logging
import time

from celery import current_app
from django.conf import settings
from django.db import transaction
from kombu.exceptions import ChannelError

from composer.lifecycle import job_mark_sent, jobs_reap, jobs_to_send
from composer.models import Job

log = logging.getLogger(__name__)
TASK = "composer.tasks.run_job"
# Until when this process leaves the broker alone on pages' behalf: a frozen broker holds
# each call for its socket timeout, and job pages poll every few seconds.
_away_until = 0.0


def broker_away() -> bool:
    """Whether a call to the broker failed in this process in the last
    COMPOSER_BROKER_PAUSE_SECONDS."""
    return time.monotonic() < _away_until


def _broker_failed() -> None:
    global _away_until
    _away_until = time.monotonic() + settings.COMPOSER_BROKER_PAUSE_SECONDS


def task_send(name: str, args: tuple, **options):
    """Send one message for the task `name`, once (the broker's socket timeouts bound it);
    raises what the broker raises."""
    return current_app.send_task(name, args, retry=False, **options)


def job_send(job_id: int) -> bool:
    """Send one message for the job; False when the broker could not be reached (the job
    stays QUEUED and unsent; a later `jobs_maintain` sends it)."""
    try:
        result = task_send(TASK, (job_id,))  # one try: the re-send is the retry
    except Exception:
        log.warning("job %s: the broker could not be reached; sent later", job_id, exc_info=True)
        _broker_failed()
        return False
    job_mark_sent(job_id, result.id)
    return True


def job_enqueue(job) -> None:
    """Send the job's message once the transaction that created the job has committed."""
    transaction.on_commit(lambda: job_send(job.pk))


def job_turn_for_owner(owner_id: int) -> None:
    """A job of this owner ended: their oldest queued job gets a turn if the broker holds
    fewer messages than jobs wait (the running cap may have left it queued when its own
    message came, and that turn was used up)."""
    waiting = Job.objects.filter(owner=owner_id, status=Job.Status.QUEUED)
    job_id = waiting.order_by("queued_at", "id").values_list("pk", flat=True).first()
    if job_id is not None and messages_short():
        job_send(job_id)


def messages_waiting() -> int | None:
    """How many messages wait in the jobs' queue on the broker; None when unknown."""
    try:
        queue = current_app.amqp.router.route({}, TASK)["queue"].name
        with current_app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # Redis keeps no empty lists: a queue without messages is "not found"
        return 0
    except Exception:
        log.warning("could not count the queue's messages", exc_info=True)
        _broker_failed()
        return None


def messages_short() -> bool:
    """Whether the broker holds fewer messages than jobs wait (True when it cannot say)."""
    waiting = messages_waiting()
    return waiting is None or waiting < Job.objects.filter(status=Job.Status.QUEUED).count()


def jobs_maintain(queryset=None, *, for_page=False) -> dict:
    """Settle jobs of dead workers, then send every queued job whose message may be gone:
    never sent, or sent long ago while the broker holds fewer messages than jobs wait (so
    a long queue that is intact gets no duplicates). Stops sending at the first failure
    (the broker is away: the next round retries). `for_page`: on a page's behalf, which
    sends nothing while the broker is away (broker_away), so that polling pages cannot
    hold every web process for the broker's timeouts; the workers' rounds still send."""
    reaped = jobs_reap(queryset)
    if for_page and broker_away():
        return {"reaped": reaped, "sent": []}
    unsent, stale = jobs_to_send(queryset)
    if stale and not messages_short():
        stale = []
    sent = []
    for job_id in unsent + stale:
        if not job_send(job_id):
            break
        sent.append(job_id)
    if sent:
        log.info("sent again: jobs %s", sent)
    return {"reaped": reaped, "sent": sent}
