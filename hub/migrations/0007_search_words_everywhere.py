"""Typo correction on every database: the catalog's words, collected on PostgreSQL only
until now, are collected on the others too (SQLite, the embedded default)."""

from django.db import migrations

from hub.migrations import _search_words


def words_fill(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":  # PostgreSQL has them (0006)
        _search_words.words_fill(apps)


class Migration(migrations.Migration):
    dependencies = [("hub", "0006_search_words")]

    operations = [migrations.RunPython(words_fill, migrations.RunPython.noop)]
