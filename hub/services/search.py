"""Catalog search: PostgreSQL full-text search with a trigram fallback; icontains on SQLite.

Adapter.search_text (tags, task, base model, owner) and Adapter.search_vector are
denormalised; adapters_reindex refreshes them after a change (or a bulk load).
"""

import re

from django.contrib.postgres.search import (
    SearchQuery,
    SearchRank,
    SearchVector,
    TrigramSimilarity,
    TrigramWordSimilarity,
)
from django.db import connection
from django.db.models import Case, ExpressionWrapper, F, FloatField, Q, QuerySet, Value, When

from ..models import Adapter, BaseModel, Tag

SEARCH_CONFIG = "english"
# Trigram similarity from which a tag or base model name counts as the intended word.
CORRECTION_THRESHOLD = 0.4
BATCH = 2000
# How many candidates of each kind the typo fallback ranks (see _typo_fallback).
FALLBACK_POOL = 1000


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def adapter_search_text(adapter: Adapter) -> str:
    tags = " ".join(t.name for t in adapter.tags.all())
    return " ".join(
        part
        for part in (
            tags,
            adapter.task,
            adapter.base_model.identifier,
            adapter.owner.get_username(),
        )
        if part
    )


def adapters_reindex(adapters: QuerySet[Adapter]) -> None:
    """Refresh search_text (and, on PostgreSQL, search_vector) of these adapters.

    Weights: name A, tags/task/base model B, model card C.
    """
    adapters = adapters.select_related("base_model", "owner").prefetch_related("tags")
    pks = []
    batch = []
    for adapter in adapters.iterator(chunk_size=BATCH):
        adapter.search_text = adapter_search_text(adapter)
        batch.append(adapter)
        pks.append(adapter.pk)
        if len(batch) >= BATCH:
            Adapter.objects.bulk_update(batch, ["search_text"])
            batch = []
    if batch:
        Adapter.objects.bulk_update(batch, ["search_text"])
    if is_postgres() and pks:
        for start in range(0, len(pks), BATCH):
            Adapter.objects.filter(pk__in=pks[start : start + BATCH]).update(
                search_vector=SearchVector("name", weight="A", config=SEARCH_CONFIG)
                + SearchVector("search_text", weight="B", config=SEARCH_CONFIG)
                + SearchVector("description", weight="C", config=SEARCH_CONFIG)
            )


def adapters_search(adapters: QuerySet[Adapter], q: str) -> QuerySet[Adapter]:
    """Adapters matching `q`, best first (annotated with `relevance`).

    PostgreSQL: websearch syntax ("quoted phrases", -exclusions, OR) ranked with
    SearchRank; when nothing matches, a typo-tolerant fallback (_typo_fallback).
    SQLite: every word must appear in the name, card or tags.
    """
    q = q.strip()
    if not q:
        return adapters
    if not is_postgres():
        for word in q.split():
            adapters = adapters.filter(
                Q(name__icontains=word)
                | Q(description__icontains=word)
                | Q(search_text__icontains=word)
            )
        return adapters.order_by("-downloads", "name")
    query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
    found = (
        adapters.filter(search_vector=query)
        .annotate(relevance=SearchRank(F("search_vector"), query))
        .order_by("-relevance", "-downloads", "name")
    )
    if found.exists():
        return found
    return _typo_fallback(adapters, q)


def _typo_fallback(adapters: QuerySet[Adapter], q: str) -> QuerySet[Adapter]:
    """Adapters whose name is trigram-similar to `q`, or that match `q` spelled right.

    Both use an index: `name %> q` the trigram GIN index on names (word similarity at least
    pg_trgm.word_similarity_threshold, 0.6: about one typo in a six-letter word); the
    respelled words (see corrected_words) the full-text index. A respelled common word
    matches much of the catalog (23,000 adapters for "sumarizaton" at 100,000), so only a
    pool is ranked: the FALLBACK_POOL names most similar to `q` and the FALLBACK_POOL most
    downloaded full-text matches, each read once here (their keys), never ranked over the
    whole catalog. One more full-text match is read than is needed: when the pool leaves
    some out there are more than FALLBACK_POOL results, which the list (counting up to
    FALLBACK_POOL) shows as "1,000+".
    """
    similarity = TrigramWordSimilarity(q, "name")
    name_hits = list(
        adapters.filter(name__trigram_word_similar=q)
        .order_by(similarity.desc(), "-downloads", "name")
        .values_list("pk", flat=True)[:FALLBACK_POOL]
    )
    candidates = set(name_hits)
    relevance = Case(When(pk__in=name_hits, then=Value(1.0)), default=Value(0.0))
    words = corrected_words(q)
    if words:
        query = SearchQuery(" or ".join(words), search_type="websearch", config=SEARCH_CONFIG)
        # The list's own order walks the downloads index and stops at the pool's size.
        candidates.update(
            adapters.filter(search_vector=query)
            .order_by("-downloads", "name")
            .values_list("pk", flat=True)[: FALLBACK_POOL + 1]
        )
        relevance = relevance + SearchRank(F("search_vector"), query)
    return (
        adapters.filter(pk__in=candidates)
        .annotate(relevance=ExpressionWrapper(relevance, output_field=FloatField()))
        .order_by("-relevance", "-downloads", "name")
    )


def corrected_words(q: str) -> list[str]:
    """The catalog's own spelling of each word of `q`: the most similar tag or base model
    name (trigram similarity at least CORRECTION_THRESHOLD). Both tables are small."""
    corrected = []
    for word in dict.fromkeys(w.lower() for w in re.findall(r"[\w.-]{3,}", q)):
        candidates = [
            model.objects.annotate(similarity=TrigramSimilarity(field, word))
            .filter(similarity__gte=CORRECTION_THRESHOLD)
            .order_by("-similarity")
            .values_list(field, "similarity")
            .first()
            for model, field in ((Tag, "name"), (BaseModel, "identifier"))
        ]
        best = max((c for c in candidates if c), key=lambda c: c[1], default=None)
        if best:
            corrected.append(best[0])
    return corrected
