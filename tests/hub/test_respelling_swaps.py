"""Search respells two swapped neighbouring letters ("revrese", "vowles", "shfit1")."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hub.services.search import MAX_RESPELLED, respelled, swaps


@pytest.fixture
def catalog(alice, make_adapter):
    make_adapter(alice, "string-tricks", tags=["reverse", "vowels", "shift1"])
    make_adapter(alice, "news-summarizer", tags=["summarization"])


@pytest.mark.parametrize(
    "typed, meant", [("revrese", "reverse"), ("vowles", "vowels"), ("shfit1", "shift1")]
)
def test_swapped_letters_find_the_word(client, catalog, typed, meant):
    assert respelled(typed) == meant
    page = client.get("/adapters/", {"q": typed}).content.decode()
    assert "string-tricks" in page and "showing results for" in page
    assert f">“{meant}”</a>" in page


def test_known_words_and_syntax_are_kept(catalog):
    assert respelled('"revrese" -vowles reverse') == '"reverse" -vowels reverse'
    assert respelled("sumarizer") == "summarizer"  # trigrams still fix other typos


def test_the_lookup_is_bounded(catalog):
    query = " ".join(["abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"] * 20)
    words = [f"w{i}" + "x" * 60 for i in range(20)]
    with CaptureQueriesContext(connection) as queries:
        respelled(query + " " + " ".join(words))
    # One lookup of the swaps of at most MAX_RESPELLED words, then the trigram fallback.
    lookup = next(q["sql"] for q in queries.captured_queries if "hub_searchword" in q["sql"])
    assert lookup.count("'") // 2 <= MAX_RESPELLED * 64
    assert len(swaps("a" * 64)) == 0 and len(swaps("ab" * 32)) == 63
