"""The storage ledger (files the database marks as possibly garbage) and the installation id
that the database shares with its store."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('hub', '0013_search_word_counts'),
    ]

    operations = [
        migrations.CreateModel(
            name='Installation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('uid', models.CharField(max_length=36, unique=True)),
                ('created', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name='StorageEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(db_index=True, max_length=300)),
                ('kind', models.CharField(choices=[('intent', 'about to be stored'), ('tombstone', 'no longer named')], max_length=10)),
                ('since', models.DateTimeField(db_index=True)),
            ],
        ),
    ]
