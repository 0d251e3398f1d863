"""The list page: filters, sorts, pagination and search (full-text on PostgreSQL)."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from hub.models import Adapter
from hub.services.adapters import adapter_update
from tests.services import require


@pytest.fixture
def catalog(alice, bob, make_adapter):
    make_adapter(
        alice, "news-summarizer", key="r8", task="summarization", license="apache-2.0",
        tags=["summarization", "news"], description="Summarises short news articles.",
    )  # fmt: skip
    make_adapter(
        bob, "sql-helper", task="text-generation", license="mit", tags=["code", "sql"],
        description="Turns a question about a table into a SQL query.",
    )  # fmt: skip
    make_adapter(
        bob, "story-writer", task="text-generation", license="mit", tags=["creative-writing"],
        description="Writes short stories, for example about yesterday's news.",
    )  # fmt: skip
    Adapter.objects.filter(name="sql-helper").update(downloads=50)
    Adapter.objects.filter(name="story-writer").update(downloads=7)


def names(client, **params) -> list[str]:
    response = client.get(reverse("hub:adapter_list"), params)
    assert response.status_code == 200
    return re.findall(
        r'class="adapter-name"><span class="owner">\w+/</span>([\w.-]+)<', response.content.decode()
    )


def test_filters(client, catalog):
    assert names(client, tag="sql") == ["sql-helper"]
    assert names(client, task="text-generation") == ["sql-helper", "story-writer"]
    assert names(client, license="apache-2.0") == ["news-summarizer"]
    assert names(client, r="8") == ["news-summarizer"]
    assert names(client, r="4", license="mit") == ["sql-helper", "story-writer"]
    assert names(client, base="lorahub/tiny-t5", tag="news") == ["news-summarizer"]
    assert names(client, base="other/model") == []
    assert names(client, r="not-a-number") == ["sql-helper", "story-writer", "news-summarizer"]


def test_sorts(client, catalog):
    assert names(client) == ["sql-helper", "story-writer", "news-summarizer"]  # downloads
    assert names(client, sort="name") == ["news-summarizer", "sql-helper", "story-writer"]
    assert names(client, sort="newest") == ["story-writer", "sql-helper", "news-summarizer"]


def test_adapters_without_a_version_are_not_listed(client, alice, make_adapter):
    make_adapter(alice, "with-version")
    base = Adapter.objects.get().base_model
    Adapter.objects.create(owner=alice, name="empty", base_model=base)
    assert names(client) == ["with-version"]


def test_many_pages(client, alice, make_adapter, monkeypatch):
    from hub.views import catalog as catalog_views

    monkeypatch.setattr(catalog_views, "PAGE_SIZE", 2)
    for i in range(5):
        make_adapter(alice, f"a{i}")
    first = names(client, sort="name")
    third = names(client, sort="name", page=3)
    assert (first, third) == (["a0", "a1"], ["a4"])
    page = client.get(reverse("hub:adapter_list"), {"sort": "name", "page": 2}).content.decode()
    assert "Page 2 of 3" in page and "sort=name&amp;page=3" in page


def test_search_finds_words_in_name_tags_and_card(client, catalog):
    assert names(client, q="sql") == ["sql-helper"]
    assert names(client, q="creative-writing") == ["story-writer"]
    assert "news-summarizer" in names(client, q="articles")
    assert names(client, q="nothing-like-this") == []


def test_search_sees_edits(client, catalog):
    adapter = Adapter.objects.get(name="sql-helper")
    adapter_update(
        adapter=adapter, description="Now about databases.", task="", license="mit",
        private=False, tags=["postgres"],
    )  # fmt: skip
    assert names(client, q="postgres") == ["sql-helper"]
    assert names(client, q="databases") == ["sql-helper"]


def test_postgres_ranking_websearch_and_typos(client, catalog):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    # Ranked: a match in the name (weight A) beats one in a model card (weight C).
    assert names(client, q="news") == ["news-summarizer", "story-writer"]
    # websearch syntax: exclusion and quoted phrases; english stemming.
    assert names(client, q="news -summarization") == ["story-writer"]
    assert names(client, q='"short stories"') == ["story-writer"]
    assert names(client, q="summarising") == ["news-summarizer"]
    # Typos fall back to trigram similarity over names and tags.
    assert names(client, q="sumarizer") == ["news-summarizer"]
    assert names(client, q="sql-helpr") == ["sql-helper"]
    # An explicit sort still applies to search results.
    assert names(client, q="news", sort="downloads") == ["story-writer", "news-summarizer"]


def test_postgres_search_index_is_used(catalog):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM hub_adapter "
            "WHERE search_vector @@ websearch_to_tsquery('english', 'news')"
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "hub_adapter_search_gin" in plan


def test_selected_rare_tag_stays_in_the_tag_filter(catalog):
    from hub.selectors import adapters_visible
    from hub.views.catalog import _popular_tags, _tag_counts

    visible = _tag_counts(adapters_visible(None))
    assert [t.name for t in _popular_tags(visible, selected="", limit=1)] == ["code"]
    tags = _popular_tags(visible, selected="sql", limit=1)
    assert [(t.name, t.n) for t in tags] == [("code", 1), ("sql", 1)]


def test_postgres_typo_search_uses_indexes(catalog):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    from django.test.utils import CaptureQueriesContext

    from hub.services.search import adapters_search

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        with CaptureQueriesContext(connection) as ctx:
            found, searched, matches = adapters_search(Adapter.objects.all(), "sumarization")
        plans = [found.explain()]
        for query in ctx.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            plans.append(" ".join(row[0] for row in cursor.fetchall()))
        cursor.execute("SET enable_seqscan = on")
    plan = " ".join(plans)
    assert searched == "summarization" and matches == found.count() == 1
    # The nearest word from the words' trigram index, the matches from the full-text index.
    assert "hub_searchword_trgm" in plan and "hub_adapter_search_gin" in plan
    assert "Seq Scan" not in plan


def test_postgres_typo_search_is_ranked_and_counted(
    client, alice, catalog, make_adapter, monkeypatch
):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    from hub.services import search
    from hub.views import catalog as catalog_views

    for name, downloads in (("digest", 99), ("brief", 50)):
        make_adapter(alice, name, task="summarization", tags=["summarization"])
        Adapter.objects.filter(name=name).update(downloads=downloads)
    # The summarization adapters, matched by the respelled word and ranked (the one with
    # the word in its name first).
    assert names(client, q="sumarizaton") == ["news-summarizer", "digest", "brief"]
    page = client.get(reverse("hub:adapter_list"), {"q": "sumarizaton"}).content.decode()
    assert "showing results for" in page and "“summarization”" in page
    assert '<small class="count">3</small>' in page
    # A broad search ranks only its most downloaded matches (one more than the pool, to
    # know there are more), and the count says there are more.
    monkeypatch.setattr(search, "RANK_POOL", 1)
    assert names(client, q="sumarizaton") == ["digest", "brief"]
    monkeypatch.setattr(catalog_views, "COUNT_CAP", 1)
    monkeypatch.setattr(catalog_views, "PAGE_SIZE", 1)
    page = client.get(reverse("hub:adapter_list"), {"q": "sumarizaton"}).content.decode()
    assert re.search(r'<small class="count"><span title="[^"]*">1\+</span></small>', page)


def test_broad_filters_show_a_capped_count(client, alice, make_adapter, monkeypatch):
    from hub.views import catalog as catalog_views

    for i in range(4):
        make_adapter(alice, f"a{i}", task="translation", tags=["shared"])
    make_adapter(alice, "other", task="summarization", tags=["shared"])
    monkeypatch.setattr(catalog_views, "COUNT_CAP", 3)
    monkeypatch.setattr(catalog_views, "PAGE_SIZE", 2)
    url = reverse("hub:adapter_list")
    capped = client.get(url, {"task": "translation", "sort": "name"}).content.decode()
    assert re.search(r'<small class="count"><span title="[^"]*">3\+</span></small>', capped)
    assert "Page 1 of 2+" in capped
    # Pages within the cap: the last one is cut at it.
    assert names(client, task="translation", sort="name", page=2) == ["a2"]
    # Within the cap: the exact count, no "+".
    exact = client.get(url, {"task": "summarization"}).content.decode()
    assert '<small class="count">1</small>' in exact and "Page 1 of" not in exact
    # The unfiltered list keeps the exact total (counted with the filter choices).
    assert '<small class="count">5</small>' in client.get(url).content.decode()


def test_tag_filter_lists_each_adapter_once(client, alice, make_adapter):
    make_adapter(alice, "tagged", tags=["alpha", "beta"])
    make_adapter(alice, "untagged", tags=["beta"])
    assert names(client, tag="alpha") == ["tagged"]
    assert names(client, tag="beta", sort="name") == ["tagged", "untagged"]
    assert names(client, tag="no-such-tag") == []


def test_postgres_typo_in_a_tag_is_respelled(client, catalog):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    from hub.services.search import respelled

    # Words the catalog knows stay; the query's syntax is kept around the respelled ones.
    assert respelled('creatve-writing -"sumarization" sql xq') == (
        'creative-writing -"summarization" sql xq'
    )
    assert names(client, q="creatve-writing") == ["story-writer"]
    # Only the first words of a long query are looked up.
    long_query = " ".join(["sumarization"] * 3 + [f"word{i}" for i in range(20)] + ["sqll"])
    assert respelled(long_query).split()[:3] == ["summarization"] * 3
    assert respelled(long_query).endswith(" sqll")
    # A typo in a name.
    assert names(client, q="sql-helpr") == ["sql-helper"]
    # Nothing near enough: no results, no respelling shown.
    page = client.get(reverse("hub:adapter_list"), {"q": "qqzzxx"}).content.decode()
    assert "showing results for" not in page and "No adapter matches" in page


def test_postgres_typo_search_learns_new_words_but_never_private_ones(
    client, alice, bob, catalog, make_adapter
):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    from hub.models import SearchWord

    make_adapter(alice, "zebrafish-tagger", description="Labels microscopy images.")
    make_adapter(bob, "quokka-secret", private=True, description="Hush: wallaby words.")
    assert names(client, q="zebrafsh") == ["zebrafish-tagger"]
    assert names(client, q="microscopi") == ["zebrafish-tagger"]
    # Neither the private adapter's words nor the adapter itself leak through a typo.
    assert not SearchWord.objects.filter(word__in=["quokka", "wallaby"]).exists()
    page = client.get(reverse("hub:adapter_list"), {"q": "quoka"}).content.decode()
    assert "quokka" not in page
    # Its owner still finds it by its exact words.
    client.force_login(bob)
    assert names(client, q="quokka") == ["quokka-secret"]


def test_scanned_respelling_agrees_with_postgres_index(catalog):
    """Without PostgreSQL's trigram index (SQLite), the nearest catalog word is found by
    computing pg_trgm's similarity here: same similarities, same respellings."""
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    from hub.services import search

    pairs = [("sumarization", "summarization"), ("sqll", "sql"), ("creatve", "creative"),
             ("helpr", "helper"), ("qqzzxx", "news"), ("abc", "abc")]  # fmt: skip
    with connection.cursor() as cursor:
        for a, b in pairs:
            cursor.execute("SELECT similarity(%s, %s)", [a, b])
            ours = search.similarity(search.trigrams(a), search.trigrams(b))
            assert ours == pytest.approx(cursor.fetchone()[0], abs=1e-6), (a, b)
    typed = ["sumarization", "sqll", "creatve", "helpr", "storis", "qqzzxx", "news"]
    fixes = search._nearest_scanned(typed)
    assert fixes == search._nearest_indexed(typed)
    assert fixes["sumarization"] == "summarization" and "news" not in fixes
    assert "qqzzxx" not in fixes


SQLITE_SEARCH = """
import json, os
from pathlib import Path
from django.contrib.auth import get_user_model
from django.test import Client
from hub.services.adapters import adapter_create

folder = Path(os.environ["SEED_ADAPTER_DIR"])
files = {p.name: p for p in folder.iterdir() if p.is_file()}
alice = get_user_model().objects.create_user("alice", "alice@example.com", "alice-password-1")
adapter_create(owner=alice, name="news-summarizer", files=files, tags=["summarization"])
adapter_create(owner=alice, name="sql-helper", files=files, description="Writes SQL queries.")
adapter_create(owner=alice, name="quokka-secret", files=files, private=True)
client = Client()
pages = {q: client.get("/adapters/", {"q": q}).content.decode() for q in
         ["sumarization", "sql-helpr", "quoka", "qqzzxx"]}
print("RESULT=" + json.dumps({q: ["news-summarizer" in p, "sql-helper" in p,
    "quokka" in p, "showing results for" in p] for q, p in pages.items()}))
"""


def test_typo_search_on_sqlite_the_embedded_default(tmp_path, adapter_dirs):
    """`make run`'s SQLite database respells typos too (a site in its own process)."""
    import json
    import os
    import subprocess
    import sys

    from tests.hfapi.upstream_server import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LORAHUB_VAR_DIR=str(tmp_path),
        MEDIA_ROOT=str(tmp_path / "media"),
        SEED_ADAPTER_DIR=str(adapter_dirs["r4"]),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    run = dict(env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    subprocess.run([*manage, "migrate", "--noinput"], **run)
    out = subprocess.run([*manage, "shell", "-c", SQLITE_SEARCH], **run).stdout
    found = json.loads(out.rsplit("RESULT=", 1)[1])
    # [news-summarizer listed, sql-helper listed, quokka named, respelling shown]
    assert found["sumarization"] == [True, False, False, True]
    assert found["sql-helpr"] == [False, True, False, True]
    assert found["quoka"] == [False, False, False, False]  # private words are not learnt
    assert found["qqzzxx"] == [False, False, False, False]
