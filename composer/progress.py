"""What a running job reports back: heartbeat, progress and cancellation.

`JobMonitor` is handed to the engine as `on_step` / `should_stop`. Progress is kept in
memory and written at most every COMPOSER_PROGRESS_SECONDS (and always for the first
and the last step), so a fast optimiser does not turn into a stream of UPDATEs. A
background thread beats the heartbeat while the engine is busy in long steps (loading
a base model, a slow forward pass); it also notices when the job was taken away from
this worker (recovered as dead), which then stops the engine like a cancel.

A LoraHub search's checkpoints are written at most every COMPOSER_CHECKPOINT_SECONDS (and
when its evaluations are all made). When the worker is asked to stop (composer/shutdown.py)
the thread records it on the job at once (a kill past the stop grace is then a restart, not
a failure), and `should_yield` stops the search at its next step.
"""

import logging
import math
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from composer import shutdown
from composer.lifecycle import running
from composer.models import Job

log = logging.getLogger(__name__)


# Errors that can pass: the connection, not the values written.
PASSING = (OperationalError, InterfaceError)


class WriteRefused(Exception):
    """The database refused a job's write for good; the message is meant for its owner."""


def db_retry(write, attempts: int = 10, pause: float = 1.0):
    """`write()`, reconnecting after a dropped database connection (a restart, a failover, a
    proxy timeout) and trying again, up to `attempts` times; re-raises the last error. Any
    other database error (a value PostgreSQL refuses) would fail again: raised at once."""
    for attempt in range(attempts):
        try:
            return write()
        except PASSING:
            if attempt == attempts - 1:
                raise
            log.warning("database write failed; reconnecting", exc_info=True)
            connection.close()  # the next query opens a new connection
            time.sleep(pause)


@contextmanager
def refused_as(what: str):
    """Turn a database error that cannot pass, raised inside, into WriteRefused saying that
    `what` could not be stored and why (the error's first line)."""
    try:
        yield
    except PASSING:
        raise
    except DatabaseError as exc:
        reason = str(exc).strip().split("\n")[0][:200] or type(exc).__name__
        raise WriteRefused(f"The {what} could not be stored: {reason}") from exc


def _round(values, digits: int = 5) -> list[float]:
    return [round(float(v), digits) for v in values]


def finite_json(value):
    """`value` with each float that is not finite replaced by None: PostgreSQL refuses NaN
    and infinities in JSON (an adapter whose weights overflow gives a loss of NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def _sparse(values) -> dict[str, float]:
    """A step's non-zero weights by input position: a screening step (one candidate alone)
    is one entry and a search step one per candidate searched, however many were screened."""
    return {str(i): w for i, w in enumerate(_round(values)) if w}


class JobMonitor:
    def __init__(self, job: Job):
        self.job = job
        self.history: list[dict] = []
        self.lost = False  # the job no longer belongs to this attempt
        self.cancelled = False
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._pending = None
        self.checkpoint = None  # the engine's latest (composer.engine.checkpoint.Checkpoint)
        self._last_checkpoint = time.monotonic()
        self._stopping_noted = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat_loop, name=f"job-{job.pk}-heartbeat")

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self):
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def _beat_loop(self) -> None:
        # ticks often enough to note a stop request at once, beats every heartbeat interval
        tick = min(settings.COMPOSER_HEARTBEAT_SECONDS, 0.5)
        last_beat = time.monotonic()
        try:
            while not self._stop.wait(tick):
                if shutdown.requested() and not self._stopping_noted:
                    self._note_stopping()
                if time.monotonic() - last_beat >= settings.COMPOSER_HEARTBEAT_SECONDS:
                    last_beat = time.monotonic()
                    self._beat()
        finally:
            connection.close()  # this thread's own connection

    def _note_stopping(self) -> None:
        try:
            running(self.job).update(worker_stopping=True)
            self._stopping_noted = True
            log.info("job %s: the worker is stopping; the job stops at its next step", self.job.pk)
        except Exception:  # the next tick tries again
            log.exception("job %s: could not note that the worker stops", self.job.pk)
            connection.close()

    def _beat(self) -> None:
        try:
            alive = running(self.job).update(heartbeat_at=timezone.now())
            if not alive:
                self.lost = True
            elif Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
                self.cancelled = True
        except Exception:  # a database hiccup must not kill the job; the next beat retries
            log.exception("job %s: heartbeat failed", self.job.pk)
            connection.close()  # on a new connection

    # -- engine callbacks ------------------------------------------------------------
    def on_step(self, info) -> None:
        """Record one optimisation step (composer.engine.lorahub.StepInfo)."""
        entry = finite_json(
            {
                "step": int(info.step),
                "loss": round(float(info.loss), 6),
                "best_loss": round(float(info.best_loss), 6),
                "weights": _sparse(info.weights),
            }
        )
        self.history.append(entry)
        self._pending = finite_json(
            {
                "step": entry["step"],
                "budget": int(info.budget),
                "best_loss": entry["best_loss"],
                "weights": _round(info.weights),
                "best_weights": _round(info.best_weights),
            }
        )
        now = time.monotonic()
        first_or_last = len(self.history) == 1 or info.step >= info.budget
        if first_or_last or now - self._last_write >= settings.COMPOSER_PROGRESS_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._pending is None:
            return
        fields, self._pending = self._pending, None  # a refused write is not tried again
        with refused_as("job's progress"):
            written = db_retry(
                lambda: running(self.job).update(
                    **fields, history=self.history, heartbeat_at=timezone.now()
                )
            )
        self._last_write = time.monotonic()
        if not written:
            self.lost = True

    def on_checkpoint(self, checkpoint) -> None:
        """Keep the search's latest checkpoint; write it every COMPOSER_CHECKPOINT_SECONDS,
        and once the search has made all its evaluations."""
        self.checkpoint = checkpoint
        now = time.monotonic()
        if (
            checkpoint.finished
            or now - self._last_checkpoint >= settings.COMPOSER_CHECKPOINT_SECONDS
        ):
            self.save_checkpoint()

    def save_checkpoint(self) -> dict | None:
        """Write the latest checkpoint into the job's row; its JSON (None: none yet). A
        checkpoint that cannot be written is only logged: the job goes on without it."""
        if self.checkpoint is None:
            return None
        data = self.checkpoint.to_json()
        self._last_checkpoint = time.monotonic()
        try:
            if not db_retry(lambda: running(self.job).update(checkpoint=data)):
                self.lost = True
        except Exception:
            log.exception("job %s: its checkpoint could not be saved", self.job.pk)
        return data

    def should_yield(self) -> bool:
        """`should_stop`, or this worker is stopping (a restart, a deploy): for a search
        that saves its state and resumes on the next worker."""
        return self.should_stop() or shutdown.requested()

    @property
    def stopping(self) -> bool:
        """The worker was asked to stop, and the job is still this attempt's, not cancelled."""
        return shutdown.requested() and not (self.cancelled or self.lost)

    def should_stop(self) -> bool:
        """True when the user cancelled or the job was taken away from this worker."""
        now = time.monotonic()
        if now - self._last_cancel_check >= settings.COMPOSER_CANCEL_POLL_SECONDS:
            self._last_cancel_check = now
            state = db_retry(
                lambda: running(self.job).values_list("cancel_requested", flat=True).first()
            )
            if state is None:
                self.lost = True
            elif state:
                self.cancelled = True
        return self.cancelled or self.lost
