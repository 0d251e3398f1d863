"""Base models kept loaded in a worker process between jobs.

Loading a base model is the slowest part of a short job, so each worker child keeps the
most recently used ones (LRU, at most COMPOSER_MODEL_CACHE_SIZE), keyed by (resolved base
directory, device). The engine receives the cache as `model_cache` and must leave the
model as it found it (no adapter left injected, eval mode).
"""

import gc
import threading
from collections import OrderedDict
from pathlib import Path


class BaseModelCache:
    def __init__(self, maxsize: int):
        self.maxsize = max(0, maxsize)
        self._items: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, base_dir, device) -> tuple:
        """(model, tokenizer) for `base_dir` on `device`, loaded on first use."""
        from composer.engine.base_models import load_base_model, load_tokenizer

        key = (str(Path(base_dir).resolve()), str(device))
        with self._lock:
            if key in self._items:
                self.hits += 1
                self._items.move_to_end(key)
                return self._items[key]
            self.misses += 1
            item = (load_base_model(base_dir, device=device), load_tokenizer(base_dir))
            if self.maxsize:
                self._items[key] = item
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
                    _release(device)
            return item

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            devices = {device for _, device in self._items}
            self._items.clear()
            for device in devices:
                _release(device)


def _release(device: str) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


_process_cache: BaseModelCache | None = None


def process_model_cache() -> BaseModelCache:
    """This process's cache, created on first use (inside the worker child, after fork)."""
    global _process_cache
    if _process_cache is None:
        from django.conf import settings

        _process_cache = BaseModelCache(settings.COMPOSER_MODEL_CACHE_SIZE)
    return _process_cache
