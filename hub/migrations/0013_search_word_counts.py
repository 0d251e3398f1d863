"""SearchWord counts the public adapters using each word, and each adapter keeps the words it
counts for, so a word goes when its last public adapter goes private, is deleted or drops it
from its card. The counts are computed here from the adapters already there."""

from collections import Counter

from django.db import migrations, models


def words_count(apps, schema_editor):
    from hub.services.search import adapter_words

    Adapter = apps.get_model("hub", "Adapter")
    SearchWord = apps.get_model("hub", "SearchWord")
    counts = Counter()
    batch = []
    rows = Adapter.objects.filter(private=False).only("name", "description", "search_text")
    for adapter in rows.iterator(chunk_size=2000):
        words = adapter_words(adapter.name, adapter.description, adapter.search_text)
        counts.update(words)
        adapter.search_words = " ".join(sorted(words))
        batch.append(adapter)
        if len(batch) >= 2000:
            Adapter.objects.bulk_update(batch, ["search_words"])
            batch = []
    Adapter.objects.bulk_update(batch, ["search_words"])
    SearchWord.objects.all().delete()
    SearchWord.objects.bulk_create(
        [SearchWord(word=w, adapters=n) for w, n in counts.items()], batch_size=5000
    )


class Migration(migrations.Migration):
    dependencies = [("hub", "0012_throttle_events")]

    operations = [
        migrations.AddField(
            model_name="adapter",
            name="search_words",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="searchword",
            name="adapters",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(words_count, migrations.RunPython.noop),
    ]
