"""Kept results on a worker's disk stay while their job may still need them, and go once it
has ended (stored, failed or cancelled elsewhere) or is gone."""

import pytest

from composer.models import Job
from composer.result_saving import kept_paths, kept_results_sweep, result_kept

pytestmark = pytest.mark.django_db


def keep(job_id: int) -> None:
    zip_path, json_path = kept_paths(job_id)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    zip_path.write_bytes(b"zip")
    json_path.write_text('{"result": {}}')


def test_kept_results_go_once_their_job_no_longer_waits_for_them(alice, settings, tmp_path):
    settings.COMPOSER_WORK_DIR = tmp_path
    jobs = {
        status: Job.objects.create(owner=alice, kind=Job.Kind.LEGO, status=status)
        for status in (Job.Status.RUNNING, Job.Status.QUEUED, Job.Status.SUCCEEDED)
    }
    for job in jobs.values():
        keep(job.pk)
    keep(987654)  # a job deleted since
    assert kept_results_sweep() == sorted([jobs[Job.Status.SUCCEEDED].pk, 987654])
    assert result_kept(jobs[Job.Status.RUNNING]) == {"result": {}}
    assert result_kept(jobs[Job.Status.QUEUED]) is not None
    assert result_kept(jobs[Job.Status.SUCCEEDED]) is None
    assert not any(p.exists() for p in kept_paths(987654))


def test_a_half_kept_result_is_not_used(alice, settings, tmp_path):
    settings.COMPOSER_WORK_DIR = tmp_path
    job = Job.objects.create(owner=alice, kind=Job.Kind.LEGO, status=Job.Status.RUNNING)
    keep(job.pk)
    kept_paths(job.pk)[1].unlink()  # the zip was moved in, its fields never written
    assert result_kept(job) is None
