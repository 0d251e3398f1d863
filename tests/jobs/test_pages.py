"""The job page's live fragment: polls while the job runs, stops when it ends, shows errors."""

from django.urls import reverse

from composer.models import Job


def fragment(client, job) -> str:
    return client.get(reverse("composer:status", args=[job.pk])).content.decode()


def test_running_job_fragment_polls_and_draws_progress(alice_client, alice):
    history = [
        {"step": i, "loss": 3.0 - i * 0.1, "best_loss": 3.0 - i * 0.1, "weights": [0.1, -0.2]}
        for i in range(1, 4)
    ]
    job = Job.objects.create(
        owner=alice,
        kind=Job.Kind.LORAHUB,
        status=Job.Status.RUNNING,
        step=3,
        budget=40,
        best_loss=2.7,
        history=history,
        best_weights=[0.1, -0.2],
        device="cuda:0",
        worker_host="gpu-1",
        worker_pid=1,
        heartbeat_at="2999-01-01T00:00:00Z",
    )
    page = fragment(alice_client, job)
    assert 'hx-trigger="every 1s"' in page and "3 / 40" in page and "cuda:0 on gpu-1" in page
    assert page.count("<polyline") == 2 and page.count('<span class="weight-bar') == 2
    assert 'id="cancel"' in page


def test_cancelling_is_said_only_in_the_polled_status(alice_client, alice):
    job = Job.objects.create(
        owner=alice,
        kind=Job.Kind.MERGE,
        status=Job.Status.RUNNING,
        worker_host="gpu-1",
        worker_pid=1,
        heartbeat_at="2999-01-01T00:00:00Z",
    )
    r = alice_client.post(reverse("composer:cancel", args=[job.pk]), follow=True)
    page = r.content.decode()
    polled = page[page.index('<section id="job-status"') :]
    polled = polled[: polled.index("</section>")]
    assert page.count("Cancelling") == polled.count("Cancelling") == 1
    job.status = Job.Status.CANCELLED  # the worker stops at its next step
    job.save()
    page = fragment(alice_client, job)
    assert "Cancelling" not in page and 'data-status="cancelled"' in page


def test_failed_job_fragment_stops_polling_and_shows_the_error(alice_client, alice):
    job = Job.objects.create(
        owner=alice, kind=Job.Kind.MERGE, status=Job.Status.FAILED, error="adapters differ"
    )
    page = fragment(alice_client, job)
    assert "hx-trigger" not in page and "adapters differ" in page and 'id="cancel"' not in page


def test_polling_settles_a_job_whose_worker_vanished(alice_client, alice, settings):
    settings.COMPOSER_JOB_MAX_ATTEMPTS = 1
    job = Job.objects.create(
        owner=alice,
        kind=Job.Kind.MERGE,
        status=Job.Status.RUNNING,
        attempts=1,
        worker_host="gone-host",
        worker_pid=1,
        heartbeat_at="2000-01-01T00:00:00Z",
    )
    page = fragment(alice_client, job)
    assert 'data-status="failed"' in page and "stopped unexpectedly" in page
