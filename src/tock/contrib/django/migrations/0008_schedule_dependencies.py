"""Tock's SQL migration 8: schedules that wait on schedules (docs/design.md: Schedules
that wait on schedules)."""

from django.db import migrations

from tock.contrib.django.migrate import TockSQL


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("tock", "0007_dependencies")]
    operations = [TockSQL(upto=8)]
