"""Try it: trials run on a fast-lane worker, side by side with the base model, with limits."""

import json
import zipfile
from datetime import timedelta

import pytest
import redis
from django.core.exceptions import ValidationError
from django.core.files import File
from django.urls import reverse
from django.utils import timezone

from composer.engine import run
from composer.engine.adapters import CONFIG_NAME, WEIGHTS_NAME
from composer.models import Job, Trial
from composer.try_it import trial_adapter, trial_launch, try_examples
from hfapi.models import Transfer
from hfapi.transfers import transfer_launch
from hub.models import AdapterVersion, BaseModel
from tests.jobs.conftest import job_wait, unzip_result, wait_for
from tests.jobs.form_data import lorahub_data
from tests.jobs.toys import T5_NAME

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}
EXAMPLES = '{"input": "abc", "output": "cba"}\n{"input": "lora", "output": "arol"}'


@pytest.fixture
def storage_dirs(jobs_env):
    """Catalog files go where the workers read them."""


def trial_wait(trial: Trial, worker, timeout: float = 90) -> Trial:
    def finished():
        trial.refresh_from_db()
        return trial.is_finished

    wait_for(finished, timeout, message=f"trial {trial.pk}\n{worker.log_tail()}")
    return trial


def launch_trial(client, data) -> Trial:
    response = client.post(reverse("composer:trial_new"), data, **HTMX)
    assert response.status_code == 200, response.content.decode()
    assert b'id="trial"' in response.content, response.content.decode()
    return Trial.objects.latest("pk")


@pytest.mark.celery
def test_a_trial_shows_base_and_adapter_outputs(
    fast_lane, fast_worker, client, alice, catalog, toys
):
    client.force_login(alice)
    version = catalog["llama-a"].current_version  # the random toy T5 says nothing at all
    trial = trial_wait(launch_trial(client, {"version": version.pk, "text": "hello"}), fast_worker)
    assert trial.status == Trial.Status.DONE, trial.error
    direct = run.run_try(toys / "llama", toys / "adapters" / "llama-a", "hello")
    assert (trial.base_output, trial.adapter_output) == (direct["base"], direct["adapter"])
    assert trial.base_output != trial.adapter_output
    # The poll answers the outputs side by side.
    page = client.get(reverse("composer:trial", args=[trial.pk]), **HTMX).content.decode()
    assert 'id="trial-base"' in page and 'id="trial-adapter"' in page
    assert 'data-status="done"' in page and "hx-trigger" not in page


@pytest.mark.celery
def test_the_fast_lane_does_not_wait_behind_a_long_composition(
    fast_lane, fast_worker, worker_factory, client, alice, catalog
):
    gpu_worker = worker_factory()
    client.force_login(alice)
    names = ("t5-a", "t5-b", "t5-c")
    data = lorahub_data(catalog, *names, examples=EXAMPLES, budget=1000, seed=0)
    response = client.post(reverse("composer:new", args=["lorahub"]), data)
    assert response.status_code == 302
    job = Job.objects.latest("pk")
    job_wait(job, Job.Status.RUNNING, worker=gpu_worker)
    version = catalog["llama-a"].current_version
    trial = trial_wait(launch_trial(client, {"version": version.pk, "text": "abc"}), fast_worker)
    job.refresh_from_db()
    assert trial.status == Trial.Status.DONE, trial.error
    assert job.status == Job.Status.RUNNING and job.step < job.budget  # still composing
    client.post(reverse("composer:cancel", args=[job.pk]))
    job_wait(job, Job.FINISHED, worker=gpu_worker)


def fresh_version(adapter):
    """The adapter's current version as the views read it (with its base model's row now)."""
    return AdapterVersion.objects.select_related("adapter__base_model").get(
        pk=adapter.current_version_id
    )


def test_per_user_limits(settings, client, alice, catalog, idle_lane):
    settings.COMPOSER_TRY_MAX_ACTIVE, settings.COMPOSER_TRY_PER_HOUR = 2, 3
    version = fresh_version(catalog["t5-a"])
    for _ in range(2):
        trial_launch(user=alice, text="abc", version=version)  # no worker takes them
    with pytest.raises(ValidationError, match="still running"):
        trial_launch(user=alice, text="abc", version=version)
    assert Trial.objects.filter(owner=alice).count() == 2
    Trial.objects.filter(owner=alice).update(status=Trial.Status.DONE)
    trial_launch(user=alice, text="abc", version=version)
    with pytest.raises(ValidationError, match="At most 3 tries an hour"):
        trial_launch(user=alice, text="abc", version=version)
    client.force_login(alice)
    data = {"version": version.pk, "text": "abc"}
    refused = client.post(reverse("composer:trial_new"), data, **HTMX)
    assert refused.status_code == 429 and b"At most 3 tries an hour" in refused.content
    assert Trial.objects.filter(owner=alice).count() == 3


def test_fast_lane_messages_carry_no_time_limits_of_the_sender(
    alice, catalog, settings, broker_url, idle_lane
):
    """Trials, imports and pushes go out by name: the fast worker's own limits apply. An
    upstream token stays with its transfer's row, never in the broker's message."""
    trial = trial_launch(user=alice, text="abc", version=fresh_version(catalog["t5-a"]))
    transfer = transfer_launch(
        user=alice, kind=Transfer.Kind.IMPORT, repo_id="someone/x", token="s3cret"
    )
    queued = redis.Redis.from_url(broker_url).lrange(idle_lane, 0, -1)
    assert len(queued) == 2 and not any(b"s3cret" in m for m in queued)
    headers = {h["task"]: h for h in (json.loads(m)["headers"] for m in queued)}
    assert set(headers) == {"composer.fast.run_trial", "hfapi.tasks.run_transfer"}
    assert headers["composer.fast.run_trial"]["argsrepr"] == repr((trial.pk,))
    assert headers["hfapi.tasks.run_transfer"]["argsrepr"] == repr((transfer.pk,))
    assert Transfer.objects.get(pk=transfer.pk).token == "s3cret"
    for sent in headers.values():
        assert sent["timelimit"] == [None, None], sent["task"]


def test_bad_inputs_are_messages(client, alice, catalog, settings, idle_lane):
    client.force_login(alice)
    version = catalog["t5-a"].current_version
    long = client.post(reverse("composer:trial_new"), {"version": version.pk, "text": "x" * 501})
    assert long.status_code == 400 and b"at most 500 characters" in long.content
    empty = client.post(reverse("composer:trial_new"), {"version": version.pk, "text": " "}, **HTMX)
    assert empty.status_code == 400 and b"Type an input" in empty.content  # htmx swaps it in
    nul = client.post(reverse("composer:trial_new"), {"version": version.pk, "text": "a\x00b"})
    assert nul.status_code == 400 and b"NUL character" in nul.content
    bob_private = catalog["t5-b"]
    bob_private.private = True
    bob_private.save()
    hidden = {"version": bob_private.current_version.pk, "text": "abc"}
    assert client.post(reverse("composer:trial_new"), hidden).status_code == 404
    assert not Trial.objects.exists()


def test_a_base_model_no_worker_has_is_said(client, alice, catalog, idle_lane):
    BaseModel.objects.filter(identifier=T5_NAME).update(local_path="", commit="")
    adapter = catalog["t5-a"]
    client.force_login(alice)
    page = client.get(adapter.get_absolute_url()).content.decode()
    assert f"No worker has the base model {T5_NAME}" in page
    response = client.post(
        reverse("composer:trial_new"), {"version": adapter.current_version.pk, "text": "abc"}
    )
    assert response.status_code == 400 and b"No worker has the base model" in response.content
    assert not Trial.objects.exists()


def test_a_trial_no_worker_takes_says_so(client, alice, catalog, settings, idle_lane):
    client.force_login(alice)
    trial = trial_launch(user=alice, text="abc", version=fresh_version(catalog["t5-a"]))
    Trial.objects.filter(pk=trial.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    page = client.get(reverse("composer:trial", args=[trial.pk]), **HTMX).content.decode()
    assert "No worker took this try within 60 s" in page
    trial.refresh_from_db()
    assert trial.status == Trial.Status.FAILED


def test_card_examples_are_offered(client, alice, catalog):
    from hub.services.adapters import adapter_update

    adapter = catalog["t5-a"]
    card = "Examples:\n\n| input | output |\n| --- | --- |\n| `abc=` | `cba` |\n| `xy=` | `yx` |\n"
    adapter_update(adapter=adapter, description=card, task="", license="", private=False, tags=[])
    adapter.refresh_from_db()
    assert try_examples(version=adapter.current_version) == [
        {"input": "abc=", "output": "cba"},
        {"input": "xy=", "output": "yx"},
    ]
    client.force_login(alice)
    page = client.get(adapter.get_absolute_url()).content.decode()
    assert 'data-input="xy="' in page and 'value="abc="' in page


@pytest.mark.celery
def test_a_finished_job_can_be_tried(
    fast_lane, fast_worker, worker_factory, client, alice, catalog, toys, tmp_path
):
    gpu_worker = worker_factory()
    client.force_login(alice)
    data = lorahub_data(catalog, "t5-a", "t5-b", examples=EXAMPLES, budget=3, seed=0)
    assert client.post(reverse("composer:new", args=["lorahub"]), data).status_code == 302
    job = job_wait(Job.objects.latest("pk"), Job.FINISHED, worker=gpu_worker)
    assert job.status == Job.Status.SUCCEEDED, job.error
    page = client.get(job.get_absolute_url()).content.decode()
    assert 'id="try-it"' in page and 'data-input="abc"' in page  # the job's examples
    trial = trial_wait(launch_trial(client, {"job": job.pk, "text": "abc"}), fast_worker)
    assert trial.status == Trial.Status.DONE, trial.error
    direct = run.run_try(toys / "t5", unzip_result(job, tmp_path / "result"), "abc")
    assert (trial.base_output, trial.adapter_output) == (direct["base"], direct["adapter"])
    # Someone else's job cannot be tried.
    client.force_login(catalog["t5-a"].owner)
    assert (
        client.post(reverse("composer:trial_new"), {"job": job.pk, "text": "x"}).status_code == 404
    )


def disk_bytes(folder) -> int:
    """Bytes under `folder`, each file once however many links it has."""
    files = {p.stat().st_ino: p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    return sum(files.values())


def test_results_tried_in_turn_stay_under_the_input_cache_bound(settings, tmp_path, alice, toys):
    """Each trial of a job's result unpacks it into the worker's input cache: trying many
    results in turn never takes more of the worker's disk than that cache's bound."""
    settings.MEDIA_ROOT, settings.COMPOSER_WORK_DIR = tmp_path / "media", tmp_path / "work"
    folder = toys / "adapters" / "t5-a"
    one = sum((folder / name).stat().st_size for name in (CONFIG_NAME, WEIGHTS_NAME))
    settings.COMPOSER_INPUT_CACHE_BYTES = int(2.5 * one)  # two results fit, not three
    base = BaseModel.objects.create(identifier="toy/results")
    for n in range(6):
        job = Job.objects.create(owner=alice, kind=Job.Kind.LORAHUB, status=Job.Status.SUCCEEDED)
        with zipfile.ZipFile(tmp_path / "result.zip", "w") as zf:
            for name in (CONFIG_NAME, WEIGHTS_NAME):
                zf.write(folder / name, name)
        with open(tmp_path / "result.zip", "rb") as fh:
            job.result_file.save(f"{n}.zip", File(fh))
        trial = Trial.objects.create(owner=alice, job=job, base_model=base, text="abc")
        with trial_adapter(trial) as adapter_dir:
            for name in (CONFIG_NAME, WEIGHTS_NAME):
                assert (adapter_dir / name).read_bytes() == (folder / name).read_bytes()
            assert disk_bytes(settings.COMPOSER_WORK_DIR) <= settings.COMPOSER_INPUT_CACHE_BYTES
        assert disk_bytes(settings.COMPOSER_WORK_DIR) <= settings.COMPOSER_INPUT_CACHE_BYTES
    assert disk_bytes(settings.COMPOSER_WORK_DIR) > one  # the latest results stay cached
    assert not any((settings.COMPOSER_WORK_DIR / "jobs").iterdir())  # no trial folder left
