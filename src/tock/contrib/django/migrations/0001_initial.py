"""Tock's tables: its own SQL migrations 1 to 3, applied in this migration's
transaction on the database ``settings.TOCK["DATABASE"]`` names (one source of truth:
``tock migrate`` applies the same SQL, and either one finds the other's work done)."""

from django.db import migrations

from tock.contrib.django.migrate import TockSQL


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [TockSQL(upto=3)]
