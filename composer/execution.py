"""Running one job inside a worker: claim, translate rows into plain objects, call the
engine, report progress, store the result, and end in exactly one final state."""

import logging
import tempfile
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from composer.device import pick_device
from composer.lifecycle import job_claim, job_finish, jobs_reap
from composer.models import Job
from composer.progress import JobMonitor

log = logging.getLogger(__name__)
Status = Job.Status


def job_execute(job_id: int, *, task_id: str = "") -> str | None:
    """Run the job if this process can claim it; returns its final status (None: not ours)."""
    jobs_reap()
    device = pick_device()
    job = job_claim(job_id, device=device, task_id=task_id)
    if job is None:
        log.info("job %s: not claimable (already taken or finished); message dropped", job_id)
        return None
    work_root = Path(settings.COMPOSER_WORK_DIR) / "jobs"
    work_root.mkdir(parents=True, exist_ok=True)
    stored = None
    with (
        JobMonitor(job) as monitor,
        tempfile.TemporaryDirectory(dir=work_root, prefix=f"job-{job.pk}-") as tmp,
    ):
        status, fields = _outcome(job, monitor, device, Path(tmp))
        stored = fields.get("result_file")
        monitor.flush()
        if monitor.lost or not job_finish(job, status, **fields):
            log.warning("job %s: taken away from this worker; its outcome is dropped", job.pk)
            status = None
    if status is None and stored:
        from composer.results import result_delete

        result_delete(stored)
    return status


def _outcome(job: Job, monitor: JobMonitor, device: str, tmp: Path) -> tuple[str, dict]:
    from composer.engine.lorahub import Cancelled
    from composer.results import job_run_engine

    try:
        return Status.SUCCEEDED, job_run_engine(job, monitor, device, tmp)
    except Cancelled:
        return Status.CANCELLED, {"error": ""}
    except SoftTimeLimitExceeded:
        limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
        return Status.FAILED, {"error": f"The job ran past its time limit ({limit} s)."}
    except ValueError as exc:  # the engine's own errors carry a message meant for the user
        return Status.FAILED, {"error": str(exc)}
    except Exception as exc:
        log.exception("job %s failed", job.pk)
        return Status.FAILED, {"error": f"Internal error ({type(exc).__name__}: {exc})."}
