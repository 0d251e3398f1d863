"""Catalog search: PostgreSQL full-text search with a trigram fallback; icontains on SQLite.

Adapter.search_text (tags, task, base model, owner) and Adapter.search_vector are
denormalised; adapters_reindex refreshes them after a change (or a bulk load).
"""

from django.contrib.postgres.search import (
    SearchQuery,
    SearchRank,
    SearchVector,
    TrigramWordSimilarity,
)
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest

from ..models import Adapter

SEARCH_CONFIG = "english"
BATCH = 2000


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
    SearchRank; when nothing matches, names and tags similar to the query (typos).
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
    # `%>` (trigram_word_similar) uses the trigram GIN indexes; threshold
    # pg_trgm.word_similarity_threshold (0.6): about one typo in a six-letter word.
    return (
        adapters.filter(Q(name__trigram_word_similar=q) | Q(search_text__trigram_word_similar=q))
        .annotate(
            relevance=Greatest(
                TrigramWordSimilarity(q, "name"), TrigramWordSimilarity(q, "search_text")
            )
        )
        .order_by("-relevance", "-downloads", "name")
    )
