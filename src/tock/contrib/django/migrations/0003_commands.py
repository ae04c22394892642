"""Tock's SQL migration 5: commands through the store (docs/design.md: Commands)."""

from django.db import migrations

from tock.contrib.django.migrate import TockSQL


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("tock", "0002_leader")]
    operations = [TockSQL(upto=5)]
