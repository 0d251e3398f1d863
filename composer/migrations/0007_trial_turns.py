from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("composer", "0006_trial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="trial",
            index=models.Index(
                condition=models.Q(("status__in", ["queued", "running"])),
                fields=["status", "created_at"],
                name="composer_trial_active",
            ),
        ),
    ]
