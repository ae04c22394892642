"""Every duty has one shape: a config, one pass, start and stop, and it starts again after
a stop (a leader switches its duties on and off). Real threads: wait on events, never on
sleeps, never assert durations."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tock import FakeClock, Tock
from tock._service import Duty, Periodic
from tock.duties import (
    Pruner,
    PrunerConfig,
    Rescuer,
    RescuerConfig,
    Scheduler,
    SchedulerConfig,
    Vacuumer,
    VacuumerConfig,
)

from .test_worker import running_worker, wait_for

WAIT = 30.0  # an upper bound for a wait; never an expectation
FAST = 0.01  # seconds between passes, so that a pass comes soon after a start


def make_duty(kind: str, app: Tock, clock: FakeClock) -> Duty:
    if kind == "scheduler":
        return Scheduler(app.store, clock, app.tasks, SchedulerConfig(interval=FAST))
    if kind == "rescuer":
        return Rescuer(app.store, clock, RescuerConfig(interval=FAST))
    if kind == "pruner":
        return Pruner(app.store, clock, PrunerConfig(interval=FAST))
    return Vacuumer(app.store, clock, VacuumerConfig(interval=FAST))


class Passes:
    """Counts a duty's passes; ``wait_more()`` waits for one after the last seen."""

    def __init__(self, duty: Duty) -> None:
        self.count = 0
        self._seen = 0
        self._changed = threading.Condition()
        original = duty.run_once

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            with self._changed:
                self.count += 1
                self._changed.notify_all()
            return result

        duty.run_once = counted  # type: ignore[method-assign]

    def wait_more(self) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.count > self._seen, WAIT), "no pass"
            self._seen = self.count


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"tock-{name}" and t.is_alive()]


@pytest.mark.parametrize("kind", ["scheduler", "rescuer", "pruner", "vacuumer"])
def test_each_duty_stops_and_starts_again(app: Tock, clock: FakeClock, kind: str) -> None:
    duty = make_duty(kind, app, clock)
    passes = Passes(duty)
    assert duty.name == kind
    assert duty.config.interval == FAST
    assert not duty.running
    duty.stop()  # not running: nothing to do
    for _ in range(3):  # start, stop, and again
        duty.start()
        duty.start()  # running already: no second thread
        assert duty.running
        assert len(threads_named(kind)) == 1
        passes.wait_more()
        duty.stop()
        assert not duty.running
        stopped_at = passes.count
        assert not threads_named(kind), "stop() waits for the thread"
        assert passes.count == stopped_at  # no pass after stop() returned
    assert duty.run_once() is not None or kind == "vacuumer"  # one pass, by hand


def test_a_periodic_stopped_from_its_own_pass_starts_again() -> None:
    # A pass that stops its own service (a leader losing its lease mid-pass) cannot wait
    # for its thread; a start after that runs a new thread, the old one ends by itself.
    ran = threading.Event()
    service: Periodic

    def stop_myself() -> None:
        service.stop()
        ran.set()

    service = Periodic("self-stop", FAST, stop_myself, first_delay=0.0)
    service.start()
    assert ran.wait(WAIT)
    assert not service.running
    ran.clear()
    service.start()
    assert service.running
    assert ran.wait(WAIT)
    service.stop()


def test_the_worker_switches_its_duties_off_and_on(real_app: Tock) -> None:
    fast = {
        "scheduler": SchedulerConfig(interval=FAST),
        "rescuer": RescuerConfig(interval=FAST),
        "pruner": PrunerConfig(interval=FAST),
        "vacuumer": VacuumerConfig(interval=FAST),
    }
    add = real_app.task(name="tests.add")(lambda x, y: x + y)
    with running_worker(real_app, duties=True, **fast) as worker:
        assert [d.name for d in worker.duties] == ["scheduler", "rescuer", "pruner", "vacuumer"]
        wait_for(lambda: all(d.running for d in worker.duties), "the duties to start")
        worker.stop_duties()
        assert not any(d.running for d in worker.duties)
        counters = [Passes(d) for d in worker.duties]
        worker.start_duties()
        assert all(d.running for d in worker.duties)
        for passes in counters:
            passes.wait_more()
        # The worker still runs jobs meanwhile.
        assert add.enqueue(2, 3).result(timeout=WAIT) == 5
    assert not any(d.running for d in worker.duties)  # stopped with the worker


def test_a_worker_without_duties_can_take_them_up(real_app: Tock) -> None:
    with running_worker(real_app, duties=False) as worker:
        assert not any(d.running for d in worker.duties)
        worker.start_duties()
        assert all(d.running for d in worker.duties)
    assert not any(d.running for d in worker.duties)
