"""``manage.py demo``: place two orders through the views, refuse one, run a worker
until the work is done, and show what became of each job."""

import subprocess
import sys

from django.core.management.base import BaseCommand
from django.test import Client

from orders.models import Order
from orders.tasks import send_receipt
from tock.contrib.django import app


class Command(BaseCommand):
    help = "Place orders, run a Tock worker, show the jobs."

    def handle(self, *args: object, **options: object) -> None:
        client = Client()
        for path in ("/orders/book", "/orders/lamp", "/orders/piano/refused"):
            response = client.get(path)
            self.stdout.write(f"GET {path}: {response.status_code} {response.content.decode()}")
        self.stdout.write(f"orders saved: {Order.objects.count()} (the refused one rolled back)")
        self.stdout.write(f"jobs waiting: {len(app.list_jobs(state='pending'))}")

        # A worker is its own process, as beside gunicorn or uvicorn; --burst makes it
        # exit once nothing is due.
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "tock",
                "worker",
                "--burst",
                "--queues",
                "default,emails",
                "--log-level",
                "error",
            ],
            check=True,
        )

        for job in reversed(app.list_jobs().jobs):
            record = job.record
            self.stdout.write(
                f"job {job.id} {record.task}: {record.status}, {record.attempts} attempt(s)"
                + (f" -> {record.result!r}" if record.result is not None else "")
            )
        for order in Order.objects.order_by("id"):
            self.stdout.write(
                f"order {order.id} {order.item}: shipped={order.shipped}, "
                f"receipt_sent={order.receipt_sent}"
            )
        for schedule in app.list_schedules():
            self.stdout.write(f"schedule {schedule.name}: next fire {schedule.next_fire_at}")
        receipts = [j for j in app.list_jobs(task=send_receipt.module_path).jobs]
        for job in reversed(receipts):
            result = send_receipt.get_result(str(job.id))
            errors = ", ".join(e.exception_class_path for e in result.errors)
            self.stdout.write(
                f"send_receipt {result.id}: {result.status} after {result.attempts} "
                f"attempts; errors: {errors}; returned {result.return_value!r}"
            )
