"""The admin's models (models.py): unmanaged, so no table is created; Tock's tables
come from its SQL migrations (TockSQL)."""

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("tock", "0003_commands")]
    operations = [
        migrations.CreateModel(
            name="Job",
            fields=[("id", models.BigIntegerField(primary_key=True, serialize=False))],
            options={
                "verbose_name": "job",
                "db_table": "tock_admin_job",
                "managed": False,
                "default_permissions": ("view", "change"),
            },
        ),
        migrations.CreateModel(
            name="Queue",
            fields=[("name", models.CharField(max_length=255, primary_key=True, serialize=False))],
            options={
                "verbose_name": "queue",
                "db_table": "tock_admin_queue",
                "managed": False,
                "default_permissions": (),
            },
        ),
        migrations.CreateModel(
            name="Worker",
            fields=[("id", models.CharField(max_length=255, primary_key=True, serialize=False))],
            options={
                "verbose_name": "worker",
                "verbose_name_plural": "workers, queues and the leader",
                "db_table": "tock_admin_worker",
                "managed": False,
                "default_permissions": ("view", "change"),
            },
        ),
    ]
