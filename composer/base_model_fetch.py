"""A worker's local copy of a base model, downloaded on demand into a bounded cache.

A base model registered with files (hub.services.base_models) is downloaded by its
identifier with huggingface_hub from COMPOSER_BASE_MODEL_ENDPOINT (this site's Hub API, or
the Hugging Face Hub) into COMPOSER_WORK_DIR/base-models/<id>@<commit>/, once per machine:
files go to a temporary folder renamed into place when complete, under a file lock, so
concurrent jobs on one machine download a model once and never load half of one. The cache
holds at most COMPOSER_BASE_MODEL_CACHE_BYTES; the least recently used models are removed
to make room. A base model's `local_path` folder is used instead where this machine has it.

A hub briefly away (no answer, a 5xx, a download cut short) is tried again with backoff for
COMPOSER_START_RETRY_SECONDS; a refusal (4xx) is not. However slowly a server sends, the
download (retries and the wait for another job's download of the same model included) ends
within COMPOSER_BASE_MODEL_DOWNLOAD_SECONDS, and as soon as `should_stop()` says so (a
cancel): a timer interrupts even a read that waits for bytes.
"""

import fcntl
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

READY = ".ready"  # written last; its mtime is the model's last use (LRU)
# (bytes done, bytes in all) as the download goes
Progress = Callable[[int, int], None]


def cache_root() -> Path:
    return Path(settings.COMPOSER_WORK_DIR) / "base-models"


def folder_name(identifier: str, commit: str) -> str:
    return f"{identifier.replace('/', '--')}@{commit}"


class Stopped(Exception):
    """The download was asked to stop (a cancel)."""


class TooSlow(Exception):
    """The download ran past its deadline."""


def base_model_path(
    base_model,
    *,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """A local `from_pretrained` folder of `base_model`, downloaded first if needed.

    Raises ValueError with a message for the user when the model cannot be had, and
    `Stopped` when `should_stop()` became true while it downloaded.
    """
    local = Path(base_model.local_path) if base_model.local_path else None
    if local is not None and (local / "config.json").is_file():
        return local  # this machine has the folder (the demo's, a single-machine install)
    if not base_model.commit:
        raise ValueError(
            f"No worker has the base model {base_model.identifier}, and its files are not "
            "registered on the hub for workers to download (manage.py base_model_register)."
        )
    target = cache_root() / folder_name(base_model.identifier, base_model.commit)
    if not (target / READY).exists():
        cache_root().mkdir(parents=True, exist_ok=True)
        seconds = settings.COMPOSER_BASE_MODEL_DOWNLOAD_SECONDS
        try:
            with interrupted_after(seconds, should_stop or (lambda: False)):
                with _locked(cache_root() / ".lock"):
                    if not (target / READY).exists():
                        _download(base_model, target, on_progress or (lambda done, total: None))
        except TooSlow:
            endpoint = settings.COMPOSER_BASE_MODEL_ENDPOINT
            raise ValueError(
                f"The base model {base_model.identifier} did not download from {endpoint} "
                f"within {seconds:g} s (COMPOSER_BASE_MODEL_DOWNLOAD_SECONDS)."
            ) from None
    (target / READY).touch()
    return target


class _Deadline(BaseException):
    """Raised by the timer; a BaseException so that no library's `except Exception` (a
    retry inside huggingface_hub) swallows it."""


@contextmanager
def interrupted_after(seconds: float, should_stop: Callable[[], bool]):
    """Raise TooSlow past `seconds`, Stopped once `should_stop()`, in this thread
    wherever it waits (a read, a lock), checked twice a second by a SIGALRM timer; in a
    thread other than the main one (no signals there), only on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    deadline = time.monotonic() + seconds
    stop = {"why": None}

    def tick(signum, frame) -> None:
        if stop["why"] is None and (time.monotonic() >= deadline or should_stop()):
            stop["why"] = "stop" if time.monotonic() < deadline else "deadline"
            raise _Deadline()

    previous = signal.signal(signal.SIGALRM, tick)
    signal.setitimer(signal.ITIMER_REAL, 0.5, 0.5)
    try:
        yield
    except _Deadline:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if stop["why"] == "stop":
        raise Stopped()
    if stop["why"] == "deadline":
        raise TooSlow()


def _transient(error: BaseException) -> bool:
    """A hub that did not answer, answered 5xx or cut a download short: worth a retry."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else 0
        return status >= 500 or status in (408, 429)
    if isinstance(error, httpx2.HTTPError):
        return True  # no answer: refused, timed out, cut
    # huggingface_hub's size check on a download cut short (an OSError without errno)
    return isinstance(error, OSError) and error.errno is None


def _download(base_model, target: Path, on_progress: Progress) -> None:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    from composer.retry import with_backoff

    endpoint = settings.COMPOSER_BASE_MODEL_ENDPOINT
    identifier = base_model.identifier
    try:
        with_backoff(
            lambda: _download_once(base_model, target, on_progress),
            transient=_transient,
            total=settings.COMPOSER_START_RETRY_SECONDS,
            what=f"downloading the base model {identifier}",
        )
    except HfHubHTTPError as error:
        message = error.server_message or str(error).splitlines()[0]
        raise ValueError(
            f"The hub at {endpoint} refused the base model {identifier}: {message}"
        ) from None
    except httpx2.HTTPError as error:  # no answer: connection refused, timeout
        raise ValueError(
            f"Could not reach {endpoint} to download the base model {identifier}: {error}"
        ) from None
    except OSError as error:
        raise ValueError(f"Could not download the base model {identifier}: {error}") from None


def _internal_headers() -> dict[str, str]:
    """Workers ask the web directly, not through the HTTPS proxy whose header the web then
    trusts (SECURE_PROXY_SSL_HEADER): without it, it would redirect them to https://web:8000."""
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not header:
        return {}
    name, value = header
    return {name.removeprefix("HTTP_").replace("_", "-").title(): value}


def _download_once(base_model, target: Path, on_progress: Progress) -> None:
    from huggingface_hub import HfApi, hf_hub_download

    from hfapi.progress import counting_bar

    endpoint = settings.COMPOSER_BASE_MODEL_ENDPOINT
    identifier, commit = base_model.identifier, base_model.commit
    headers = _internal_headers()
    info = HfApi(endpoint=endpoint, token=False, headers=headers).model_info(
        identifier, revision=commit, files_metadata=True
    )
    files = [(s.rfilename, s.size or 0) for s in info.siblings]
    total = sum(size for _, size in files)
    _make_room(total, identifier)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        on_progress(min(done, total), total)

    on_progress(0, total)
    tmp = Path(tempfile.mkdtemp(dir=cache_root(), prefix=".download-"))
    try:
        for filename, _ in files:
            hf_hub_download(
                identifier,
                filename,
                revision=commit,
                endpoint=endpoint,
                token=False,
                headers=headers,
                local_dir=tmp,
                tqdm_class=counting_bar(advance),
            )
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's metadata
        (tmp / READY).touch()
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _make_room(needed: int, identifier: str) -> None:
    """Remove least recently used models until `needed` more bytes fit in the cache."""
    bound = settings.COMPOSER_BASE_MODEL_CACHE_BYTES
    if needed > bound:
        raise ValueError(
            f"The base model {identifier} ({needed / 1e9:.2f} GB) is larger than this worker's "
            f"base model cache ({bound / 1e9:.2f} GB, COMPOSER_BASE_MODEL_CACHE_BYTES)."
        )
    models = []
    for folder in cache_root().iterdir():
        ready = folder / READY
        if folder.is_dir() and ready.exists():
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            models.append((ready.stat().st_mtime, size, folder))
        elif folder.name.startswith(".download-"):
            shutil.rmtree(folder, ignore_errors=True)  # left by a killed download
    used = sum(size for _, size, _ in models)
    for _, size, folder in sorted(models):
        if used + needed <= bound:
            break
        shutil.rmtree(folder, ignore_errors=True)
        used -= size


@contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def phase_reporter(job) -> Progress:
    """Writes the download's progress as the job's phase, at most every
    COMPOSER_PROGRESS_SECONDS (and at the start and the end)."""
    from composer.lifecycle import running

    name = job.base_model.identifier if job.base_model else "the base model"
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if 0 < done < total and now - last < settings.COMPOSER_PROGRESS_SECONDS:
            return
        last = now
        percent = 100 * done // total if total else 100
        verb = "Downloaded" if done >= total else "Downloading"
        text = f"{verb} base model {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB ({percent}%)"
        running(job).update(phase=text)

    return report
