"""The hostile-input suite reuses the catalog's fixtures: real PEFT adapters on a tiny T5."""

from tests.hub.conftest import (  # noqa: F401 (fixtures)
    adapter_dirs,
    empty_cache,
    fast_password_hashing,
    make_adapter,
    media_root,
    tiny_t5,
)
