"""The tasks a worker of this project runs: Tock's Django app imports each installed
app's tasks.py at start-up, in the web process and in the worker alike."""

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
    """A task of Django's tasks framework with Tock's retries. The mail server is down
    for the first two attempts, so the third one sends it."""
    if context.attempt < 3:
        raise ConnectionError(f"mail server unreachable (attempt {context.attempt})")
    Order.objects.filter(id=order_id).update(receipt_sent=True)
    return f"receipt for order {order_id} sent"


@app.periodic(every=timedelta(minutes=5))
def count_unshipped() -> int:
    """A schedule: one job every five minutes, however many workers run."""
    return Order.objects.filter(shipped=False).count()
