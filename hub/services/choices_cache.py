"""A cache for aggregates over the whole catalog, dropped whenever an adapter changes.

The adapter list's filter choices (base models, tasks, licenses, tags with counts, ranks)
and its total count aggregate every visible adapter: about 1.6 s of SQL per page at
100,000 adapters (bench/catalog_latency.py). They are cached for CHOICES_TTL seconds
under a generation number that every adapter write increments, so the process that
made a change sees it at once; other processes sharing only a local-memory cache see it
within the TTL (a shared cache backend such as Redis makes it immediate everywhere).
"""

from collections.abc import Callable

from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete, post_save

from ..models import Adapter

CHOICES_TTL = 60
GENERATION_KEY = "hub:choices:generation"


def cached_choices(scope: str, compute: Callable[[], dict]) -> dict:
    """compute() for `scope` (whose adapters it aggregates), from the cache if still fresh."""
    generation = cache.get_or_set(GENERATION_KEY, 0, timeout=None)
    return cache.get_or_set(f"hub:choices:{generation}:{scope}", compute, timeout=CHOICES_TTL)


def choices_invalidate(**kwargs) -> None:
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # not cached yet, or evicted
        cache.set(GENERATION_KEY, 1, timeout=None)


post_save.connect(choices_invalidate, sender=Adapter, dispatch_uid="hub_choices_save")
post_delete.connect(choices_invalidate, sender=Adapter, dispatch_uid="hub_choices_delete")
m2m_changed.connect(
    choices_invalidate, sender=Adapter.tags.through, dispatch_uid="hub_choices_tags"
)
