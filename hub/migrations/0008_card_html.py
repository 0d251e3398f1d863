"""Model cards are rendered to sanitised HTML when written (hub.services.cards); existing
cards are rendered here once."""

from django.db import migrations, models

from hub.services.cards import card_render


def cards_render(apps, schema_editor):
    Adapter = apps.get_model("hub", "Adapter")
    for adapter in Adapter.objects.exclude(description="").only("description").iterator():
        adapter.description_html = card_render(adapter.description)
        adapter.save(update_fields=["description_html"])


class Migration(migrations.Migration):
    dependencies = [("hub", "0007_search_words_everywhere")]

    operations = [
        migrations.AddField(
            model_name="adapter",
            name="description_html",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(cards_render, migrations.RunPython.noop),
    ]
