"""Jobs through the queue: throughput with one and two Celery workers against direct engine
calls (the queue's overhead as a ratio), the same with workers that share no disk (each its
own work directory, every file through an S3-compatible server, `rclone serve s3`) against
the shared-disk setup, the time from submit to first progress update, the time from a
Redis restart (its queued messages lost) to every lost job running again, the faults of
the store (stopped while results are written) and of a worker (a full disk): jobs lost,
extra runs and time to recover (LORAHUB_BENCH_JOBS_FAULTS_ONLY=1 runs these alone), and a
longer job whose worker is stopped halfway (`docker stop`: SIGTERM, the job saves its
checkpoint and goes back to the queue) and another worker finishes it: the time it ran in
all against an uninterrupted run, resumed from its checkpoint and started over without one.

Runs in a child process with its own PostgreSQL database (LORAHUB_BENCH_JOBS_DB, default
`lorahub_bench_jobs`, re-created each run) and its own Redis database (LORAHUB_BENCH_REDIS,
default db 10), so it never touches the catalog benchmark's data; the restart is of a
private redis-server. The workload is short LoraHub compositions on a tiny T5 (the case
where queue overhead matters most): every job is the same composition, so the direct run and
the queued runs do identical engine work. Workers run with the production defaults for
heartbeat and progress throttling, one thread each, CPU. One user submits every job, so the
per-user limits are set out of reach (COMPOSER_MAX_ACTIVE_JOBS_PER_USER and
COMPOSER_MAX_RUNNING_JOBS_PER_USER 1000, for the workers and for the submitting process): no
job waits for its owner's running cap (with the default of 2, a third worker would find
every queued job held and stay idle), and the figures measure the queue's throughput. Each
claim still locks the user's row, as in production. Writes bench/results/jobs.json.

Environment: LORAHUB_BENCH_JOBS (default 60 per configuration: about 10 s each),
LORAHUB_BENCH_BUDGET (20), LORAHUB_BENCH_QUEUED_STALE (seconds before a queued job's message
is sent again, 15), LORAHUB_BENCH_INTERRUPTED_BUDGET (the stopped job's, 1000),
LORAHUB_BENCH_ONLY=interrupted (that scenario alone, into jobs_interrupted.json).
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench" / "jobs"
PG_SERVER = os.environ.get("LORAHUB_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("LORAHUB_BENCH_JOBS_DB", "lorahub_bench_jobs")
REDIS_URL = os.environ.get("LORAHUB_BENCH_REDIS", "redis://127.0.0.1:6379/10")
N_JOBS = int(os.environ.get("LORAHUB_BENCH_JOBS", 60))
BUDGET = int(os.environ.get("LORAHUB_BENCH_BUDGET", 20))
QUEUED_STALE = float(os.environ.get("LORAHUB_BENCH_QUEUED_STALE", 15))
INTERRUPTED_BUDGET = int(os.environ.get("LORAHUB_BENCH_INTERRUPTED_BUDGET", 1000))
ONLY = os.environ.get("LORAHUB_BENCH_ONLY", "")
FIRST_PROGRESS_SAMPLES = 5
PRODUCTION_WORKER_ENV = {
    "COMPOSER_HEARTBEAT_SECONDS": "10",
    "COMPOSER_HEARTBEAT_STALE_SECONDS": "120",
    "COMPOSER_PROGRESS_SECONDS": "1.0",
    "COMPOSER_CANCEL_POLL_SECONDS": "0.5",
    # One user launches every job here: neither per-user limit may hold one.
    "COMPOSER_MAX_ACTIVE_JOBS_PER_USER": "1000",
    "COMPOSER_MAX_RUNNING_JOBS_PER_USER": "1000",
}
EXAMPLES = [("abc", "cba"), ("hello", "olleh"), ("lora", "arol"), ("merge", "egrem")]


def main() -> None:
    """Run the measurement in a child process configured for the benchmark's databases."""
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        ident = sql.Identifier(DB_NAME)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    shutil.rmtree(VAR / "media", ignore_errors=True)
    VAR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG_SERVER}/{DB_NAME}",
        "DB_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": REDIS_URL,
        "LORAHUB_VAR_DIR": str(VAR),
        "MEDIA_ROOT": str(VAR / "media"),
        "COMPOSER_WORK_DIR": str(VAR / "work"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HF_HUB_OFFLINE": "1",
        **PRODUCTION_WORKER_ENV,
    }
    subprocess.run([sys.executable, "-m", "bench.jobs_throughput"], cwd=ROOT, env=env, check=True)


def _setup():
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(REDIS_URL).flushdb()


def _catalog(username: str = "bench", seed: int = 0, base_name: str = "bench/t5"):
    """A user and three toy adapters for a tiny T5, through the catalog's upload service
    (another seed and base model name make other files: content stored once, in one
    storage, is not stored again in another)."""
    from django.contrib.auth import get_user_model

    from composer.engine.toy import build_tiny_t5, make_random_adapter
    from hub.models import BaseModel
    from hub.services.adapters import adapter_create

    toys = VAR / f"toys-v2-{seed}"
    if not (toys / "done").exists():
        build_tiny_t5(toys / "t5")
        for i in range(3):
            make_random_adapter(
                toys / "t5", toys / f"a{i}", seed=seed + i, init_std=0.2, base_model_name=base_name
            )
        (toys / "done").write_text("1")
    user = get_user_model().objects.create_user(username)
    versions = []
    for i in range(3):
        names = ("adapter_config.json", "adapter_model.safetensors")
        files = {f: toys / f"a{i}" / f for f in names}
        adapter = adapter_create(owner=user, name=f"a{i}", files=files, base_model=base_name)
        versions.append(adapter.current_version)
    base = BaseModel.objects.get(identifier=base_name)
    base.local_path = str(toys / "t5")
    base.save()
    return user, base, versions


def _launch(user, base, versions, budget: int = BUDGET, optimizer: str = "NGOpt"):
    from composer.engine.examples import Example
    from composer.launch import job_launch
    from composer.models import Job

    return job_launch(
        owner=user,
        kind=Job.Kind.LORAHUB,
        versions=versions,
        parameters={"budget": budget, "seed": 0, "optimizer": optimizer},
        base_model=base,
        examples=[Example(i, o) for i, o in EXAMPLES],
    )


def _wait(jobs, timeout: float = 600) -> None:
    from composer.models import Job

    ids = [j.pk for j in jobs]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = Job.objects.filter(pk__in=ids).exclude(status__in=Job.FINISHED).count()
        if not left:
            bad = Job.objects.filter(pk__in=ids).exclude(status=Job.Status.SUCCEEDED)
            if bad.exists():
                raise RuntimeError(f"jobs did not succeed: {list(bad.values('pk', 'error'))}")
            return
        time.sleep(0.01)
    raise RuntimeError("jobs did not finish in time")


def _direct(base, versions) -> dict:
    """The same compositions as direct engine calls in this process (base model cached)."""
    import tempfile

    import torch

    from composer.engine.examples import Example
    from composer.engine.lorahub import LoraHubParams
    from composer.engine.run import run_lorahub
    from composer.inputs import version_dir
    from composer.model_cache import BaseModelCache

    torch.set_num_threads(1)  # as each worker (OMP_NUM_THREADS=1)
    dirs = [version_dir(v) for v in versions]
    cache = BaseModelCache(1)
    examples = [Example(i, o) for i, o in EXAMPLES]

    def one():
        with tempfile.TemporaryDirectory() as tmp:
            params = LoraHubParams(budget=BUDGET, seed=0, optimizer="NGOpt")
            run_lorahub(base.local_path, dirs, examples, Path(tmp) / "out", params,
                        device="cpu", model_cache=cache)  # fmt: skip

    one()  # warm-up: model load, first-call costs
    start = time.perf_counter()
    for _ in range(N_JOBS):
        one()
    seconds = time.perf_counter() - start
    return {"jobs": N_JOBS, "seconds": round(seconds, 3), "jobs_per_min": 60 * N_JOBS / seconds}


def _queued(n_workers: int, user, base, versions, s3=None) -> dict:
    """Throughput through the queue; with `s3`, each worker has its own work directory and
    no media folder, and every file goes through the S3 server."""
    from tests.jobs.worker import Worker

    workers = []
    try:
        for n in range(n_workers):
            if s3 is None:
                w = Worker(REDIS_URL, VAR / "media", VAR / "work", VAR, **PRODUCTION_WORKER_ENV)
            else:
                own = VAR / "s3-workers" / str(n)
                env = {**PRODUCTION_WORKER_ENV, **s3.env()}
                w = Worker(REDIS_URL, own / "no-media", own / "work", VAR, **env)
            workers.append(w.start(timeout=120))
        cold_start = time.perf_counter()
        warm = [_launch(user, base, versions) for _ in range(n_workers * 2)]
        _wait(warm)  # warm-up: each worker child imports torch and caches the base model
        cold_s = time.perf_counter() - cold_start
        start = time.perf_counter()
        jobs = [_launch(user, base, versions) for _ in range(N_JOBS)]
        _wait(jobs)
        seconds = time.perf_counter() - start
        first = _first_progress(user, base, versions) if n_workers == 1 and not s3 else None
    finally:
        for w in workers:
            w.stop()
    result = {
        "workers": n_workers,
        "jobs": N_JOBS,
        "seconds": round(seconds, 3),
        "jobs_per_min": 60 * N_JOBS / seconds,
        "warmup_s": round(cold_s, 2),
    }
    if first:
        result["submit_to_first_progress_ms"] = first
    return result


def _first_progress(user, base, versions) -> dict:
    """Submit one job at a time to an idle warm worker; time until step 1 is in the database."""
    from composer.models import Job

    samples = []
    for _ in range(FIRST_PROGRESS_SAMPLES):
        start = time.perf_counter()
        job = _launch(user, base, versions)
        while not Job.objects.filter(pk=job.pk, step__gte=1).exists():
            time.sleep(0.002)
        samples.append((time.perf_counter() - start) * 1000)
        _wait([job])
    return {
        "median": round(statistics.median(samples), 1),
        "min": round(min(samples), 1),
        "max": round(max(samples), 1),
    }


def _through_s3() -> dict:
    """1 and 2 workers sharing no disk: files through `rclone serve s3`, own work dirs."""
    from django.test import override_settings

    from tests.s3_server import S3Server

    folder = VAR / "s3"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(VAR / "s3-workers", ignore_errors=True)
    folder.mkdir(parents=True)
    s3 = S3Server(folder).start()
    try:
        storages = {"default": s3.storage(), "staticfiles": {"BACKEND": _STATIC}}
        with override_settings(STORAGES=storages, MEDIA_ROOT=VAR / "no-media"):
            user, base, versions = _catalog("bench-s3", seed=10, base_name="bench/t5-s3")
            return {n: _queued(n, user, base, versions, s3=s3) for n in (1, 2)}
    finally:
        s3.stop()


_STATIC = "django.contrib.staticfiles.storage.StaticFilesStorage"
FAULT_JOBS = 4
FAULT_RETRY_ENV = {
    "COMPOSER_RETRY_FIRST_PAUSE_SECONDS": "1",
    "COMPOSER_RETRY_MAX_PAUSE_SECONDS": "5",
}


def _faults() -> dict:
    """Faults of the store and of a worker, on workers that share no disk (S3): the store
    stopped for STORE_DOWN_S while results are written, and one worker whose disk is
    "full" (a minimum of free bytes above what it has) beside a healthy one. For each: jobs
    lost (not succeeded), runs beyond one per job, and seconds from the fault's end (the
    store back; the submit, for the full disk) until every job succeeded."""
    from django.test import override_settings

    from tests.s3_server import S3Server

    folder = VAR / "s3-faults"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    s3 = S3Server(folder).start()
    try:
        storages = {"default": s3.storage(), "staticfiles": {"BACKEND": _STATIC}}
        with override_settings(STORAGES=storages, MEDIA_ROOT=VAR / "no-media"):
            user, base, versions = _catalog("bench-faults", seed=20, base_name="bench/t5-f")
            return {
                "store_down_at_result_write": _store_down(s3, user, base, versions),
                "full_disk_worker": _full_disk(s3, user, base, versions),
            }
    finally:
        s3.stop()


STORE_DOWN_S = 10


def _fault_workers(s3, envs: list[dict]):
    from tests.jobs.worker import Worker

    workers = []
    for n, extra in enumerate(envs):
        own = VAR / "fault-workers" / str(n)
        shutil.rmtree(own, ignore_errors=True)
        env = {**PRODUCTION_WORKER_ENV, **s3.env(), **FAULT_RETRY_ENV, **extra}
        workers.append(Worker(REDIS_URL, own / "no-media", own / "work", VAR, **env))
    return workers


def _settle(jobs, since: float, timeout: float = 600) -> dict:
    from composer.models import Job

    ids = [j.pk for j in jobs]
    deadline = time.monotonic() + timeout
    while Job.objects.filter(pk__in=ids).exclude(status__in=Job.FINISHED).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    rows = Job.objects.filter(pk__in=ids)
    return {
        "jobs": len(ids),
        "jobs_lost": rows.exclude(status=Job.Status.SUCCEEDED).count(),
        "extra_runs": sum(max(0, a - 1) for a in rows.values_list("attempts", flat=True)),
        "to_recover_s": round(time.perf_counter() - since, 2),
    }


def _store_down(s3, user, base, versions) -> dict:
    from composer.models import Job

    workers = _fault_workers(s3, [{}, {}])
    try:
        for w in workers:
            w.start(timeout=120)
        jobs = [_launch(user, base, versions, budget=200) for _ in range(FAULT_JOBS)]
        while not Job.objects.filter(pk__in=[j.pk for j in jobs], step__gte=1).exists():
            time.sleep(0.01)
        s3.stop()
        time.sleep(STORE_DOWN_S)
        s3.start()
        return {"store_down_s": STORE_DOWN_S, **_settle(jobs, time.perf_counter())}
    finally:
        for w in workers:
            w.stop()


def _full_disk(s3, user, base, versions) -> dict:
    sick = {"COMPOSER_MIN_FREE_DISK_BYTES": str(10**18), "COMPOSER_DECLINE_PAUSE_SECONDS": "2"}
    workers = _fault_workers(s3, [sick, {}])
    try:
        for w in workers:
            w.start(timeout=120)
        start = time.perf_counter()
        jobs = [_launch(user, base, versions) for _ in range(2 * FAULT_JOBS)]
        return _settle(jobs, start)
    finally:
        for w in workers:
            w.stop()


def _redis_restart(user, base, versions) -> dict:
    """Two workers busy with a short job each, two more jobs queued behind them; Redis
    restarts without its data (the two queued messages are lost). Seconds from the restart
    until every lost job has a message again or is running (sent again after
    COMPOSER_QUEUED_STALE_SECONDS, checked every maintenance round, or given a turn when a
    job of its owner ends: that turn may take the other lost job) and until every lost job
    is running again."""
    from tests.jobs.redis_server import RedisServer
    from tests.jobs.worker import Worker, celery_sending_to

    folder = VAR / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    redis_server = RedisServer(folder).start()
    env = {
        **PRODUCTION_WORKER_ENV,
        "COMPOSER_QUEUED_STALE_SECONDS": str(QUEUED_STALE),
        "COMPOSER_MAINTENANCE_SECONDS": "1",
    }
    workers = [Worker(redis_server.url, VAR / "media", VAR / "work", VAR, **env) for _ in "ab"]
    try:
        with celery_sending_to(redis_server.url, "gpu"):
            for w in workers:
                w.start(timeout=120)
            timings = _lose_messages(redis_server, user, base, versions)
    finally:
        for w in workers:
            w.stop()
        redis_server.stop()
    return {"lost_jobs": 2, "queued_stale_s": QUEUED_STALE, "maintenance_s": 1, **timings}


def _lose_messages(redis_server, user, base, versions) -> dict:
    from django.utils import timezone

    from composer.models import Job

    busy = [_launch(user, base, versions, budget=200) for _ in range(2)]
    while Job.objects.filter(pk__in=[j.pk for j in busy], status=Job.Status.RUNNING).count() < 2:
        time.sleep(0.01)
    lost = Job.objects.filter(pk__in=[_launch(user, base, versions).pk for _ in range(2)])
    redis_server.restart()
    restarted, restarted_at = time.perf_counter(), timezone.now()
    timings = {}
    while "restart_to_all_running_s" not in timings:
        if time.perf_counter() - restarted > 10 * QUEUED_STALE + 120:
            raise RuntimeError("lost jobs never ran again")
        elapsed = round(time.perf_counter() - restarted, 2)
        if not lost.filter(status=Job.Status.QUEUED, sent_at__lt=restarted_at).exists():
            timings.setdefault("restart_to_all_sent_again_s", elapsed)
        if not lost.filter(status=Job.Status.QUEUED).exists():  # may have come in between
            timings.setdefault("restart_to_all_sent_again_s", elapsed)
            timings["restart_to_all_running_s"] = elapsed
        time.sleep(0.05)
    _wait(list(lost) + busy)
    return timings


def _interrupted(user, base, versions) -> dict:
    """One job of INTERRUPTED_BUDGET evaluations, uninterrupted; then stopped halfway the way
    `docker stop` stops its worker and finished by a second worker, resumed from its
    checkpoint, and once more with the checkpoint dropped before the second worker starts
    (what every restart did before checkpoints). Every worker is fresh, as after a deploy:
    each attempt loads the base model. "ran_s": the seconds its attempts ran in all (claim
    to release, claim to end); "lost_s": that minus the uninterrupted run's (on a shared
    machine, noisy: each attempt's start varies); "redone_s": the evaluations made twice
    times the uninterrupted run's seconds per search evaluation."""
    from composer.models import Job
    from tests.jobs.worker import Worker

    def worker():
        return Worker(REDIS_URL, VAR / "media", VAR / "work", VAR, **PRODUCTION_WORKER_ENV)

    def launch():  # deterministic for its seed (NGOpt picks CMA here): the runs compare
        return _launch(user, base, versions, INTERRUPTED_BUDGET, "OnePlusOne")

    def ran(job, first_attempt_s: float = 0.0) -> float:
        job.refresh_from_db()
        return first_attempt_s + (job.finished_at - job.started_at).total_seconds()

    w = worker().start(timeout=120)
    try:
        whole = launch()
        _wait([whole])
    finally:
        w.stop()
    whole_s = ran(whole)
    eval_s = whole.result["timings"]["search_s"] / (INTERRUPTED_BUDGET - len(versions))
    result = {
        "budget": INTERRUPTED_BUDGET,
        "uninterrupted_s": round(whole_s, 2),
        "search_eval_ms": round(1000 * eval_s, 2),
    }
    for variant in ("resumed", "started_over"):
        first = worker().start(timeout=120)
        try:
            job = launch()
            while not Job.objects.filter(pk=job.pk, step__gte=INTERRUPTED_BUDGET // 2).exists():
                time.sleep(0.01)
            t0 = time.perf_counter()
            stopped_by_itself = first.docker_stop(grace=60)
            stop_s = time.perf_counter() - t0
        finally:
            first.stop()
        job.refresh_from_db()
        if job.status != Job.Status.QUEUED:
            raise RuntimeError(f"the stopped job is {job.status}: {job.error}")
        first_attempt_s = (job.queued_at - job.started_at).total_seconds()
        saved = job.checkpoint["step"]
        if variant == "started_over":
            Job.objects.filter(pk=job.pk).update(checkpoint=None)
        second = worker().start(timeout=120)
        try:
            _wait([job])
        finally:
            second.stop()
        job.refresh_from_db()
        total_s = ran(job, first_attempt_s)
        resumed = job.result.get("resumed") or {"evaluated": INTERRUPTED_BUDGET}
        result[variant] = {
            "stopped_at_step": saved,
            "worker_stop_s": round(stop_s, 2),
            "stopped_within_grace": stopped_by_itself,
            "evaluations_in_all": saved + resumed["evaluated"],
            "redone_s": round((saved + resumed["evaluated"] - INTERRUPTED_BUDGET) * eval_s, 2),
            "ran_s": round(total_s, 2),
            "lost_s": round(total_s - whole_s, 2),
            "same_result": job.result["weights"] == whole.result["weights"],
            "jobs_lost": 0 if job.status == Job.Status.SUCCEEDED else 1,
        }
    return result


def _run() -> None:
    _setup()
    from bench.catalog_report import machine_info, write_result

    if os.environ.get("LORAHUB_BENCH_JOBS_FAULTS_ONLY"):
        faults = _faults()
        path = write_result("jobs_faults", {"benchmark": "jobs_faults", **faults})
        print(f"faults: {faults} -> {path}")
        return
    user, base, versions = _catalog()
    if ONLY == "interrupted":
        result = {
            "benchmark": "jobs_interrupted",
            "machine": {**machine_info(), "load_avg_1min_at_end": os.getloadavg()[0]},
            "workload": f"LoraHub, tiny T5, 3 adapters, {len(EXAMPLES)} examples, OnePlusOne",
            "interrupted": _interrupted(user, base, versions),
        }
        print(result["interrupted"], "->", write_result("jobs_interrupted", result))
        return
    direct = _direct(base, versions)
    one = _queued(1, user, base, versions)
    two = _queued(2, user, base, versions)
    s3 = _through_s3()
    restart = _redis_restart(user, base, versions)
    faults = _faults()
    interrupted = _interrupted(user, base, versions)
    result = {
        "benchmark": "jobs",
        "machine": {**machine_info(), "load_avg_1min_at_end": os.getloadavg()[0]},
        "workload": f"LoraHub, tiny T5, 3 adapters, {len(EXAMPLES)} examples, budget {BUDGET}",
        "direct_engine": direct,
        "queue_1_worker": one,
        "queue_2_workers": two,
        "overhead_ratio_1_worker": round(direct["jobs_per_min"] / one["jobs_per_min"], 3),
        "speedup_2_vs_1_workers": round(two["jobs_per_min"] / one["jobs_per_min"], 3),
        "s3_separate_dirs_1_worker": s3[1],
        "s3_separate_dirs_2_workers": s3[2],
        "s3_vs_shared_disk_1_worker": round(s3[1]["jobs_per_min"] / one["jobs_per_min"], 3),
        "s3_vs_shared_disk_2_workers": round(s3[2]["jobs_per_min"] / two["jobs_per_min"], 3),
        "redis_restart": restart,
        "faults": faults,
        "interrupted": interrupted,
    }
    for key in (
        "direct_engine",
        "queue_1_worker",
        "queue_2_workers",
        "s3_separate_dirs_1_worker",
        "s3_separate_dirs_2_workers",
    ):
        result[key]["jobs_per_min"] = round(result[key]["jobs_per_min"], 1)
    path = write_result("jobs", result)
    print(
        f"direct {direct['jobs_per_min']:.1f} jobs/min; 1 worker {one['jobs_per_min']:.1f}; "
        f"2 workers {two['jobs_per_min']:.1f}; ratio {result['overhead_ratio_1_worker']}; "
        f"first progress {one['submit_to_first_progress_ms']} ms; through S3, own dirs: "
        f"1 worker {s3[1]['jobs_per_min']:.1f} ({result['s3_vs_shared_disk_1_worker']}x), "
        f"2 workers {s3[2]['jobs_per_min']:.1f} ({result['s3_vs_shared_disk_2_workers']}x); "
        f"Redis restart to all lost jobs sent again {restart['restart_to_all_sent_again_s']} s, "
        f"running {restart['restart_to_all_running_s']} s "
        f"(stale {QUEUED_STALE} s); faults {faults}; a job stopped halfway loses "
        f"{interrupted['resumed']['lost_s']} s resumed, "
        f"{interrupted['started_over']['lost_s']} s started over -> {path}"
    )


if __name__ == "__main__":
    _run()
