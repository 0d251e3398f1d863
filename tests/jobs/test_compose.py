"""docker-compose.yml, the scale-out recipe, checked against the settings it feeds (no Docker
daemon here): every variable it sets is one the settings read, the workers consume the
queue the web sends to, each on its own GPU and volume with no disk shared with the web,
the proxy in front is the project's nginx config pointing at gunicorn, the bucket the
apps use is the one created, and the limits agree with Redis' redelivery timeout."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (ROOT / "config" / "settings.py").read_text()
BUCKET_SCRIPT = ROOT / "deploy" / "minio-bucket.sh"
# Variables the settings read: os.environ[...] / .get(...) and the env_* helpers.
READ = set(re.findall(r"""(?:environ(?:\.get)?[\[(]|env_\w+\()\s*["']([A-Z0-9_]+)["']""", SETTINGS))
SUBST = re.compile(r"\$\{(\w+)(?::[-?]([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def default(value) -> str:
    """A value with each ${VAR:-default} replaced by its default."""
    return SUBST.sub(lambda m: m.group(2) or "", str(value))


def variables(value) -> set[str]:
    """The variables a value is made of."""
    return {name for name, _ in SUBST.findall(str(value))}


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


def test_files_live_in_the_bucket_the_store_creates_for_the_apps_own_user(compose):
    app = compose["x-app"]["environment"]
    env = {k: default(v) for k, v in app.items()}
    bucket = compose["services"]["bucket"]
    assert default(bucket["environment"]["LORAHUB_S3_BUCKET"]) == env["LORAHUB_S3_BUCKET"]
    assert bucket["entrypoint"][-1] == "http://minio:9000" == env["LORAHUB_S3_ENDPOINT_URL"]
    (mount,) = bucket["volumes"]
    source, target = mount.split(":")[:2]
    assert bucket["entrypoint"][:2] == ["sh", target]
    assert source == "./" + BUCKET_SCRIPT.relative_to(ROOT).as_posix()
    # The administrator's keys are MinIO's and the script's, never the apps'.
    minio = compose["services"]["minio"]["environment"]
    assert bucket["environment"]["MINIO_ROOT_USER"] == minio["MINIO_ROOT_USER"]
    assert bucket["environment"]["S3_ACCESS_KEY"] == app["AWS_ACCESS_KEY_ID"]
    assert bucket["environment"]["S3_SECRET_KEY"] == app["AWS_SECRET_ACCESS_KEY"]
    used = set().union(*map(variables, app.values()))
    admin = variables(minio["MINIO_ROOT_USER"]) | variables(minio["MINIO_ROOT_PASSWORD"])
    assert admin and not used & admin


def run_bucket_script(tmp_path, **env) -> subprocess.CompletedProcess:
    """deploy/minio-bucket.sh with an `mc` that records its arguments (and keeps the
    policy file it is given) instead of talking to MinIO."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "mc").write_text(
        '#!/bin/sh\necho "$*" >> "$MC_LOG"\n'
        'if [ "$2 $3" = "policy create" ]; then cp "$6" "$MC_LOG.policy"; fi\n'
    )
    (bin_dir / "mc").chmod(0o755)
    environ = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "MC_LOG": str(tmp_path / "mc.log"),
        "MINIO_ROOT_USER": "admin",
        "MINIO_ROOT_PASSWORD": "root-secret",
        "S3_ACCESS_KEY": "lorahub",
        "S3_SECRET_KEY": "app-secret",
        "LORAHUB_S3_BUCKET": "the-bucket",
        **env,
    }
    return subprocess.run(
        ["sh", str(BUCKET_SCRIPT), "http://minio:9000"], env=environ, capture_output=True
    )


def test_the_bucket_script_gives_the_app_a_user_for_its_bucket_alone(tmp_path):
    assert run_bucket_script(tmp_path).returncode == 0
    calls = (tmp_path / "mc.log").read_text().splitlines()
    assert calls[:4] == [
        "alias set store http://minio:9000 admin root-secret",
        "mb --ignore-existing store/the-bucket",
        "admin user add store lorahub app-secret",
        f"admin policy create store lorahub-app {tmp_path}/lorahub-app-policy.json",
    ]
    assert calls[4] == "admin policy attach store lorahub-app --user lorahub"
    policy = json.loads((tmp_path / "mc.log.policy").read_text())
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:s3:::the-bucket", "arn:aws:s3:::the-bucket/*"]
    # The app's keys must not be the administrator's.
    (tmp_path / "mc.log").unlink()
    refused = run_bucket_script(tmp_path, S3_ACCESS_KEY="admin")
    assert refused.returncode != 0 and not (tmp_path / "mc.log").exists()


def test_download_links_point_where_users_reach_the_store(compose):
    env = {k: default(v) for k, v in compose["x-app"]["environment"].items()}
    public = env["LORAHUB_S3_PUBLIC_ENDPOINT_URL"]
    assert public != env["LORAHUB_S3_ENDPOINT_URL"]
    (published,) = compose["services"]["minio"]["ports"]
    assert public.endswith(":" + default(published).split(":")[0])


def test_the_apps_know_their_proxy(compose):
    """Behind nginx every client would have nginx's address without LORAHUB_PROXY_HOPS:
    one client could then lock everyone out of logging in and signing up."""
    app = compose["x-app"]["environment"]
    proxies = [n for n, s in compose["services"].items() if "nginx" in s.get("image", "")]
    assert int(default(app["LORAHUB_PROXY_HOPS"])) == len(proxies) == 1
    assert default(app["LORAHUB_HTTPS"]) in {"0", "1"}
    # What those settings trust, the proxy sets: it appends the address it saw, and sets
    # the scheme whatever the client sent.
    (mount,) = compose["services"][proxies[0]]["volumes"]
    nginx = (ROOT / mount.split(":")[0]).read_text()
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in nginx
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx
    # The web is reachable through the proxy only.
    assert not any("ports" in s for n, s in apps(compose).items())


def test_secrets_have_no_defaults_and_every_service_authenticates(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    secret = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|ROOT_USER")
    for match in re.finditer(r"\$\{(\w+)(:?[-?])?", text):
        if secret.search(match.group(1)):
            assert match.group(2) == ":?", f"${{{match.group(1)}}} must be set, not defaulted"
    env = compose["x-app"]["environment"]
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    assert compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
    redis = compose["services"]["redis"]
    password = option(redis["command"], "--requirepass")
    assert password.startswith("${REDIS_PASSWORD:?")
    assert env["CELERY_BROKER_URL"].startswith("redis://:" + password + "@")
    assert redis["environment"]["REDISCLI_AUTH"] == password  # its health check logs in
    for name, service in compose["services"].items():
        assert "ports" not in service or name in {"proxy", "minio"}, name


def test_services_have_health_checks_and_pinned_images(compose):
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if "build" not in service:
            tag = image.rpartition(":")[2]
            assert re.fullmatch(r"\d+\.\d+(\.\d+)?(-alpine)?|RELEASE\.[\dTZ-]+", tag), image
        if service.get("restart") == "unless-stopped":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for service in workers(compose).values():
        check = service["healthcheck"]["test"][-1]
        # The worker's ping, recognised by its name's host part.
        assert "inspect ping" in check and option(argv(service), "-n").endswith("@%h")
    assert compose["services"]["web"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "config.health",
    ]
    assert "/nginx-health" in compose["services"]["proxy"]["healthcheck"]["test"][-1]


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


@pytest.mark.celery
def test_a_workers_health_check_is_answered_by_that_worker(compose, worker_factory, broker_url):
    """The workers' check, run as compose runs it (`$$` is compose's escape for `$`), is
    answered when a worker named after this host runs, and not for another host."""
    (check,) = {s["healthcheck"]["test"][-1] for s in workers(compose).values()}
    command = check.replace("$$", "$")
    worker_factory()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "CELERY_BROKER_URL": broker_url,
    }

    def run_on(host: str) -> int:
        return subprocess.run(
            ["sh", "-c", command], env={**env, "HOSTNAME": host}, cwd=ROOT, timeout=120
        ).returncode

    assert run_on(socket.gethostname()) == 0
    assert run_on("another-container") != 0
