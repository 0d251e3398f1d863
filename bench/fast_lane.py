"""The fast lane under hostile load: a victim's Try it latency (launch to result), before and
after, on real workers.

- alone (the reference);
- while 3 other accounts each have their most tries queued (COMPOSER_TRY_MAX_ACTIVE), the
  victim's try launched last;
- while 2 other accounts run slow imports (an upstream whose listing answers after
  LORAHUB_BENCH_SLOW_IMPORT seconds, 15 by default).

"before" is the code at LORAHUB_BENCH_BEFORE (default: the commit before the fast lane had
turns and transfers their own lane), checked out in a scratch worktree; "after" is this
tree. Each runs in a child process on its own PostgreSQL database (lorahub_bench_fast_lane,
re-created) and Redis database (LORAHUB_BENCH_REDIS, default db 11), with the workers that
tree's compose file runs: a fast worker, and a transfers worker where transfers have a queue
of their own. Tries are of a toy Llama adapter on the CPU.
"""

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench" / "fast_lane"
PG_SERVER = os.environ.get("LORAHUB_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "lorahub_bench_fast_lane"
REDIS_URL = os.environ.get("LORAHUB_BENCH_REDIS", "redis://127.0.0.1:6379/11")
BEFORE = os.environ.get("LORAHUB_BENCH_BEFORE", "af4dcb6")
SLOW_IMPORT = float(os.environ.get("LORAHUB_BENCH_SLOW_IMPORT", 15))
ROUNDS = 2


def scenarios() -> dict:
    """{"before": {...}, "after": {...}}: each scenario's victim latency in seconds."""
    before = VAR / "before-tree"
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True
    )
    VAR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(before), BEFORE],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        return {"before": _in_tree(before), "after": _in_tree(ROOT)}
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True
        )


def _in_tree(tree: Path) -> dict:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        ident = sql.Identifier(DB_NAME)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG_SERVER}/{DB_NAME}",
        "CELERY_BROKER_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(tree),
        "LORAHUB_VAR_DIR": str(VAR / "var"),
        "MEDIA_ROOT": str(VAR / "media"),
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=tree, env=env, check=True)
    out = VAR / f"result-{uuid.uuid4().hex[:6]}.json"
    subprocess.run([python, __file__, "--child", str(out)], cwd=tree, env=env, check=True)
    return json.loads(out.read_text())


# The child: runs in the tree under test (its code, its tests' helpers).


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child(out: Path) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from composer.models import Trial
    from composer.try_it import trial_launch
    from config.celery import app
    from hfapi.models import Transfer
    from hfapi.transfers import transfer_launch
    from hub.models import AdapterVersion
    from tests.jobs.conftest import publish_toys
    from tests.jobs.toys import toy_root
    from tests.jobs.worker import Worker, reset_producers

    hostile = _load("hostile_upstream", ROOT / "tests" / "hfapi" / "hostile_upstream.py")
    split = hasattr(settings, "LORAHUB_TRANSFER_QUEUE")
    fast_q, transfer_q = f"bench-fast-{uuid.uuid4().hex[:6]}", f"bench-tr-{uuid.uuid4().hex[:6]}"
    app.conf.task_routes = {
        "composer.fast.*": {"queue": fast_q},
        "hfapi.tasks.*": {"queue": transfer_q if split else fast_q},
    }
    reset_producers(app)
    users = get_user_model().objects
    owner = users.create_user("bench", "b@example.com", "bench-password-1")
    adapter = publish_toys(owner, toy_root(), ["llama-a"])["llama-a"]
    version = AdapterVersion.objects.select_related("adapter__base_model").get(
        pk=adapter.current_version_id
    )
    victim = users.create_user("victim", "v@example.com", "bench-password-1")
    attackers = [users.create_user(f"a{i}", f"a{i}@example.com", "pw-bench-12") for i in range(3)]
    upstream = hostile.HostileUpstream()
    upstream.repos["slow/lora"] = hostile.RepoPlan(files={}, hang=SLOW_IMPORT)
    settings.LORAHUB_UPSTREAM_ENDPOINT = upstream.url

    def start(queue: str) -> Worker:
        return Worker(
            REDIS_URL, VAR / "media", VAR / "work", VAR, queue, HF_HUB_OFFLINE="0"
        ).start()

    workers = [start(fast_q)] + ([start(transfer_q)] if split else [])

    def finish(rows, model, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        active = [model.Status.QUEUED, model.Status.RUNNING]
        while model.objects.filter(pk__in=[r.pk for r in rows], status__in=active).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"not finished in {timeout} s: {workers[0].log_tail()}")
            time.sleep(0.05)

    def victim_try(text: str = "hello") -> float:
        started = time.monotonic()
        trial = trial_launch(user=victim, text=text, version=version)
        finish([trial], Trial)
        trial.refresh_from_db()
        assert trial.status == Trial.Status.DONE, trial.error
        return round(time.monotonic() - started, 2)

    result = {"code": "fair turns, transfers apart" if split else "first come, one lane"}
    try:
        victim_try("warm up")  # the worker loads the base model once
        result["alone_s"] = round(statistics.median(victim_try() for _ in range(3)), 2)
        waits = []
        for _ in range(ROUNDS):
            queued = [
                trial_launch(user=a, text=f"attack {i}", version=version)
                for a in attackers
                for i in range(settings.COMPOSER_TRY_MAX_ACTIVE)
            ]
            waits.append(victim_try())
            finish(queued, Trial)
        result["three_accounts_queueing_s"] = round(statistics.median(waits), 2)
        imports = [
            transfer_launch(user=a, kind=Transfer.Kind.IMPORT, repo_id="slow/lora", token="x")
            for a in attackers[:2]
        ]
        deadline = time.monotonic() + 60
        while not Transfer.objects.filter(status=Transfer.Status.RUNNING).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("no import started")
            time.sleep(0.05)
        result["two_slow_imports_s"] = victim_try()
        finish(imports, Transfer)
    finally:
        for w in workers:
            w.stop()
        upstream.close()
    print(result, flush=True)
    out.write_text(json.dumps(result))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from bench.catalog_report import write_result

    print(write_result("fast_lane", scenarios()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(Path(sys.argv[2]))
    else:
        main()
