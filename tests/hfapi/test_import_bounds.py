"""An import from a hostile upstream (a real HTTP server that lies): files too large for the
catalog are refused from the listing before a byte is downloaded, or as soon as their bytes
pass the limit; redirects to internal addresses are never followed."""

import pytest

from hfapi.upstream import UpstreamError, adapter_import
from hub.models import Adapter
from tests.hfapi.hostile_upstream import HostileUpstream, Listener, RepoPlan

pytestmark = pytest.mark.django_db
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


@pytest.fixture
def hostile(adapter_dir):
    server = HostileUpstream()
    server.files = {f: (adapter_dir / f).read_bytes() for f in (CONFIG, WEIGHTS)}
    yield server
    server.close()


@pytest.fixture
def storage_dirs(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def internal():
    listener = Listener()
    yield listener
    listener.close()


def test_an_honest_import_from_the_test_server_works(alice, hostile, storage_dirs):
    """The server speaks enough of the Hub API: what the other tests refuse is refused for
    their lie alone."""
    hostile.repos["evil/plain"] = RepoPlan(files=hostile.files)
    adapter = adapter_import(user=alice, source="evil/plain", endpoint=hostile.url)
    assert adapter.current_version.files.get(filename=WEIGHTS).blob.size == len(
        hostile.files[WEIGHTS]
    )


def test_a_listed_size_past_the_limit_is_refused_before_downloading(
    alice, hostile, settings, storage_dirs
):
    settings.LORAHUB_MAX_FILE_BYTES = 10 * 1024**2
    hostile.repos["evil/huge"] = RepoPlan(files=hostile.files, listed={WEIGHTS: 3 * 1024**3})
    with pytest.raises(UpstreamError, match="adapter_model.safetensors is larger than the 10.0"):
        adapter_import(user=alice, source="evil/huge", endpoint=hostile.url)
    assert [r for r in hostile.requests if "/resolve/" in r] == []
    assert not Adapter.objects.exists()


def test_a_body_longer_than_listed_is_cut_at_the_limit(alice, hostile, settings, storage_dirs):
    settings.LORAHUB_MAX_FILE_BYTES = 1024**2
    sent = 400 * 1024**2
    hostile.repos["evil/liar"] = RepoPlan(
        files=hostile.files, listed={WEIGHTS: 1000}, stream={WEIGHTS: sent}
    )
    with pytest.raises(UpstreamError, match=r"is larger than the 1.0\sMB"):
        adapter_import(user=alice, source="evil/liar", endpoint=hostile.url)
    # The client hung up after its first chunks (socket buffers hold a few more MB).
    assert hostile.sent[WEIGHTS] < 100 * 1024**2
    assert not Adapter.objects.exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "10.0.0.7"])
def test_a_redirect_to_an_internal_address_is_refused(alice, hostile, internal, storage_dirs, host):
    target = f"http://{host}:{internal.port}/secret"
    hostile.repos["evil/redirect"] = RepoPlan(files=hostile.files, redirect={WEIGHTS: target})
    with pytest.raises(UpstreamError, match=f"sent this download to {host}, which is not a pub"):
        adapter_import(user=alice, source="evil/redirect", endpoint=hostile.url)
    assert internal.hits == []
    assert not Adapter.objects.exists()


def test_a_redirect_within_the_upstream_is_followed(alice, hostile, storage_dirs):
    """The upstream's own origin (the operator chose it) is no internal address to refuse."""
    hostile.repos["evil/moved"] = RepoPlan(
        files=hostile.files, redirect={WEIGHTS: f"{hostile.url}/evil/plain/resolve/x/{WEIGHTS}"}
    )
    hostile.repos["evil/plain"] = RepoPlan(files=hostile.files)
    adapter = adapter_import(user=alice, source="evil/moved", endpoint=hostile.url)
    assert adapter.name == "moved"
    assert f"GET /evil/plain/resolve/x/{WEIGHTS}" in hostile.requests
