"""Short jobs (Try it trials, Import/Push transfers): one lifecycle for every lane.

A short job is a row with an owner, a status (queued -> running -> done | failed) and its
times; its message is disposable. Each kind of short job has a Lane: its model, its queue's
wait and time limit. The rules, the same for all of them:
- launch: the owner's rows are settled first, then at most `max_active` of theirs may wait
  or run; the message goes out once the row is committed, and a broker that cannot be
  reached fails the row at once with a message;
- a message is a turn, not a name: the worker claims the lane's next queued row in fair
  order (the owner's running rows plus the row's rank among the owner's queued ones, then
  the owner served longest ago first), so a user's row waits behind one row of each other
  user at most, however many they queue;
- settle: a running row past its time limit and a grace, or one of a lane with heartbeats
  whose heartbeat is older than COMPOSER_HEARTBEAT_STALE_SECONDS (its worker died), is
  failed, and so is a queued row older than the wait while the lane has done nothing for
  that long (its message was lost, or no worker serves the lane). Pages settle the rows
  they show, launches the owner's rows, workers every row on their schedule: a lost
  message or a dead worker never blocks a user.
"""

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

log = logging.getLogger(__name__)
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
ACTIVE = (QUEUED, RUNNING)
# A worker past its soft limit still writes its outcome: give it that long before settling.
GRACE_SECONDS = 30
LANES: list["Lane"] = []


@dataclass(frozen=True)
class Lane:
    model: type  # fields: owner, status, error, created_at, started_at, finished_at
    noun: str  # "try", "transfer": what the messages call one row
    nouns: str  # "tries", "transfers"
    wait_setting: str  # seconds a queued row may wait while the lane does nothing
    limit_setting: str  # seconds a row may run (the worker's soft time limit)
    no_worker: str  # who serves the lane, for the message: "the fast lane"
    cleared: dict = field(default_factory=dict)  # fields emptied when a row ends
    # Rows with a `heartbeat_at` the worker renews while it runs one (long rows: a dead
    # worker is noticed in minutes, not at the end of the time limit).
    heartbeat: bool = False

    def __post_init__(self):
        LANES.append(self)

    @property
    def wait(self) -> int:
        return getattr(settings, self.wait_setting)

    @property
    def time_limit(self) -> int:
        return getattr(settings, self.limit_setting)


def short_reserve(lane: Lane, user, *, max_active: int, create: Callable[[], object]):
    """`create()` the user's new row if they have fewer than `max_active` waiting or running
    (after settling theirs); raises ValidationError(code="throttled") otherwise. Call inside
    the launch's transaction: the owner's row stays locked, so two launches cannot both
    pass the limit."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    mine = lane.model.objects.filter(owner=user)
    short_settle(lane, mine)
    if mine.filter(status__in=ACTIVE).count() >= max_active:
        raise ValidationError(
            f"Your earlier {lane.nouns} are still running: wait for one to end "
            f"(at most {max_active} at once).",
            code="throttled",
        )
    return create()


def short_send(lane: Lane, row, send: Callable[[], object], log) -> None:
    """Send the row's message; a broker that cannot be reached fails the row now."""
    try:
        send()
    except Exception:
        log.exception("%s %s: could not be queued", lane.noun, row.pk)
        lane.model.objects.filter(pk=row.pk, status=QUEUED).update(
            status=FAILED,
            error="The job queue cannot be reached right now: try again in a minute.",
            finished_at=timezone.now(),
            **lane.cleared,
        )


def queue_order(lane: Lane):
    """The lane's queued rows in the order workers take them (see the module's docstring)."""
    model = lane.model
    running = (
        model.objects.filter(owner=OuterRef("owner"), status=RUNNING)
        .values("owner")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last_start = (
        model.objects.filter(owner=OuterRef("owner"), started_at__isnull=False)
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    rank = Window(
        RowNumber(), partition_by=[F("owner")], order_by=[F("created_at").asc(), F("id").asc()]
    )
    return (
        model.objects.filter(status=QUEUED)
        .annotate(owner_running=Coalesce(Subquery(running, output_field=IntegerField()), Value(0)))
        .annotate(turn=F("owner_running") + rank, owner_served=Subquery(last_start))
        .order_by("turn", F("owner_served").asc(nulls_first=True), "created_at", "id")
    )


def short_claim_next(lane: Lane):
    """Claim the lane's next queued row for this worker (None: nothing left to take)."""
    for pk in queue_order(lane).values_list("pk", flat=True)[:50]:
        now = timezone.now()
        beat = {"heartbeat_at": now} if lane.heartbeat else {}
        claimed = lane.model.objects.filter(pk=pk, status=QUEUED).update(
            status=RUNNING, started_at=now, **beat
        )
        if claimed:
            return lane.model.objects.get(pk=pk)
    return None


@contextmanager
def short_heartbeat(lane: Lane, pk: int):
    """Within: a thread renews the running row's heartbeat every COMPOSER_HEARTBEAT_SECONDS
    (while the work itself may wait on a network for minutes)."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.COMPOSER_HEARTBEAT_SECONDS):
                try:
                    rows = lane.model.objects.filter(pk=pk, status=RUNNING)
                    rows.update(heartbeat_at=timezone.now())
                except Exception:  # a database hiccup: the next beat retries
                    log.exception("%s %s: heartbeat failed", lane.noun, pk)
                    connection.close()
        finally:
            connection.close()  # this thread's own

    thread = threading.Thread(target=beat, name=f"{lane.noun}-{pk}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def short_finish(lane: Lane, pk: int, **fields) -> bool:
    """End a running row with `fields`; False when it was settled meanwhile."""
    return bool(
        lane.model.objects.filter(pk=pk, status=RUNNING).update(
            **lane.cleared, **fields, finished_at=timezone.now()
        )
    )


def short_settle(lane: Lane, rows=None) -> int:
    """Fail `rows` (default: all the lane's) that no worker took, or whose worker went away
    (see the module's docstring); how many were failed."""
    model = lane.model
    rows = model.objects.all() if rows is None else rows
    now = timezone.now()
    wait, limit = lane.wait, lane.time_limit
    dead = Q(started_at__lt=now - timedelta(seconds=limit + GRACE_SECONDS))
    if lane.heartbeat:
        stale = timedelta(seconds=settings.COMPOSER_HEARTBEAT_STALE_SECONDS)
        dead |= Q(heartbeat_at__lt=now - stale)
    stopped = rows.filter(dead, status=RUNNING).update(
        status=FAILED,
        finished_at=now,
        error=f"The worker running this {lane.noun} stopped.",
        **lane.cleared,
    )
    since = now - timedelta(seconds=wait)
    if model.objects.filter(Q(status=RUNNING) | Q(started_at__gte=since)).exists():
        return stopped  # the lane is moving: queued rows get their turns
    waited = rows.filter(status=QUEUED, created_at__lt=since).update(
        status=FAILED,
        finished_at=now,
        error=f"No worker took this {lane.noun} within {wait} s: no worker serves "
        f"{lane.no_worker} right now. Try again later.",
        **lane.cleared,
    )
    return stopped + waited


def short_jobs_settle() -> int:
    """Settle every lane's rows (run by every worker on its schedule)."""
    return sum(short_settle(lane) for lane in LANES)


def settled(lane: Lane, row):
    """`row`, reloaded if settling changed it (for pages that show one row)."""
    if short_settle(lane, lane.model.objects.filter(pk=row.pk)):
        row.refresh_from_db()
    return row
