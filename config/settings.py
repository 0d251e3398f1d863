"""Django settings, read from environment variables.

Defaults are the embedded ones a new user gets from `make run`: SQLite, a file-system
Celery broker that needs no server, files under ./var. DEBUG is off unless DEBUG=1 (`make
run` asks for it). Production sets DATABASE_URL (PostgreSQL), CELERY_BROKER_URL (Redis),
SECRET_KEY, ALLOWED_HOSTS and, behind HTTPS, LORAHUB_HTTPS=1.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LORAHUB_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def generated_secret_key(path: Path) -> str:
    """A random key kept in `path`, created once (atomically: concurrent processes agree),
    for a site whose SECRET_KEY is not set; several machines must set SECRET_KEY."""
    if not path.exists():
        from django.core.management.utils import get_random_secret_key

        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        tmp.write_text(get_random_secret_key())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or generated_secret_key(VAR_DIR / "secret_key")


def env_list(name: str, default: str = "") -> list[str]:
    return [item for item in os.environ.get(name, default).split(",") if item]


# HTTPS (LORAHUB_HTTPS=1, e.g. behind deploy/nginx.conf, which sets X-Forwarded-Proto):
# redirect to HTTPS, HSTS, secure cookies; `manage.py check --deploy` is then clean.
HTTPS = env_bool("LORAHUB_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", HTTPS)
if env_bool("SECURE_PROXY_SSL_HEADER", HTTPS):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Pages may load scripts, styles, images and fonts from this site only (model cards cannot
# pull third-party images or scripts); set by hub.request_checks.ContentSecurityPolicyMiddleware.
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "hub",
    "composer",
    "hfapi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hub.request_checks.NulCharacterMiddleware",
    "hub.request_checks.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "hub.uploads.BodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After CommonMiddleware (APPEND_SLASH sees the 404) and auth (the page's menu).
    "hub.middleware.SiteNotFoundMiddleware",
    "hub.middleware.OutageMiddleware",  # a store or database outage: 503, not 500
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        # A connection kept across requests is checked before reuse: a database restart
        # or a dropped connection costs a reconnect, not a 500.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The catalog's covering indexes (INCLUDE columns) are for PostgreSQL; SQLite keeps
    # their key columns, which is all the embedded setup needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
    # The web and three workers share the file: a transaction takes the write lock when it
    # begins (a read lock upgraded later fails at once with "database is locked"), and a
    # writer waits for another's to end.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

# Adapter files and job results go through STORAGES["default"]: the file system by default,
# an S3-compatible store (django-storages + boto3) when LORAHUB_S3_BUCKET is set; then web
# and workers share no disk.


def s3_transfer_config():
    """boto3's transfers with bounded buffers, whatever the file's size: an upload holds at
    most 4 + 1 parts of 8 MiB in memory (boto3's default: 10 + 5), a download at most 2
    parts of 8 MiB and 16 writes of 256 KiB waiting for the disk (its default: 10 and 1,000,
    up to 250 MiB when the disk is slower than the network)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig()
    config.max_in_memory_upload_chunks = 4
    config.max_submission_concurrency = 1
    config.max_in_memory_download_chunks = 2
    config.max_io_queue_size = 16
    return config


def s3_storage(bucket: str, endpoint_url: str | None, access_key=None, secret_key=None) -> dict:
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "access_key": access_key,
            "secret_key": secret_key,
            "region_name": os.environ.get("LORAHUB_S3_REGION", "us-east-1"),
            "addressing_style": "path",
            "signature_version": "s3v4",
            "file_overwrite": False,  # content-addressed names; never replace a stored file
            "default_acl": None,
            "querystring_auth": True,  # downloads are short-lived presigned links
            "querystring_expire": env_int("LORAHUB_S3_LINK_SECONDS", 300),
            # A file opened through the storage spools to disk past this size; the web
            # process reads by ranges and streams instead (hub.services.stored_reads).
            "max_memory_size": 2 * 1024 * 1024,
            "transfer_config": s3_transfer_config(),
        },
    }


# The stores by name: "fs" (MEDIA_ROOT), and "s3" when LORAHUB_S3_BUCKET is set, which is
# then the default. `manage.py storage_copy --from fs --to s3` copies what one holds into
# the other.
LORAHUB_STORES = {"fs": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
if os.environ.get("LORAHUB_S3_BUCKET"):
    LORAHUB_STORES["s3"] = s3_storage(
        os.environ["LORAHUB_S3_BUCKET"],
        os.environ.get("LORAHUB_S3_ENDPOINT_URL"),
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_SECRET_ACCESS_KEY"),
    )
# Downloads at least this large are redirected to the store (a presigned link) when it can
# serve them, instead of streaming through the web process.
LORAHUB_S3_REDIRECT_MIN_BYTES = env_int("LORAHUB_S3_REDIRECT_MIN_BYTES", 1024 * 1024)
# Hashed, compressed static files (far-future caching) where LORAHUB_STATIC_MANIFEST is on,
# as in the Docker image, whose `collectstatic` writes the manifest; by default only once a
# manifest exists, so development and tests (no `collectstatic`) keep plain names.
LORAHUB_STATIC_MANIFEST = env_bool(
    "LORAHUB_STATIC_MANIFEST", (STATIC_ROOT / "staticfiles.json").exists()
)
STORAGES = {
    "default": LORAHUB_STORES.get("s3", LORAHUB_STORES["fs"]),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if LORAHUB_STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Presigned download links (hub.services.storage.download_link) are signed for the address
# users reach the store at, LORAHUB_S3_PUBLIC_ENDPOINT_URL, where it is not the one web and
# workers use inside a private network (http://minio:9000): the same bucket under that name.
if os.environ.get("LORAHUB_S3_BUCKET") and os.environ.get("LORAHUB_S3_PUBLIC_ENDPOINT_URL"):
    STORAGES["links"] = s3_storage(
        os.environ["LORAHUB_S3_BUCKET"],
        os.environ["LORAHUB_S3_PUBLIC_ENDPOINT_URL"],
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_SECRET_ACCESS_KEY"),
    )

# Uploads stream to temporary files past this size instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# A folder of their own, so `manage.py blobs_sweep` can remove what killed requests left.
FILE_UPLOAD_TEMP_DIR = Path(os.environ.get("FILE_UPLOAD_TEMP_DIR") or VAR_DIR / "uploads")
FILE_UPLOAD_TEMP_DIR.mkdir(parents=True, exist_ok=True)
DATA_UPLOAD_MAX_NUMBER_FILES = 20
# Largest request body of a view that declares no other limit (hub.uploads.body_limit).
LORAHUB_MAX_BODY_BYTES = env_int("LORAHUB_MAX_BODY_BYTES", 1024 * 1024)

# Largest single adapter file accepted (bytes); default 2 GiB.
LORAHUB_MAX_FILE_BYTES = env_int("LORAHUB_MAX_FILE_BYTES", 2 * 1024**3)
# One version's files (adapter, tokenizer, checkpoint folders, logs): count and total bytes.
LORAHUB_MAX_REPO_FILES = env_int("LORAHUB_MAX_REPO_FILES", 200)
LORAHUB_MAX_REPO_BYTES = env_int("LORAHUB_MAX_REPO_BYTES", 8 * 1024**3)
# Proxies in front of the site that append to X-Forwarded-For (1 behind deploy/nginx.conf):
# download counts and the log-in and sign-up limits tell clients apart by the address the
# first of them saw.
LORAHUB_PROXY_HOPS = env_int("LORAHUB_PROXY_HOPS", 0)
# Failed log-ins within 15 minutes before log-ins are refused: per account and address, per
# address, and per account from addresses it never logged in from (hub.services.throttle);
# uploads and Hub API writes per user per hour; accounts made per address per hour.
LORAHUB_LOGIN_FAILURES = env_int("LORAHUB_LOGIN_FAILURES", 5)
LORAHUB_LOGIN_FAILURES_PER_ADDRESS = env_int("LORAHUB_LOGIN_FAILURES_PER_ADDRESS", 30)
LORAHUB_LOGIN_FAILURES_PER_ACCOUNT = env_int("LORAHUB_LOGIN_FAILURES_PER_ACCOUNT", 100)
LORAHUB_WRITES_PER_HOUR = env_int("LORAHUB_WRITES_PER_HOUR", 60)
LORAHUB_SIGNUPS_PER_HOUR = env_int("LORAHUB_SIGNUPS_PER_HOUR", 5)
LORAHUB_VALIDATE_YAML_PER_MINUTE = env_int("LORAHUB_VALIDATE_YAML_PER_MINUTE", 20)
# What one user may store (adapters' files, staged LFS uploads, imports in progress), and
# how many API tokens one user may hold.
LORAHUB_USER_QUOTA_BYTES = env_int("LORAHUB_USER_QUOTA_BYTES", 10 * 1024**3)
LORAHUB_MAX_TOKENS_PER_USER = env_int("LORAHUB_MAX_TOKENS_PER_USER", 20)
# Largest model card (README.md or the card typed in a form), bytes of UTF-8.
LORAHUB_MAX_CARD_BYTES = env_int("LORAHUB_MAX_CARD_BYTES", 64 * 1024)
# Uploaded zips: most entries, and highest compression ratio of a large entry (zip bombs).
LORAHUB_MAX_ZIP_ENTRIES = env_int("LORAHUB_MAX_ZIP_ENTRIES", 32)
LORAHUB_MAX_ZIP_RATIO = env_int("LORAHUB_MAX_ZIP_RATIO", 100)
# Hugging Face Hub API: files above this size are uploaded through Git LFS (basic
# transfer), smaller ones inline in the commit; the upstream hub that "Import from
# Hugging Face" and "Push to Hugging Face" talk to.
LORAHUB_API_LFS_THRESHOLD = env_int("LORAHUB_API_LFS_THRESHOLD", 10 * 1024 * 1024)
LORAHUB_UPSTREAM_ENDPOINT = os.environ.get(
    "LORAHUB_UPSTREAM_ENDPOINT", "https://huggingface.co"
).rstrip("/")
# Where the demo base models and adapters are built and cached.
LORAHUB_DEMO_DIR = Path(os.environ.get("LORAHUB_DEMO_DIR", VAR_DIR / "demo"))

# Celery. The default broker is the file system: no server needed for `make run`.
# With Redis, a frozen or unreachable broker fails a send in seconds instead of hanging a
# request (the job stays queued and is sent later), and dead connections are noticed.
BROKER_REDIS_TIMEOUTS = {
    "socket_connect_timeout": float(os.environ.get("CELERY_BROKER_CONNECT_TIMEOUT", "3")),
    "socket_timeout": float(os.environ.get("CELERY_BROKER_SOCKET_TIMEOUT", "5")),
    "socket_keepalive": True,
    "health_check_interval": 25,
}
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_REDIS_TIMEOUTS["socket_connect_timeout"]
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the hard time limit, so a long job is not redelivered while it runs.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600),
        **BROKER_REDIS_TIMEOUTS,
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
# Time limits are the worker's own (messages are sent by task name and carry none): a job
# past the soft limit fails with that reason; past the hard one its process is killed and
# the job failed once, not retried. 0 turns a limit off.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3 * 3600) or None
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600 + 300) or None
CELERY_TASK_DEFAULT_QUEUE = "default"
# Composition jobs go to the GPU workers' queue (a separate name isolates a pool of workers).
COMPOSER_QUEUE = os.environ.get("COMPOSER_QUEUE", "gpu")
# "Try it" trials: short jobs on their own queue, served by its own worker (a fast lane).
COMPOSER_FAST_QUEUE = os.environ.get("COMPOSER_FAST_QUEUE", "fast")
# Imports from and pushes to an upstream hub (up to LORAHUB_TRANSFER_TIME_LIMIT seconds
# each): their own queue and worker, so a try never waits behind them.
LORAHUB_TRANSFER_QUEUE = os.environ.get("LORAHUB_TRANSFER_QUEUE", "transfers")
LORAHUB_TRANSFER_TIME_LIMIT = env_int("LORAHUB_TRANSFER_TIME_LIMIT", 1800)
# A queued transfer no worker took while the lane did nothing this long is failed.
LORAHUB_TRANSFER_WAIT_SECONDS = env_int("LORAHUB_TRANSFER_WAIT_SECONDS", 120)
CELERY_TASK_ROUTES = {
    "composer.tasks.*": {"queue": COMPOSER_QUEUE},
    "composer.fast.*": {"queue": COMPOSER_FAST_QUEUE},
    "hfapi.tasks.*": {"queue": LORAHUB_TRANSFER_QUEUE},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Composition and merge jobs (composer app).
COMPOSER_HEARTBEAT_SECONDS = float(os.environ.get("COMPOSER_HEARTBEAT_SECONDS", "10"))
# A running job whose heartbeat is older than this is considered orphaned.
COMPOSER_HEARTBEAT_STALE_SECONDS = float(os.environ.get("COMPOSER_HEARTBEAT_STALE_SECONDS", "120"))
# How often a job may run in all when its worker dies under it (1 = never retried).
COMPOSER_JOB_MAX_ATTEMPTS = env_int("COMPOSER_JOB_MAX_ATTEMPTS", 2)
# Throttles: progress writes to the database, cancel checks between optimisation steps.
COMPOSER_PROGRESS_SECONDS = float(os.environ.get("COMPOSER_PROGRESS_SECONDS", "1.0"))
COMPOSER_CANCEL_POLL_SECONDS = float(os.environ.get("COMPOSER_CANCEL_POLL_SECONDS", "0.5"))
# How often a running LoraHub search saves its checkpoint (a restart loses at most this).
COMPOSER_CHECKPOINT_SECONDS = float(os.environ.get("COMPOSER_CHECKPOINT_SECONDS", "60"))
# Base models kept loaded per worker process; device "auto" = cuda:N if available, else cpu.
COMPOSER_MODEL_CACHE_SIZE = env_int("COMPOSER_MODEL_CACHE_SIZE", 2)
COMPOSER_DEVICE = os.environ.get("COMPOSER_DEVICE", "auto")
# Scratch space of running jobs and local copies of stored adapters, per worker machine.
COMPOSER_WORK_DIR = Path(os.environ.get("COMPOSER_WORK_DIR", VAR_DIR / "work"))
# Where workers download registered base models from by identifier (this site's Hub API,
# or https://huggingface.co), and the bound of their copies under COMPOSER_WORK_DIR.
COMPOSER_BASE_MODEL_ENDPOINT = os.environ.get(
    "COMPOSER_BASE_MODEL_ENDPOINT", "http://127.0.0.1:8000"
).rstrip("/")
# Workers reach this site under that endpoint's internal name (`web` in docker-compose.yml),
# which is accepted whatever public names ALLOWED_HOSTS lists.
# Links to the store handed to such requests use the store's internal address too.
LORAHUB_INTERNAL_HOST = urlsplit(COMPOSER_BASE_MODEL_ENDPOINT).hostname
if LORAHUB_INTERNAL_HOST:
    ALLOWED_HOSTS.append(LORAHUB_INTERNAL_HOST)
COMPOSER_BASE_MODEL_CACHE_BYTES = env_int("COMPOSER_BASE_MODEL_CACHE_BYTES", 50 * 1024**3)
# Local copies of stored input files on each worker (COMPOSER_WORK_DIR/blobs), at most.
COMPOSER_INPUT_CACHE_BYTES = env_int("COMPOSER_INPUT_CACHE_BYTES", 20 * 1024**3)
# A store or upstream briefly away: a job's start (base model, inputs) tries again for up to
# COMPOSER_START_RETRY_SECONDS, the write of a finished result (kept on the worker's disk
# meanwhile) for up to COMPOSER_RESULT_SAVE_SECONDS, pausing 1, 2, 4... up to the most.
COMPOSER_START_RETRY_SECONDS = float(os.environ.get("COMPOSER_START_RETRY_SECONDS", "120"))
COMPOSER_RESULT_SAVE_SECONDS = float(os.environ.get("COMPOSER_RESULT_SAVE_SECONDS", "3600"))
COMPOSER_RETRY_FIRST_PAUSE_SECONDS = float(
    os.environ.get("COMPOSER_RETRY_FIRST_PAUSE_SECONDS", "1")
)
COMPOSER_RETRY_MAX_PAUSE_SECONDS = float(os.environ.get("COMPOSER_RETRY_MAX_PAUSE_SECONDS", "30"))
# A base model's download ends within this many seconds, however slowly a server sends.
COMPOSER_BASE_MODEL_DOWNLOAD_SECONDS = float(
    os.environ.get("COMPOSER_BASE_MODEL_DOWNLOAD_SECONDS", "3600")
)
# A worker declines jobs (they wait for another worker) while its COMPOSER_WORK_DIR has less
# free disk, or the machine less available memory, than these.
COMPOSER_MIN_FREE_DISK_BYTES = env_int("COMPOSER_MIN_FREE_DISK_BYTES", 2 * 1024**3)
COMPOSER_MIN_FREE_MEMORY_BYTES = env_int("COMPOSER_MIN_FREE_MEMORY_BYTES", 512 * 1024**2)
COMPOSER_DECLINE_PAUSE_SECONDS = float(os.environ.get("COMPOSER_DECLINE_PAUSE_SECONDS", "10"))
# A queued job whose message went out longer ago than this is sent again (a broker that
# lost its data); one never sent (broker unreachable at submit) at the next maintenance.
COMPOSER_QUEUED_STALE_SECONDS = float(os.environ.get("COMPOSER_QUEUED_STALE_SECONDS", "300"))
# After a broker call fails, pages send nothing for this long (the workers' rounds do):
# each call to a frozen broker waits out its socket timeout.
COMPOSER_BROKER_PAUSE_SECONDS = float(os.environ.get("COMPOSER_BROKER_PAUSE_SECONDS", "30"))
COMPOSER_RESEND_BATCH = env_int("COMPOSER_RESEND_BATCH", 500)
# Every worker settles dead workers' jobs and re-sends lost messages this often.
COMPOSER_MAINTENANCE_SECONDS = float(
    os.environ.get("COMPOSER_MAINTENANCE_SECONDS", COMPOSER_HEARTBEAT_STALE_SECONDS / 4)
)
# ... and removes leftovers (composer/sweep.py) older than the grace period this often.
COMPOSER_SWEEP_SECONDS = float(os.environ.get("COMPOSER_SWEEP_SECONDS", "3600"))
COMPOSER_SWEEP_GRACE_SECONDS = float(os.environ.get("COMPOSER_SWEEP_GRACE_SECONDS", "86400"))
# Jobs one user may have queued or running at once; the queue takes users in turn.
COMPOSER_MAX_ACTIVE_JOBS_PER_USER = env_int("COMPOSER_MAX_ACTIVE_JOBS_PER_USER", 4)
# Jobs of one user running at once (on all workers together); the rest wait in the queue.
COMPOSER_MAX_RUNNING_JOBS_PER_USER = env_int("COMPOSER_MAX_RUNNING_JOBS_PER_USER", 2)
# Try it: per-user limits, the input's size, the output's length and the fast lane's limits.
COMPOSER_TRY_MAX_ACTIVE = env_int("COMPOSER_TRY_MAX_ACTIVE", 2)
COMPOSER_TRY_PER_HOUR = env_int("COMPOSER_TRY_PER_HOUR", 60)
COMPOSER_TRY_MAX_CHARS = env_int("COMPOSER_TRY_MAX_CHARS", 500)
COMPOSER_TRY_MAX_NEW_TOKENS = env_int("COMPOSER_TRY_MAX_NEW_TOKENS", 64)
COMPOSER_TRY_TIME_LIMIT = env_int("COMPOSER_TRY_TIME_LIMIT", 120)
COMPOSER_TRY_WAIT_SECONDS = env_int("COMPOSER_TRY_WAIT_SECONDS", 60)
# The most adapter work one try may cost: the adapter's parameters x its tokens (input bytes
# + COMPOSER_TRY_MAX_NEW_TOKENS); about a second of a CPU. Raise it for a GPU fast lane.
COMPOSER_TRY_MAX_WORK = env_int("COMPOSER_TRY_MAX_WORK", 10**10)
