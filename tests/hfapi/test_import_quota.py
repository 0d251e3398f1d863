"""An import checks the upstream's announced sizes against the storage quota before it
downloads a byte (it downloaded everything first, then refused)."""

import pytest

from hfapi.upstream import UpstreamError, adapter_import
from hub.models import Adapter
from tests.hfapi.conftest import adapter_dir, tiny_base, upstream  # noqa: F401 (fixtures)


def test_an_import_past_the_quota_downloads_nothing(alice, upstream, settings):  # noqa: F811
    url, _ = upstream
    settings.LORAHUB_USER_QUOTA_BYTES = 1000
    progress = []
    with pytest.raises(UpstreamError, match="storage quota"):
        adapter_import(
            user=alice, source="carol/upstream-lora", endpoint=url, on_progress=progress.append
        )
    assert progress == [] and not Adapter.objects.exists()  # no "Downloading" line
