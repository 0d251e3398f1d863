"""Catalog search: PostgreSQL full-text search, icontains on SQLite; typo correction on both.

Adapter.search_text (tags, task, base model, owner) and Adapter.search_vector are
denormalised; adapters_reindex refreshes them, and adds public adapters' words to
SearchWord (what typos are respelled to), after a change or a bulk load.
"""

import math
import re
from collections import Counter
from typing import NamedTuple

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Length

from ..models import Adapter, SearchWord

SEARCH_CONFIG = "english"
# Trigram similarity from which a catalog word counts as the one a typo meant.
CORRECTION_THRESHOLD = 0.4
BATCH = 2000
# A word as SearchWord keeps it: lowercase, from a letter on, 3 to 64 characters.
WORD = re.compile(r"[a-z][a-z0-9]{2,63}")
# How many matches a search ranks (see adapters_search).
RANK_POOL = 1000
# Words of one query looked up for respelling (one index probe each), the first ones typed.
MAX_RESPELLED = 8
# A query's words as typed (respelled in place, the rest of the query left as it is).
QUERY_WORD = re.compile(r"[^\W_]+")


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
    """Refresh search_text (and, on PostgreSQL, search_vector) of these adapters, and the
    counts of their words in SearchWord.

    Weights: name A, tags/task/base model B, model card C. Each BATCH of adapters is one
    transaction that locks their rows before reading the words they count for, so two
    reindexes of one adapter at once count its words once.
    """
    pks = list(adapters.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), BATCH):
        with transaction.atomic():
            _reindex(pks[start : start + BATCH])


def _reindex(pks: list[int]) -> None:
    locked = (
        Adapter.objects.filter(pk__in=pks)
        .order_by("pk")
        .select_for_update(of=("self",))
        .select_related("base_model", "owner")
        .prefetch_related("tags")
    )
    adapters = list(locked)
    counts = Counter()
    for adapter in adapters:
        adapter.search_text = adapter_search_text(adapter)
        # Private adapters' words stay out: a respelling must not reveal them.
        words = set()
        if not adapter.private:
            words = adapter_words(adapter.name, adapter.description, adapter.search_text)
        counts.update(_words_change(adapter, words))
    Adapter.objects.bulk_update(adapters, ["search_text", "search_words"])
    if is_postgres() and adapters:
        Adapter.objects.filter(pk__in=pks).update(
            search_vector=SearchVector("name", weight="A", config=SEARCH_CONFIG)
            + SearchVector("search_text", weight="B", config=SEARCH_CONFIG)
            + SearchVector("description", weight="C", config=SEARCH_CONFIG)
        )
    search_words_count(counts)


def adapter_words_forget(adapter: Adapter) -> None:
    """Before `adapter` is deleted: its words no longer count for respelling."""
    words = Adapter.objects.filter(pk=adapter.pk).values_list("search_words", flat=True)
    search_words_count(Counter({w: -1 for w in (words.first() or "").split()}))


def _words_change(adapter: Adapter, words: set[str]) -> dict[str, int]:
    """Set the words `adapter` counts for (its search_words) to `words`: +1 for each new
    word, -1 for each dropped one."""
    old = set(adapter.search_words.split())
    adapter.search_words = " ".join(sorted(words))
    return {w: 1 for w in words - old} | {w: -1 for w in old - words}


def search_words_count(counts: Counter) -> None:
    """Apply per-word changes in the number of public adapters using each word; a word no
    public adapter uses any more is dropped, so a respelling never reveals one that went
    private, was deleted or left a card.

    Additions are upserts that add to the stored count: one that meets another
    transaction dropping the same word at 0 inserts it again when that one commits, rather
    than updating a row that is gone.
    """
    added = sorted((w, change) for w, change in counts.items() if change > 0)
    for start in range(0, len(added), BATCH):
        _words_add(added[start : start + BATCH])
    by_change: dict[int, list[str]] = {}
    for word, change in sorted(counts.items()):
        if change < 0:
            by_change.setdefault(change, []).append(word)
    for change, words in by_change.items():
        for start in range(0, len(words), BATCH):
            chunk = words[start : start + BATCH]
            SearchWord.objects.filter(word__in=chunk).update(adapters=F("adapters") + change)
    dropped = [w for w, change in counts.items() if change < 0]
    for start in range(0, len(dropped), BATCH):
        SearchWord.objects.filter(word__in=dropped[start : start + BATCH], adapters__lte=0).delete()


def _words_add(rows: list[tuple[str, int]]) -> None:
    """Add to the counts of these words, inserting the words not stored yet."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO hub_searchword AS s (word, adapters) VALUES "
            + ", ".join(["(%s, %s)"] * len(rows))
            + " ON CONFLICT (word) DO UPDATE SET adapters = s.adapters + excluded.adapters",
            [value for row in rows for value in row],
        )


def adapter_words(*texts: str) -> set[str]:
    """The SearchWord words of an adapter's texts (name, model card, search_text)."""
    return {word for text in texts for word in WORD.findall(text.lower())}


def adapters_matching(adapters: QuerySet[Adapter], q: str) -> tuple[QuerySet[Adapter], str]:
    """Adapters matching `q`, unordered, and the query searched: `q` itself, or `q`
    respelled when `q` matched nothing.

    PostgreSQL: websearch syntax ("quoted phrases", -exclusions, OR) through the full-text
    GIN index. When nothing matches, each word of `q` that is not a catalog word is
    respelled to the nearest one (see respelled) and the respelled query is searched.
    SQLite: every word must appear in the name, card or tags (respelled the same way).
    """
    q = q.strip()
    if not q:
        return adapters, q
    found = _matching(adapters, q)
    if not found.exists():
        fixed = respelled(q)
        if fixed != q:
            return _matching(adapters, fixed), fixed
    return found, q


def _matching(adapters: QuerySet[Adapter], q: str) -> QuerySet[Adapter]:
    if is_postgres():
        return adapters.filter(search_vector=_query(q))
    for word in q.split():
        adapters = adapters.filter(
            Q(name__icontains=word)
            | Q(description__icontains=word)
            | Q(search_text__icontains=word)
        )
    return adapters


class Search(NamedTuple):
    adapters: QuerySet[Adapter]  # best first
    searched: str  # the query searched: as typed, or respelled
    matches: int | None  # how many (up to RANK_POOL + 1), where counted while searching


def adapters_search(adapters: QuerySet[Adapter], q: str) -> Search:
    """adapters_matching, best first: on PostgreSQL annotated with `relevance` (SearchRank)
    and ordered by it, on SQLite by downloads.

    Ranking reads every ranked row's search vector: one common word matches a quarter of
    the catalog (23,000 rows at 100,000 adapters, 35 ms). So only the RANK_POOL most
    downloaded matches are ranked (the list pages through no more, see COUNT_CAP in the
    views), plus one so that the list can tell there are more. Their keys are read once
    here: paging filters on them rather than searching again, and they are the count.
    """
    q = q.strip()
    if not q or not is_postgres():
        found, searched = adapters_matching(adapters, q)
        return Search(found.order_by("-downloads", "name") if searched else found, searched, None)
    searched = q
    pool = _most_downloaded_matches(adapters, q)
    if not pool:
        fixed = respelled(q)
        if fixed != q:
            searched, pool = fixed, _most_downloaded_matches(adapters, fixed)
    # One array parameter rather than an IN list of a thousand: cheaper to send and plan.
    keys = RawSQL("SELECT unnest(%s::bigint[])", [pool])
    ranked = (
        adapters.filter(pk__in=keys)
        .annotate(relevance=SearchRank(F("search_vector"), _query(searched)))
        .order_by("-relevance", "-downloads", "name")
    )
    return Search(ranked, searched, len(pool))


def _most_downloaded_matches(adapters: QuerySet[Adapter], q: str) -> list[int]:
    found = adapters.filter(search_vector=_query(q)).order_by("-downloads", "name")
    return list(found.values_list("pk", flat=True)[: RANK_POOL + 1])


def _query(q: str) -> SearchQuery:
    return SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)


def respelled(q: str) -> str:
    """`q` with each word that is not a catalog word replaced by the most similar one
    (trigram similarity at least CORRECTION_THRESHOLD); the query's syntax is kept."""
    typed = (w.lower() for w in QUERY_WORD.findall(q))
    words = list(dict.fromkeys(w for w in typed if WORD.fullmatch(w)))[:MAX_RESPELLED]
    if not words:
        return q
    fixes = _swapped(words)
    rest = [w for w in words if w not in fixes]
    if rest:
        fixes |= _nearest_indexed(rest) if is_postgres() else _nearest_scanned(rest)
    return QUERY_WORD.sub(lambda m: fixes.get(m.group().lower(), m.group()), q)


def swaps(word: str) -> list[str]:
    """`word` with two neighbouring letters swapped, at each place, left to right."""
    return [
        word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        for i in range(len(word) - 1)
        if word[i] != word[i + 1]
    ]


def _swapped(words: list[str]) -> dict[str, str]:
    """{typed: catalog word} for the words that are not catalog words but become one by
    swapping two neighbouring letters ("revrese" -> "reverse"), a typo that trigrams judge
    far off (each swap changes up to four trigrams). One lookup of at most
    MAX_RESPELLED * 63 strings, by primary key."""
    variants = {typed: swaps(typed) for typed in words}
    wanted = set(words).union(*variants.values())
    known = set(SearchWord.objects.filter(word__in=wanted).values_list("word", flat=True))
    fixes = {}
    for typed, options in variants.items():
        found = [o for o in options if o in known]
        if typed not in known and found:
            fixes[typed] = found[0]
    return fixes


def _nearest_indexed(words: list[str]) -> dict[str, str]:
    """{typed: nearest catalog word} for the words that have one and are not catalog words.

    One query: the GiST trigram index on SearchWord finds each word's nearest neighbour
    (`<->`, distance = 1 - similarity) without comparing it to every word.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT typed.word, nearest.word FROM unnest(%s::text[]) AS typed(word) "
            "CROSS JOIN LATERAL (SELECT s.word FROM hub_searchword s "
            "ORDER BY s.word <-> typed.word LIMIT 1) AS nearest "
            "WHERE nearest.word <> typed.word AND similarity(nearest.word, typed.word) >= %s",
            [words, CORRECTION_THRESHOLD],
        )
        return dict(cursor.fetchall())


def _nearest_scanned(words: list[str]) -> dict[str, str]:
    """_nearest_indexed without the index (SQLite): pg_trgm's similarity computed here over
    the catalog words whose length lets them reach the threshold. A word of n letters has
    n + 1 trigrams (fewer when letters repeat) and a similarity is at most the smaller
    trigram count over the larger, so only such lengths are read."""
    known = set(SearchWord.objects.filter(word__in=words).values_list("word", flat=True))
    fixes = {}
    for typed in words:
        if typed in known:
            continue
        grams = trigrams(typed)
        shortest = math.ceil(CORRECTION_THRESHOLD * len(grams)) - 1
        longest = math.floor(len(grams) / CORRECTION_THRESHOLD) - 1
        candidates = (
            SearchWord.objects.annotate(n=Length("word"))
            .filter(n__gte=shortest, n__lte=longest)
            .values_list("word", flat=True)
        )
        best = max(((similarity(grams, trigrams(w)), w) for w in candidates), default=(0.0, ""))
        if best[0] >= CORRECTION_THRESHOLD:
            fixes[typed] = best[1]
    return fixes


def trigrams(word: str) -> set[str]:
    """pg_trgm's trigrams of one lowercase word: of "  word " (two spaces before, one after)."""
    padded = f"  {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def similarity(a: set[str], b: set[str]) -> float:
    """pg_trgm's similarity of two words' trigram sets: shared / all."""
    return len(a & b) / len(a | b)
