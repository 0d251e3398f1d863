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
        migrations.AddField(
            model_name="transfer",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="transfer",
            index=models.Index(
                condition=models.Q(("status__in", ["queued", "running"])),
                fields=["status", "created_at"],
                name="hfapi_transfer_active",
            ),
        ),
    ]
