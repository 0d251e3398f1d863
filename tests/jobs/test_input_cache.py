"""A worker's local copies of stored files: keyed by sha256, checked, bounded, and never
pulled from under a running job."""

import hashlib
import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from composer.input_cache import cache_root, cached_blob, link_blob
from hub.models import Blob

pytestmark = pytest.mark.django_db


@pytest.fixture
def dirs(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.COMPOSER_WORK_DIR = tmp_path / "work"
    settings.COMPOSER_INPUT_CACHE_BYTES = 250
    return tmp_path


def stored(content: bytes) -> Blob:
    sha = hashlib.sha256(content).hexdigest()
    name = default_storage.save(f"blobs/{sha}", ContentFile(content))
    return Blob.objects.create(sha256=sha, size=len(content), storage_name=name)


def test_least_recently_used_copies_go_to_stay_under_the_bound(dirs):
    a, b, c = (stored(bytes([i]) * 100) for i in range(3))
    link_blob(a, dirs / "job-a")  # a running job holds a's bytes
    os.utime(cached_blob(a), (time.time() - 60,) * 2)
    cached_blob(b)
    cached_blob(c)  # 300 bytes > 250: the least recently used copy (a) goes
    assert sorted(p.name for p in cache_root().iterdir()) == sorted([b.sha256, c.sha256])
    assert (dirs / "job-a").read_bytes() == bytes([0]) * 100  # the job's link is intact
    assert sum(p.stat().st_size for p in cache_root().iterdir()) <= 250


def test_a_stored_file_that_does_not_match_its_sha256_is_refused(dirs):
    blob = stored(b"x" * 10)
    with default_storage.open(blob.storage_name, "wb") as fh:
        fh.write(b"tampered!!")
    with pytest.raises(OSError, match="does not match its sha256"):
        cached_blob(blob)
    assert list(cache_root().iterdir()) == []  # nothing half-written stays


def test_a_file_larger_than_the_cache_is_a_message(dirs):
    with pytest.raises(ValueError, match="larger than this worker's input cache"):
        cached_blob(stored(b"y" * 300))


def test_a_copy_gone_while_the_cache_is_listed_is_passed_over(dirs):
    """The fast lane's worker and the jobs' worker of one machine share the cache, so one
    may evict a copy between the other's listing and its look at that copy (here: a link
    to nothing, listed but gone). Making room passed that copy over instead of failing."""
    a, b = stored(b"a" * 100), stored(b"b" * 100)
    cached_blob(a)
    (cache_root() / ("0" * 64)).symlink_to(dirs / "evicted")
    assert cached_blob(b).read_bytes() == b"b" * 100
    c = stored(b"c" * 100)
    assert cached_blob(c).read_bytes() == b"c" * 100  # 300 bytes > 250: a is evicted
    assert not (cache_root() / a.sha256).exists()
