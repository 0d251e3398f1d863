"""Typo correction against a table of the catalog's words instead of trigram-matching names.

A GiST trigram index on the words answers "the nearest word" (`<->`) in a few probes; the
trigram GIN indexes on adapters' names and search text are dropped (a typo search rechecked
thousands of adapter rows through them, and every adapter write updated them).
"""

from django.db import migrations, models

from hub.migrations import _search_words

WORD_INDEX = "hub_searchword_trgm"
DROPPED = {
    "hub_adapter_name_trgm": "ON hub_adapter USING gin (name gin_trgm_ops)",
    "hub_adapter_text_trgm": "ON hub_adapter USING gin (search_text gin_trgm_ops)",
}


def words_fill(apps, schema_editor):
    """Words of the adapters already there (other databases get theirs in 0007)."""
    if schema_editor.connection.vendor == "postgresql":
        _search_words.words_fill(apps)


def indexes_swap(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {WORD_INDEX} ON hub_searchword USING gist (word gist_trgm_ops)"
    )
    for name in DROPPED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def indexes_restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {WORD_INDEX}")
    for name, spec in DROPPED.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} {spec}")


class Migration(migrations.Migration):
    dependencies = [("hub", "0005_current_rank")]

    operations = [
        migrations.CreateModel(
            name="SearchWord",
            fields=[("word", models.CharField(max_length=64, primary_key=True, serialize=False))],
        ),
        migrations.RunPython(indexes_swap, indexes_restore),
        migrations.RunPython(words_fill, migrations.RunPython.noop),
    ]
