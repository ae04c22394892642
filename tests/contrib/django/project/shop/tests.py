"""The project's own tests, as a project using Tock writes them: ``manage.py test`` runs
them on Django's test databases, and Tock follows (tests/contrib/django/test_commands.py
runs this module)."""

from django.conf import settings
from django.core.management import call_command
from django.test import TestCase, TransactionTestCase

from shop.models import Order
from shop.tasks import greet, process_order
from tock.contrib.django import app

TOCK_DATABASE = settings.TOCK["DATABASE"]


class EnqueueInATestCase(TestCase):
    """Jobs enqueued in a TestCase are written in its transaction and rolled back with it."""

    databases = frozenset({TOCK_DATABASE})

    def test_a_view_enqueues_with_its_order(self) -> None:
        response = self.client.get("/order/book")
        order_id, job_id = map(int, response.content.split())
        self.assertTrue(Order.objects.filter(id=order_id, processed=False).exists())
        self.assertGreater(job_id, 0)

    def test_a_refused_order_leaves_nothing(self) -> None:
        with self.assertRaises(ValueError):
            self.client.get("/order/fail")
        self.assertFalse(Order.objects.exists())

    def test_the_store_is_the_test_database(self) -> None:
        test_name = settings.DATABASES[TOCK_DATABASE]["TEST"]["NAME"]
        self.assertIn(test_name, app.store.url)


class RunAWorker(TransactionTestCase):
    """Jobs committed in a TransactionTestCase are there for a worker of this process."""

    databases = frozenset({TOCK_DATABASE})

    def run_worker(self) -> None:
        """A worker in this process until nothing is due (docs/django.md: Testing)."""
        call_command("tock", "worker", "--burst", "--queues", "default,emails")

    def test_a_tock_task_and_a_django_task_run(self) -> None:
        order = Order.objects.create(item="lamp")
        job = process_order.enqueue(order.id)
        result = greet.enqueue("test runner")
        self.run_worker()
        self.assertEqual(app.get_job(job.id).status, "succeeded")
        self.assertTrue(Order.objects.get(id=order.id).processed)
        result.refresh()
        self.assertEqual(result.return_value, "hello test runner")
