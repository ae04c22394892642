"""Tock's SQL migration 4: the leader's lease (docs/design.md: Leader)."""

from django.db import migrations

from tock.contrib.django.migrate import TockSQL


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("tock", "0001_initial")]
    operations = [TockSQL(upto=4)]
