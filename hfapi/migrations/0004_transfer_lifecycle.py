from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hfapi", "0003_transfer"),
    ]

    operations = [
        migrations.AddField(
            model_name="transfer",
            name="token",
            field=models.CharField(blank=True, max_length=500),
        ),
    ]
