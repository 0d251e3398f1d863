"""docker-compose.yml, the scale-out recipe, checked against the settings it feeds (no Docker
daemon here): every variable it sets is one the settings read, the workers consume the
queue the web sends to, each on its own GPU and volume with no disk shared with the web,
the proxy in front is the project's nginx config pointing at gunicorn, the bucket the
apps use is the one created, and the limits agree with Redis' redelivery timeout."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (ROOT / "config" / "settings.py").read_text()
# Variables the settings read: os.environ[...] / .get(...) and the env_* helpers.
READ = set(re.findall(r"""(?:environ(?:\.get)?[\[(]|env_\w+\()\s*["']([A-Z0-9_]+)["']""", SETTINGS))
SUBST = re.compile(r"\$\{(\w+)(?::[-?]([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def default(value) -> str:
    """A value with each ${VAR:-default} replaced by its default."""
    return SUBST.sub(lambda m: m.group(2) or "", str(value))


def apps(compose) -> dict:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def workers(compose) -> dict:
    return {n: s for n, s in apps(compose).items() if "celery" in str(s.get("command"))}


def argv(service) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else shlex.split(command)


def option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_every_variable_the_apps_get_is_one_the_settings_read(compose):
    assert {"COMPOSER_QUEUE", "LORAHUB_S3_BUCKET", "AWS_ACCESS_KEY_ID"} <= READ
    for name, service in apps(compose).items():
        unknown = set(service["environment"]) - READ
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"


def test_workers_consume_the_queues_one_job_per_gpu_each_on_its_own_volume(compose):
    from django.conf import settings

    found = workers(compose)
    queues = {name: option(argv(s), "-Q") for name, s in found.items()}
    # Where the web sends jobs, trials and transfers (CELERY_TASK_ROUTES): each queue has a
    # worker of its own.
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert (
        set(queues.values())
        == routed
        == {
            settings.COMPOSER_QUEUE,
            settings.COMPOSER_FAST_QUEUE,
            settings.LORAHUB_TRANSFER_QUEUE,
        }
    )
    assert list(queues.values()).count(settings.COMPOSER_QUEUE) >= 2
    names, gpus, volumes = set(), [], []
    for name, service in found.items():
        args = argv(service)
        assert args[:4] == ["celery", "-A", "config", "worker"]
        # One job or try at a time; transfers are network work, a few at once.
        one = "2" if queues[name] == settings.LORAHUB_TRANSFER_QUEUE else "1"
        assert (option(args, "-c"), option(args, "-P")) == (one, "prefork")
        names.add(option(args, "-n"))
        if queues[name] == settings.COMPOSER_QUEUE:
            (device,) = service["deploy"]["resources"]["reservations"]["devices"]
            gpus.append(tuple(device["device_ids"]))
        work = default(service["environment"]["COMPOSER_WORK_DIR"])
        (volume,) = service["volumes"]
        source, target = volume.split(":")[:2]
        assert target == work and source in compose["volumes"]
        volumes.append(source)
        assert "MEDIA_ROOT" not in service["environment"]
    assert len(names) == len(set(volumes)) == len(found) and len(set(gpus)) == len(gpus)
    web = compose["services"]["web"]
    assert not web.get("volumes"), "the web shares no disk with the workers"


def test_files_live_in_the_bucket_the_store_creates(compose):
    env = {k: default(v) for k, v in compose["x-app"]["environment"].items()}
    bucket = compose["services"]["bucket"]
    assert default(bucket["environment"]["LORAHUB_S3_BUCKET"]) == env["LORAHUB_S3_BUCKET"]
    assert "mc mb" in bucket["entrypoint"] and "http://minio:9000" in bucket["entrypoint"]
    minio = compose["services"]["minio"]["environment"]
    assert default(minio["MINIO_ROOT_USER"]) == env["AWS_ACCESS_KEY_ID"]
    assert minio["MINIO_ROOT_PASSWORD"] == compose["x-app"]["environment"]["AWS_SECRET_ACCESS_KEY"]
    assert env["LORAHUB_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_the_proxy_buffers_in_front_of_gunicorn(compose):
    web = argv(compose["services"]["web"])
    gunicorn = " ".join(web)
    assert "gunicorn config.wsgi:application --bind 0.0.0.0:8000" in gunicorn
    assert "blobs_sweep" in gunicorn and "migrate" in gunicorn
    assert "ports" not in compose["services"]["web"]  # reached through the proxy only
    proxy = compose["services"]["proxy"]
    (mount,) = proxy["volumes"]
    config = mount.split(":")[0]
    nginx = (ROOT / config).read_text()
    assert "server web:8000;" in nginx and "proxy_request_buffering on;" in nginx
    assert default(proxy["ports"][0]).endswith(":80")


def test_limits_and_redis_keep_running_jobs_and_queued_messages(compose):
    env = {k: default(v) for k, v in compose["x-app"]["environment"].items()}
    soft, hard = int(env["CELERY_TASK_SOFT_TIME_LIMIT"]), int(env["CELERY_TASK_TIME_LIMIT"])
    assert soft < hard < int(env["CELERY_VISIBILITY_TIMEOUT"])
    assert compose["services"]["redis"]["command"][-2:] == ["--appendonly", "yes"]
    assert env["CELERY_BROKER_URL"].startswith("redis://")
