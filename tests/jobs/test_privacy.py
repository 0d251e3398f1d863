"""Only the owner sees a job and its result; others get 404."""

import pytest
from django.urls import reverse

from composer.models import Job


@pytest.fixture
def bobs_job(bob):
    return Job.objects.create(owner=bob, kind=Job.Kind.LEGO, status=Job.Status.SUCCEEDED)


@pytest.mark.parametrize("name", ["detail", "status", "download"])
def test_other_users_get_404(alice_client, bobs_job, name):
    assert alice_client.get(reverse(f"composer:{name}", args=[bobs_job.pk])).status_code == 404


@pytest.mark.parametrize("name", ["cancel", "publish"])
def test_other_users_cannot_act(alice_client, bobs_job, name):
    r = alice_client.post(reverse(f"composer:{name}", args=[bobs_job.pk]), {"name": "mine"})
    assert r.status_code == 404
    bobs_job.refresh_from_db()
    assert bobs_job.published_version is None and not bobs_job.cancel_requested


def test_job_list_shows_only_mine(alice_client, alice, bobs_job):
    mine = Job.objects.create(owner=alice, kind=Job.Kind.MERGE)
    page = alice_client.get(reverse("composer:list")).content.decode()
    assert f"#{mine.pk} " in page and f"#{bobs_job.pk} " not in page


def test_cancel_a_queued_job(alice_client, alice):
    job = Job.objects.create(owner=alice, kind=Job.Kind.MERGE)
    r = alice_client.post(reverse("composer:cancel", args=[job.pk]))
    assert r.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
