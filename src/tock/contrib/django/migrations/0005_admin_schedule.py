"""The admin's schedule model (models.py): unmanaged, so no table is created."""

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("tock", "0004_admin_models")]
    operations = [
        migrations.CreateModel(
            name="Schedule",
            fields=[("name", models.CharField(max_length=200, primary_key=True, serialize=False))],
            options={
                "verbose_name": "schedule",
                "db_table": "tock_admin_schedule",
                "managed": False,
            },
        ),
    ]
