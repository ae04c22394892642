from django.db import transaction
from django.http import HttpRequest, HttpResponse

from shop.models import Order
from shop.tasks import process_order
from tock.contrib.django import app


def order(request: HttpRequest, item: str) -> HttpResponse:
    """An order and the job that processes it, in one transaction (of the database both
    live in: the project's router sends its models to Tock's)."""
    with transaction.atomic(using=app.alias):
        placed = Order.objects.create(item=item)
        job = process_order.enqueue(placed.id)
        if item == "fail":
            raise ValueError("refused")
    return HttpResponse(f"{placed.id} {job.id}")
