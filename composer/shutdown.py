"""A worker asked to stop (a restart, a deploy) tells its running job, which saves its
checkpoint and gives the job back to the queue instead of being killed after the stop grace.

- The worker's main process gets SIGTERM (`docker compose stop` sends it to the container's
  first process only) and begins Celery's warm shutdown (or a cold one: SIGQUIT);
  `forward_to_children` then sends SIGUSR2 to its pool processes.
- A pool process marks itself stopping on SIGUSR2 (`on_stop_signal`, for its whole life).
- While it runs a job it ignores SIGTERM (`sigterm_deferred`): a stop sent to the whole
  process group (systemd, a terminal) reaches the main process too, which asks as above,
  and the hard time limit follows its SIGTERM with SIGKILL (the job fails at that limit,
  it is not a restart). Outside jobs SIGTERM keeps its default.
A running job's monitor reads `requested()` (composer/progress.py).
"""

import os
import signal
import threading
from contextlib import contextmanager

_requested = False  # set by a signal handler: a plain flag, no lock a handler could wait on


def requested() -> bool:
    """Whether this process was asked to stop."""
    return _requested


def _request(signum, frame) -> None:
    global _requested
    _requested = True


def on_stop_signal() -> None:
    """In a pool process: SIGUSR2 (from the main process) marks it stopping."""
    signal.signal(signal.SIGUSR2, _request)


@contextmanager
def sigterm_deferred():
    """While inside (a job), SIGTERM is ignored (in the main thread, where signal handlers
    are set; elsewhere it is left alone): the job stops when the main process asks.
    On leaving, the stop mark is cleared: a stopping worker takes no further job, so one
    that does was not stopping (a stray signal) and must not give that job back as well."""
    global _requested
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, signal.SIG_IGN) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, before)
        _requested = False


def forward_to_children() -> None:
    """In the main process at a shutdown: ask each pool process to stop its job."""
    from billiard.process import active_children

    for child in active_children():
        try:
            os.kill(child.pid, signal.SIGUSR2)
        except OSError:  # gone meanwhile
            pass
