"""The test project's tasks: Tock's own (@app.task) and Django's tasks framework's."""

import asyncio
import os
import signal
import time
from datetime import timedelta

from shop.models import Order
from tock.contrib.django import app, task

try:
    from django.tasks import task as django_task
except ImportError:
    from django_tasks import task as django_task


@app.task
def process_order(order_id: int) -> str:
    Order.objects.filter(id=order_id).update(processed=True)
    return f"order {order_id} processed"


@app.periodic(every=timedelta(hours=1))
def hourly() -> None:
    pass


@django_task()
def add(x: int, y: int) -> int:
    return x + y


@django_task(priority=5, queue_name="emails")
def mark(order_id: int) -> int:
    return Order.objects.filter(id=order_id).update(processed=True)


@task(takes_context=True, max_attempts=3, backoff=0.01)
def flaky(context, succeed_on: int) -> int:
    if context.attempt < succeed_on:
        raise ValueError(f"attempt {context.attempt}")
    return context.attempt


@task(max_attempts=2, backoff=lambda exc, result: 0.02 * result.attempts)
def always_fails() -> None:
    raise KeyError("never")


@task(max_attempts=2, backoff=lambda exc, result: 3600.0 if result.attempts == 1 else 1.0)
def retry_in_an_hour() -> None:
    raise KeyError("later")


@task(max_attempts=2)
def die_once(marker: str) -> str:
    """Kills its own worker (SIGKILL) the first time, as a crash would; then succeeds."""
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
    return "survived"


@task(unique_key=lambda name: f"greet:{name}")
def greet(name: str) -> str:
    return f"hello {name}"


try:
    # Django 6.1 (and the backport) hand extra options of its own @task to the
    # backend's task class: Tock's options work there too.
    @django_task(max_attempts=2, backoff=0.01)
    def native_options() -> None:
        raise OSError("again")

except TypeError:  # Django 6.0's @task takes none
    native_options = None


@django_task()
async def aping(x: int) -> int:
    return x * 2


@task(timeout=0.1, max_attempts=2, backoff=0.01)
def overstay() -> str:
    """Returns, but after its timeout: the attempt is a timeout, not a success."""
    time.sleep(0.5)
    return "too late"


@task(timeout=0.1, max_attempts=2, backoff=0.01)
async def aoverstay() -> str:
    """Cancelled at its timeout."""
    await asyncio.sleep(30)
    return "never"
