"""Typo-word counts (SearchWord) stay exact when reindexes run at once, on PostgreSQL.

Each test holds a lock in its own connection until both reindexes are waiting on a lock
(the first has read what it counts), then lets them go, so the race happens every time.
"""

import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections, transaction

from hub.models import Adapter, SearchWord
from hub.services.adapters import adapter_update
from hub.services.search import adapter_search_text, adapter_words, adapters_reindex
from tests.services import require

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def postgres():
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")


def stored() -> dict[str, int]:
    return dict(SearchWord.objects.values_list("word", "adapters"))


def recounted() -> dict[str, int]:
    """The counts as they should be: each public adapter's words, counted afresh."""
    counts = Counter()
    public = Adapter.objects.filter(private=False).select_related("base_model", "owner")
    for adapter in public.prefetch_related("tags"):
        counts.update(
            adapter_words(adapter.name, adapter.description, adapter_search_text(adapter))
        )
    return dict(counts)


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else read once per transaction
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_waiters(n: int, writers) -> None:
    deadline = time.monotonic() + 30
    while waiting_on_locks() < n:
        for writer in writers:
            if not writer.is_alive():
                writer.join()  # raises what it raised
                pytest.fail("a writer finished without waiting on a lock")
        assert time.monotonic() < deadline, f"{waiting_on_locks()} of {n} writers are waiting"
        time.sleep(0.02)


class Writer(threading.Thread):
    """Runs `work` in a connection of its own; join() re-raises what it raised."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work = work
        self.error = None
        self.start()

    def run(self):
        try:
            self.work()
        except BaseException as exc:  # handed to the test thread by join()
            self.error = exc
        finally:
            connections.close_all()

    def join(self, timeout=60):
        super().join(timeout)
        assert not self.is_alive(), "a writer is still running"
        if self.error is not None:
            raise self.error


def test_two_reindexes_of_one_adapter_count_its_words_once(alice, make_adapter):
    adapter = make_adapter(alice, "heron-spotter", description="Finds herons.")
    # Written past the catalog's services (a bulk load, a fix in SQL), then reindexed twice.
    Adapter.objects.filter(pk=adapter.pk).update(description="Finds herons and egrets.")
    one = Adapter.objects.filter(pk=adapter.pk)
    with transaction.atomic():
        connection.cursor().execute("LOCK TABLE hub_searchword IN EXCLUSIVE MODE")
        writers = [Writer(lambda: adapters_reindex(one)) for _ in range(2)]
        wait_for_waiters(2, writers)
    for writer in writers:
        writer.join()
    assert stored()["egrets"] == 1
    assert stored() == recounted()


def test_a_word_one_adapter_drops_as_another_takes_it_up_is_kept(alice, bob, make_adapter):
    dropping = make_adapter(alice, "falconry-log", description="About kestrels.")
    taking = make_adapter(bob, "bird-notes", description="Nothing yet.")
    assert stored()["kestrels"] == 1

    def edit(adapter, description):
        adapter_update(
            adapter=adapter, description=description, task="", license="", private=False, tags=[]
        )

    with transaction.atomic():
        connection.cursor().execute(
            "SELECT 1 FROM hub_searchword WHERE word = 'kestrels' FOR UPDATE"
        )
        first = Writer(lambda: edit(dropping, "About falcons."))
        wait_for_waiters(1, [first])
        second = Writer(lambda: edit(taking, "Nothing yet but kestrels."))
        wait_for_waiters(2, [first, second])
    first.join()
    second.join()
    assert stored().get("kestrels") == 1
    assert stored() == recounted()
