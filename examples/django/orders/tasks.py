"""Imported at start-up (Tock's Django app imports each installed app's tasks.py): the
tasks a worker of this project runs."""

from datetime import timedelta

from orders.models import Order
from tock.contrib.django import app, task


@app.task(retries=2)
def ship(order_id: int) -> str:
    """A Tock task."""
    Order.objects.filter(id=order_id).update(shipped=True)
    return f"order {order_id} shipped"


@task(takes_context=True, queue_name="emails", max_attempts=3, backoff=0.1)
def send_receipt(context, order_id: int) -> str:
    """A task of Django's tasks framework, with Tock's retries: the mail server is
    down for the first attempt."""
    if context.attempt == 1:
        raise ConnectionError("mail server unreachable")
    Order.objects.filter(id=order_id).update(receipt_sent=True)
    return f"receipt for order {order_id} sent on attempt {context.attempt}"


@app.periodic(every=timedelta(minutes=5))
def restock_report() -> int:
    """A schedule: every five minutes, one job however many workers run."""
    return Order.objects.filter(shipped=False).count()
