from django.db import transaction
from django.http import HttpRequest, HttpResponse

from shop.models import Order
from shop.tasks import process_order


def order(request: HttpRequest, item: str) -> HttpResponse:
    """An order and the job that processes it, in one transaction."""
    with transaction.atomic():
        placed = Order.objects.create(item=item)
        job = process_order.enqueue(placed.id)
        if item == "fail":
            raise ValueError("refused")
    return HttpResponse(f"{placed.id} {job.id}")
