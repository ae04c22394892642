from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from orders.models import Order
from orders.tasks import send_receipt, ship


class OutOfStock(Exception):
    pass


@require_POST
def place_order(request: HttpRequest, item: str) -> JsonResponse:
    """The order and the jobs that follow it commit together: no job for an order that
    was never saved, and no saved order without its jobs. No transaction.on_commit."""
    with transaction.atomic():
        order = Order.objects.create(item=item)
        job = ship.enqueue(order.id)
        receipt = send_receipt.enqueue(order.id)
    return JsonResponse({"order": order.id, "ship_job": job.id, "receipt_task": receipt.id})


@require_POST
def refuse_order(request: HttpRequest, item: str) -> JsonResponse:
    """As place_order, but the stock check fails after the enqueue: the rollback takes
    the order and its job away together."""
    try:
        with transaction.atomic():
            order = Order.objects.create(item=item)
            job = ship.enqueue(order.id)
            raise OutOfStock(item)
    except OutOfStock:
        # The ids the rolled-back transaction had handed out: neither row exists now.
        return JsonResponse({"refused": item, "order": order.id, "ship_job": job.id}, status=409)
