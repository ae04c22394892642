"""Tock's SQL migration 6: an index of blocked jobs (docs/design.md: counting jobs)."""

from django.db import migrations

from tock.contrib.django.migrate import TockSQL


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("tock", "0005_admin_schedule")]
    operations = [TockSQL(upto=6)]
