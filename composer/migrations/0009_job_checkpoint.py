from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("composer", "0008_result_saving"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="checkpoint",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="restarts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="job",
            name="worker_stopping",
            field=models.BooleanField(default=False),
        ),
    ]
