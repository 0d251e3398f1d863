"""Short jobs (trials, transfers) share one lifecycle: a lost message or a dead worker never
blocks a user, the fast lane takes users in turn, and a try's cost is bounded."""

import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from composer.models import Trial
from composer.short_jobs import short_claim_next, short_finish
from composer.try_it import TRIALS, trial_launch
from hfapi.models import Transfer
from hfapi.transfers import transfer_launch
from hub.models import AdapterVersion
from tests.hfapi.hostile_upstream import HostileUpstream, RepoPlan
from tests.jobs.conftest import lane_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def storage_dirs(jobs_env):
    """Catalog files go where the workers read them."""


def version_of(adapter):
    return AdapterVersion.objects.select_related("adapter__base_model").get(
        pk=adapter.current_version_id
    )


def an_import(user, repo_id="a/b") -> Transfer:
    return transfer_launch(user=user, kind=Transfer.Kind.IMPORT, repo_id=repo_id, token="hf_x")


def age(transfers, seconds: float) -> None:
    """Let `seconds` pass for these rows (their queue times move back)."""
    earlier = timezone.now() - timedelta(seconds=seconds)
    Transfer.objects.filter(pk__in=[t.pk for t in transfers]).update(created_at=earlier)


def test_transfers_no_worker_takes_are_failed_after_the_wait(alice, client, settings, idle_lane):
    """Two lost messages used to block the user's imports and pushes for good."""
    wait = settings.LORAHUB_TRANSFER_WAIT_SECONDS
    first, second = an_import(alice), an_import(alice)
    with pytest.raises(ValidationError, match="earlier transfers are still running"):
        an_import(alice)
    age([first, second], wait + 1)
    third = an_import(alice)  # the launch settled the first two
    assert Transfer.objects.get(pk=third.pk).status == Transfer.Status.QUEUED
    for lost in (first, second):
        lost.refresh_from_db()
        assert lost.status == Transfer.Status.FAILED and lost.token == ""
        assert f"No worker took this transfer within {wait} s" in lost.error
    # The page of a waiting transfer settles it too.
    client.force_login(alice)
    age([third], wait + 1)
    page = client.get(reverse("hfapi:transfer", args=[third.pk]), **HTMX).content.decode()
    assert "No worker took this transfer" in page and 'data-status="failed"' in page


def test_a_queued_transfer_waits_while_the_lane_is_busy(alice, bob, settings, idle_lane):
    """A worker busy with someone's long import is no lost message: the queue waits."""
    busy = an_import(bob)
    Transfer.objects.filter(pk=busy.pk).update(
        status=Transfer.Status.RUNNING, started_at=timezone.now()
    )
    waiting = an_import(alice)
    age([waiting], settings.LORAHUB_TRANSFER_WAIT_SECONDS + 1)
    an_import(alice)
    waiting.refresh_from_db()
    assert waiting.status == Transfer.Status.QUEUED


@pytest.fixture
def hanging_upstream(settings):
    server = HostileUpstream()
    server.repos["slow/lora"] = RepoPlan(files={}, hang=120)
    settings.LORAHUB_UPSTREAM_ENDPOINT = server.url
    yield server
    server.close()


@pytest.mark.celery
def test_a_transfer_whose_worker_died_is_failed_and_unblocks(
    alice,
    client,
    settings,
    fast_lane,
    hanging_upstream,
    django_db_blocker,
    broker_url,
    transfer_queue,
    worker_dirs,
):
    """A worker that dies mid-transfer stops renewing its heartbeat: the transfer is failed
    within COMPOSER_HEARTBEAT_STALE_SECONDS, not at the end of its 30-minute time limit."""
    settings.COMPOSER_HEARTBEAT_STALE_SECONDS = 3  # the worker beats every 0.5 s
    worker = lane_worker(django_db_blocker, broker_url, transfer_queue, worker_dirs)
    client.force_login(alice)

    def page(transfer) -> str:
        url = reverse("hfapi:transfer", args=[transfer.pk])
        return client.get(url, **HTMX).content.decode()

    try:
        for _ in range(2):
            an_import(alice, "slow/lora")
        dying = wait_for(
            lambda: Transfer.objects.filter(status=Transfer.Status.RUNNING).first(),
            60,
            message=worker.log_tail(),
        )
        time.sleep(4)  # longer than the staleness: a live worker keeps it running
        assert 'data-status="running"' in page(dying)
    finally:
        worker.kill()  # like a lost machine: nothing writes the outcome
    with pytest.raises(ValidationError, match="still running"):
        an_import(alice)
    wait_for(lambda: "The worker running this transfer stopped." in page(dying), 15)
    dying.refresh_from_db()
    assert dying.status == Transfer.Status.FAILED and dying.token == ""
    assert an_import(alice).status == Transfer.Status.QUEUED


def test_the_fast_lane_takes_users_in_turn(alice, bob, django_user_model, catalog, idle_lane):
    """Two users with two tries each, then a third user's one: the third waits behind the
    first turn of each, not behind everything queued before it."""
    carol = django_user_model.objects.create_user("carol", "c@example.com", "pw-carol-123")
    version = version_of(catalog["t5-a"])
    order = {}
    for user, label in [(alice, "a1"), (alice, "a2"), (bob, "b1"), (bob, "b2"), (carol, "c1")]:
        order[trial_launch(user=user, text=label, version=version).pk] = label
    taken = []
    while (trial := short_claim_next(TRIALS)) is not None:
        taken.append(order[trial.pk])
        short_finish(TRIALS, trial.pk, status=Trial.Status.DONE)
    assert taken == ["a1", "b1", "c1", "a2", "b2"]


def test_a_user_with_a_running_try_goes_after_others(alice, bob, catalog, idle_lane):
    version = version_of(catalog["t5-a"])
    first = trial_launch(user=alice, text="1", version=version)
    assert short_claim_next(TRIALS).pk == first.pk  # alice's first runs
    trial_launch(user=alice, text="2", version=version)
    bobs = trial_launch(user=bob, text="3", version=version)
    assert short_claim_next(TRIALS).pk == bobs.pk


def test_a_try_too_costly_for_the_lane_is_refused_before_it_runs(
    client, alice, catalog, settings, idle_lane
):
    version = version_of(catalog["t5-a"])
    client.force_login(alice)
    data = {"version": version.pk, "text": "hello"}
    # Rank 2**20 on this tiny model: about 5e8 parameters.
    AdapterVersion.objects.filter(pk=version.pk).update(param_count=5 * 10**8)
    refused = client.post(reverse("composer:trial_new"), data, **HTMX)
    assert refused.status_code == 400
    assert b"too large to try here: 500,000,000 parameters" in refused.content
    assert not Trial.objects.exists()
    # The bound counts the tokens too: a cheaper adapter passes, a longer input may not.
    AdapterVersion.objects.filter(pk=version.pk).update(param_count=10**8)
    assert client.post(reverse("composer:trial_new"), data, **HTMX).status_code == 200
    long = {"version": version.pk, "text": "x" * 100}
    assert client.post(reverse("composer:trial_new"), long, **HTMX).status_code == 400
