"""An enqueue joins Django's connection: the job exists if and only if the caller's
transaction commits (docs/django.md), on SQLite and PostgreSQL, in both of Django's
PostgreSQL cursor modes."""

from __future__ import annotations

import pytest

from tock.errors import JobNotFound

pytestmark = pytest.mark.usefixtures("django_project")


class Rollback(Exception):
    pass


def exists(job_id: int, args: list[object] | None = None) -> bool:
    """Whether the job is stored (with these arguments: on SQLite, an id a rolled-back
    insert took is taken again by the next, as if the first had never been)."""
    from tock.contrib.django import app

    try:
        job = app.get_job(job_id)
    except JobNotFound:
        return False
    return args is None or job.record.args == args


def test_a_job_enqueued_in_a_block_that_commits_exists(db: str) -> None:
    from django.db import transaction
    from shop.models import Order
    from shop.tasks import process_order

    with transaction.atomic(using=db):
        order = Order.objects.using(db).create(item="book")
        job = process_order.enqueue(order.id)
        assert job.id > 0
    assert exists(job.id)
    assert Order.objects.using(db).filter(id=order.id).exists()


def test_a_job_enqueued_in_a_block_that_rolls_back_never_existed(db: str) -> None:
    from django.db import transaction
    from shop.models import Order
    from shop.tasks import process_order

    with pytest.raises(Rollback), transaction.atomic(using=db):
        order = Order.objects.using(db).create(item="lamp")
        job = process_order.enqueue(order.id)
        raise Rollback
    assert not exists(job.id)
    assert not Order.objects.using(db).filter(id=order.id).exists()


def test_an_inner_block_that_rolls_back_takes_only_its_own_job(db: str) -> None:
    from django.db import transaction
    from shop.tasks import process_order

    with transaction.atomic(using=db):
        kept = process_order.enqueue(1)
        with pytest.raises(Rollback), transaction.atomic(using=db):
            dropped = process_order.enqueue(2)
            raise Rollback
        after = process_order.enqueue(3)
    assert exists(kept.id, [1]) and exists(after.id, [3])
    assert not exists(dropped.id, [2])


def test_outside_a_block_an_enqueue_commits_at_once(db: str) -> None:
    from django.db import connections
    from shop.tasks import process_order

    job = process_order.enqueue(4)
    assert not connections[db].in_atomic_block
    assert exists(job.id)  # read through the store's own connection


def test_the_job_is_invisible_to_others_until_the_block_commits(db: str) -> None:
    from django.db import transaction
    from shop.tasks import process_order

    with transaction.atomic(using=db):
        job = process_order.enqueue(5)
        assert not exists(job.id)  # the store's own connection: not committed yet
    assert exists(job.id)


def test_the_django_tasks_backend_enqueues_in_the_transaction_too(db: str) -> None:
    from django.db import transaction
    from shop.tasks import add

    with pytest.raises(Rollback), transaction.atomic(using=db):
        gone = add.enqueue(1, 2)
        raise Rollback
    with transaction.atomic(using=db):
        kept = add.enqueue(3, 4)
    assert not exists(int(gone.id), [1, 2])
    assert exists(int(kept.id), [3, 4])


def test_a_django_connection_given_explicitly_is_unwrapped(db: str) -> None:
    from django.db import connections, transaction
    from shop.tasks import process_order

    with pytest.raises(Rollback), transaction.atomic(using=db):
        job = process_order.using(connection=connections[db]).enqueue(6)
        raise Rollback
    assert not exists(job.id)


@pytest.mark.parametrize(
    ("alias", "option"), [("pg_binding", "server_side_binding"), ("pg_pool", "pool")]
)
def test_other_postgresql_connection_modes_work_too(
    django_project: dict[str, object], alias: str, option: str
) -> None:
    """Django's PostgreSQL backend makes client-side cursors unless
    ``server_side_binding`` is set, and takes its connections from a pool with ``pool``:
    each kind of connection takes Tock's enqueue in its transaction."""
    from conftest import require_postgres
    from django.db import connections, transaction
    from django.test import override_settings
    from shop.tasks import process_order

    require_postgres()
    schema = django_project["schema"]
    try:
        with override_settings(TOCK={"DATABASE": alias, "SCHEMA": schema}):
            with transaction.atomic(using=alias):
                job = process_order.enqueue(7)
            with pytest.raises(Rollback), transaction.atomic(using=alias):
                gone = process_order.enqueue(8)
                raise Rollback
            job_outside = process_order.enqueue(9)  # autocommit: back to the pool
            assert exists(job.id, [7]) and not exists(gone.id, [8])
            assert exists(job_outside.id, [9])
            assert connections[alias].settings_dict["OPTIONS"][option]
    finally:
        connections[alias].close()
        if option == "pool":
            connections[alias].close_pool()
