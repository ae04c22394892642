"""``manage.py demo``: place two orders and refuse a third through the views, run a
worker until the work is done, and show what became of each job."""

import logging
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test import Client

from orders.models import Order
from orders.tasks import send_receipt
from tock import JobNotFound
from tock.contrib.django import app


def exists(job_id: int) -> bool:
    try:
        app.get_job(job_id)
    except JobNotFound:
        return False
    return True


class Command(BaseCommand):
    help = "Place orders through the views, run a Tock worker, show each job's outcome."

    def handle(self, *args: object, **options: object) -> None:
        # The refused order is a 409, which Django would log as a warning.
        logging.getLogger("django.request").setLevel(logging.ERROR)
        client = Client()
        placed = [client.post(f"/orders/{item}").json() for item in ("book", "lamp")]
        for p in placed:
            self.stdout.write(
                f"placed order {p['order']}: ship job {p['ship_job']}, "
                f"receipt task {p['receipt_task']}"
            )
        refused = client.post("/orders/piano/refused").json()
        self.stdout.write(
            f"refused order {refused['order']}: rolled back with its ship job "
            f"{refused['ship_job']} (order saved: "
            f"{Order.objects.filter(id=refused['order']).exists()}, "
            f"job saved: {exists(refused['ship_job'])})"
        )
        self.stdout.write(f"jobs waiting: {len(app.list_jobs(state='pending'))}")

        # A worker is a process of its own, as it is beside gunicorn or uvicorn;
        # --burst makes it exit once nothing is due.
        worker = subprocess.run(
            [
                sys.executable,
                str(Path(settings.BASE_DIR) / "manage.py"),
                *("tock", "worker", "--burst", "--queues", "default,emails"),
            ],
            capture_output=True,  # its log: the outcomes below tell the same story
            text=True,
        )
        if worker.returncode != 0:
            raise CommandError(f"the worker failed:\n{worker.stderr}")
        self.stdout.write("worker: ran until nothing was due, then exited")

        for p in placed:
            job = app.get_job(p["ship_job"])
            self.stdout.write(
                f"ship job {job.id}: {job.status} after {job.record.attempts} attempt(s), "
                f"returned {job.result()!r}"
            )
            result = send_receipt.get_result(p["receipt_task"])
            self.stdout.write(
                f"send_receipt task {result.id}: {result.status} after {result.attempts} "
                f"attempts, returned {result.return_value!r}"
            )
            for error in result.errors:  # one per failed attempt
                message = error.traceback.strip().splitlines()[-1].partition(": ")[2]
                self.stdout.write(f"  error: {error.exception_class_path}: {message}")
            self.stdout.write(f"  worker ids: {len(result.worker_ids)}, one per attempt")
        for order in Order.objects.order_by("id"):
            self.stdout.write(
                f"order {order.id} {order.item}: shipped {order.shipped}, "
                f"receipt sent {order.receipt_sent}"
            )
        for schedule in app.list_schedules():
            self.stdout.write(
                f"schedule {schedule.name}: {schedule.expression}, "
                f"next fire {schedule.next_fire_at:%H:%M:%S} UTC"
            )
