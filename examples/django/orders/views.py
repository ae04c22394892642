from django.db import transaction
from django.http import HttpRequest, HttpResponse

from orders.models import Order
from orders.tasks import send_receipt, ship


class OutOfStock(Exception):
    pass


def place_order(request: HttpRequest, item: str) -> HttpResponse:
    """The order and the jobs that follow it commit together: no job for an order that
    was never saved, no order without its jobs (no transaction.on_commit needed)."""
    with transaction.atomic():
        order = Order.objects.create(item=item)
        job = ship.enqueue(order.id)
        receipt = send_receipt.enqueue(order.id)
    return HttpResponse(f"order {order.id}: ship job {job.id}, receipt task {receipt.id}")


def refuse_order(request: HttpRequest, item: str) -> HttpResponse:
    """The same, but the stock check fails after the enqueue: the rollback takes the
    order and its job away together."""
    try:
        with transaction.atomic():
            order = Order.objects.create(item=item)
            ship.enqueue(order.id)
            raise OutOfStock(item)
    except OutOfStock:
        return HttpResponse(f"{item} is out of stock", status=409)
