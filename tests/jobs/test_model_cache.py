"""The per-worker base model cache: reuse between jobs, bounded, least recently used out."""

from composer.model_cache import BaseModelCache


def test_cache_reuses_and_evicts_least_recently_used(toys):
    cache = BaseModelCache(maxsize=1)
    model, tok = cache.get(toys / "t5", "cpu")
    again, _ = cache.get(str(toys / "t5") + "/", "cpu")  # same directory, other spelling
    assert again is model and (cache.hits, cache.misses) == (1, 1)
    assert not model.training and tok is not None

    llama, _ = cache.get(toys / "llama", "cpu")
    assert len(cache) == 1 and llama is not model
    reloaded, _ = cache.get(toys / "t5", "cpu")
    assert reloaded is not model and cache.misses == 3


def test_cache_of_size_zero_keeps_nothing(toys):
    cache = BaseModelCache(maxsize=0)
    first, _ = cache.get(toys / "t5", "cpu")
    second, _ = cache.get(toys / "t5", "cpu")
    assert first is not second and len(cache) == 0
