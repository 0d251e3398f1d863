"""Workers download base models by identifier from the hub into a bounded cache."""

import pytest
from django.urls import reverse

from composer.base_model_fetch import base_model_path, folder_name
from composer.models import Job
from hub.models import BaseModel
from hub.services.base_models import base_model_register
from tests.jobs.conftest import job_wait
from tests.jobs.form_data import lorahub_data
from tests.jobs.toys import T5_NAME

pytestmark = pytest.mark.django_db(transaction=True)
DEAD = "http://127.0.0.1:8219"  # nothing listens there
EXAMPLES = '{"input": "abc", "output": "cba"}\n{"input": "lora", "output": "arol"}'


@pytest.fixture(autouse=True)
def _close_client_connections():
    """The live server's request threads end (and free their database connections) once
    the client's keep-alive connections are closed."""
    yield
    from huggingface_hub.utils import close_session

    close_session()


@pytest.fixture
def storage_dirs(jobs_env):
    """Catalog files go where the worker reads them."""


@pytest.fixture
def t5_registered(catalog, toys) -> BaseModel:
    """The toy T5 registered with its files and no folder a worker could use."""
    BaseModel.objects.filter(identifier=T5_NAME).update(local_path="")
    return base_model_register(T5_NAME, toys / "t5")


@pytest.mark.celery
def test_a_worker_with_an_empty_cache_downloads_the_base_model(
    worker_factory, jobs_env, live_server, client, alice, catalog, t5_registered, toys, tmp_path
):
    work = tmp_path / "worker-work"  # this worker's own, empty, work directory
    worker = worker_factory(
        COMPOSER_WORK_DIR=work, COMPOSER_BASE_MODEL_ENDPOINT=live_server.url, HF_HUB_OFFLINE="0"
    )
    client.force_login(alice)
    data = lorahub_data(catalog, "t5-a", "t5-b", examples=EXAMPLES, budget=3, seed=0)

    def launch() -> Job:
        response = client.post(reverse("composer:new", args=["lorahub"]), data)
        assert response.status_code == 302, response.content.decode()[-2000:]
        return Job.objects.latest("pk")

    first = job_wait(launch(), Job.FINISHED, worker=worker)
    assert first.status == Job.Status.SUCCEEDED, first.error
    size = sum(f.blob.size for f in t5_registered.files.select_related("blob"))
    assert first.phase == (
        f"Downloaded base model {T5_NAME}: {size / 1e6:.1f} of {size / 1e6:.1f} MB (100%)"
    )
    cached = work / "base-models" / folder_name(T5_NAME, t5_registered.commit)
    assert (cached / "config.json").read_bytes() == (toys / "t5" / "config.json").read_bytes()
    # The job page shows the phase.
    page = client.get(first.get_absolute_url()).content.decode()
    assert "Downloaded base model" in page
    # The next job finds the model in the cache: no download phase.
    second = job_wait(launch(), Job.FINISHED, worker=worker)
    assert second.status == Job.Status.SUCCEEDED and second.phase == ""


def test_progress_is_reported_up_to_the_total(live_server, settings, t5_registered, tmp_path):
    settings.COMPOSER_WORK_DIR = tmp_path
    settings.COMPOSER_BASE_MODEL_ENDPOINT = live_server.url
    seen = []
    folder = base_model_path(t5_registered, on_progress=lambda done, total: seen.append(done))
    size = sum(f.blob.size for f in t5_registered.files.select_related("blob"))
    assert seen[0] == 0 and seen[-1] == size and seen == sorted(seen) and len(seen) > 2
    assert {p.name for p in folder.iterdir()} == {
        *t5_registered.files.values_list("filename", flat=True),
        ".ready",
    }


def test_the_cache_is_bounded(live_server, settings, t5_registered, toys, tmp_path):
    settings.COMPOSER_WORK_DIR = tmp_path
    settings.COMPOSER_BASE_MODEL_ENDPOINT = live_server.url
    size = sum(f.blob.size for f in t5_registered.files.select_related("blob"))
    settings.COMPOSER_BASE_MODEL_CACHE_BYTES = int(size * 1.5)
    first = base_model_path(t5_registered)
    llama = base_model_register("toy/other", toys / "llama")
    llama_size = sum(f.blob.size for f in llama.files.select_related("blob"))
    assert size + llama_size > settings.COMPOSER_BASE_MODEL_CACHE_BYTES >= llama_size
    second = base_model_path(llama)
    assert second.is_dir() and not first.exists()  # the least recently used made room
    settings.COMPOSER_BASE_MODEL_CACHE_BYTES = size // 2
    with pytest.raises(ValueError, match="larger than this worker's base model cache"):
        base_model_path(t5_registered)


def test_an_unreachable_hub_is_a_message(settings, t5_registered, tmp_path):
    settings.COMPOSER_WORK_DIR = tmp_path
    settings.COMPOSER_START_RETRY_SECONDS = 0  # tried again: test_a_hub_briefly_away...
    settings.COMPOSER_BASE_MODEL_ENDPOINT = DEAD
    with pytest.raises(ValueError, match=f"Could not reach {DEAD} to download the base model"):
        base_model_path(t5_registered)
    assert not list((tmp_path / "base-models").glob(f"*{t5_registered.commit}"))


def test_a_model_without_files_or_folder_is_a_message(db, catalog):
    base = BaseModel.objects.get(identifier=T5_NAME)
    base.local_path = ""
    with pytest.raises(ValueError, match="No worker has the base model"):
        base_model_path(base)


@pytest.mark.parametrize("fault", ["503", "cut"])
def test_a_hub_briefly_away_is_tried_again(live_server, settings, t5_registered, fault, tmp_path):
    from tests.jobs.flaky_hub import FlakyHub

    settings.COMPOSER_WORK_DIR = tmp_path
    settings.COMPOSER_RETRY_FIRST_PAUSE_SECONDS = 0.1
    with FlakyHub(live_server.url, fault, times=2) as hub:
        settings.COMPOSER_BASE_MODEL_ENDPOINT = hub.url
        folder = base_model_path(t5_registered)
        files = t5_registered.files.count()
        assert hub.file_gets >= files + 2  # the spoiled downloads, then every file
    for f in t5_registered.files.select_related("blob"):
        assert (folder / f.filename).stat().st_size == f.blob.size


def test_a_refusal_is_not_tried_again(live_server, settings, t5_registered, tmp_path):
    from tests.jobs.flaky_hub import FlakyHub

    settings.COMPOSER_WORK_DIR = tmp_path
    settings.COMPOSER_RETRY_FIRST_PAUSE_SECONDS = 0.1
    with FlakyHub(live_server.url, "404", times=5) as hub:
        settings.COMPOSER_BASE_MODEL_ENDPOINT = hub.url
        with pytest.raises(ValueError, match="refused the base model"):
            base_model_path(t5_registered)
        assert hub.file_gets == 1


def test_a_trickling_hub_meets_the_downloads_deadline(
    live_server, settings, t5_registered, tmp_path
):
    import time

    from tests.jobs.flaky_hub import FlakyHub

    settings.COMPOSER_WORK_DIR = tmp_path
    settings.COMPOSER_BASE_MODEL_DOWNLOAD_SECONDS = 2
    with FlakyHub(live_server.url, "trickle", times=100) as hub:
        settings.COMPOSER_BASE_MODEL_ENDPOINT = hub.url
        start = time.monotonic()
        with pytest.raises(ValueError, match="did not download .* within 2 s"):
            base_model_path(t5_registered)
        assert time.monotonic() - start < 5
    assert not list((tmp_path / "base-models").glob(f"*{t5_registered.commit}"))


def test_a_stop_ends_a_download_at_once(live_server, settings, t5_registered, tmp_path):
    import time

    from composer.base_model_fetch import Stopped
    from tests.jobs.flaky_hub import FlakyHub

    settings.COMPOSER_WORK_DIR = tmp_path
    asked = time.monotonic() + 1
    with FlakyHub(live_server.url, "trickle", times=100) as hub:
        settings.COMPOSER_BASE_MODEL_ENDPOINT = hub.url
        with pytest.raises(Stopped):
            base_model_path(t5_registered, should_stop=lambda: time.monotonic() > asked)
        assert time.monotonic() - asked < 2
