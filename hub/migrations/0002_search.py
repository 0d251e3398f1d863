"""PostgreSQL search: pg_trgm, a GIN index on the search vector and a trigram index on names.

On other databases (SQLite for `make run`) these are skipped: search falls back to icontains.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "hub_adapter_search_gin": "ON hub_adapter USING gin (search_vector)",
    "hub_adapter_name_trgm": "ON hub_adapter USING gin (name gin_trgm_ops)",
    "hub_adapter_text_trgm": "ON hub_adapter USING gin (search_text gin_trgm_ops)",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, spec in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} {spec}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("hub", "0001_catalog")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes),
    ]
