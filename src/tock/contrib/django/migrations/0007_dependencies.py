"""Tock's SQL migration 7: jobs that wait on jobs, and workflows (docs/design.md:
Dependencies)."""

from django.db import migrations

from tock.contrib.django.migrate import TockSQL


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("tock", "0006_blocked_index")]
    operations = [TockSQL(upto=7)]
