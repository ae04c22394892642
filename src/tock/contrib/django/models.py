"""Django models of Tock, for the admin only (docs/django.md: The admin).

They map no table and hold no rows: ``managed = False`` (no migration creates or drops
anything; Tock's tables come from its own SQL migrations) and no view of the admin
queries them. A model is how Django names things in its admin: the index entry, the
permissions (``tock.view_worker`` and ``tock.change_worker``…), and the content type a
``LogEntry`` of the admin history points at. The admin's pages read and change Tock
through the app's operations (``app.list_workers()``, ``app.stop_worker()``…), never
through the ORM: Tock's tables may live in another schema or alias, and writing them
behind the app would skip what the app checks and wakes (docs/design.md: Admin).
"""

from __future__ import annotations

from django.db import models

__all__ = ["Job", "Queue", "Schedule", "Worker"]


class Job(models.Model):  # type: ignore[misc]
    """The jobs' pages: view them with ``tock.view_job``; retry, cancel, delete, run
    now and stop jobs with ``tock.change_job``. An instance (never saved) names the job
    a ``LogEntry`` is about."""

    id = models.BigIntegerField(primary_key=True)

    class Meta:
        managed = False
        db_table = "tock_admin_job"  # never created, never queried
        default_permissions = ("view", "change")
        verbose_name = "job"

    def __str__(self) -> str:
        return f"job {self.id}"


class Schedule(models.Model):  # type: ignore[misc]
    """The schedules' pages: view them with ``tock.view_schedule``; create dynamic
    schedules with ``tock.add_schedule``; edit, pause, resume and trigger with
    ``tock.change_schedule``; delete (unschedule) with ``tock.delete_schedule``. An
    instance (never saved) names the schedule a ``LogEntry`` is about."""

    name = models.CharField(primary_key=True, max_length=200)

    class Meta:
        managed = False
        db_table = "tock_admin_schedule"  # never created, never queried
        verbose_name = "schedule"

    def __str__(self) -> str:
        return f"schedule {self.name}"


class Worker(models.Model):  # type: ignore[misc]
    """The page "Workers, queues and the leader": view it with ``tock.view_worker``;
    stop a worker, pause or resume a queue with ``tock.change_worker``. An instance
    (never saved) names the worker a ``LogEntry`` is about."""

    id = models.CharField(primary_key=True, max_length=255)

    class Meta:
        managed = False
        db_table = "tock_admin_worker"  # never created, never queried
        default_permissions = ("view", "change")
        verbose_name = "worker"
        verbose_name_plural = "workers, queues and the leader"

    def __str__(self) -> str:
        return f"worker {self.id}"


class Queue(models.Model):  # type: ignore[misc]
    """A queue, as a ``LogEntry`` of a pause or resume names it (the page's permissions
    are the worker model's)."""

    name = models.CharField(primary_key=True, max_length=255)

    class Meta:
        managed = False
        db_table = "tock_admin_queue"  # never created, never queried
        default_permissions = ()
        verbose_name = "queue"

    def __str__(self) -> str:
        return f"queue {self.name}"
