"""The elector's transitions on both stores and the fake clock (docs/design.md:
Leader): elect, follow, take over from a dead leader, win after an expiry, stop acting
at the local deadline, step down when refused or when the lock is lost, resign."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import wait_token_freed

from tock import ConfigurationError, FakeClock, Tock
from tock.errors import StoreError
from tock.leader import Elector, ElectorConfig
from tock.leader.elector import DEADLINE_SHARE
from tock.store import Lease, Store

CONFIG = ElectorConfig(ttl=10.0, renew_interval=2.0, wait_slice=0.5, watch_interval=0.05)


class Recorder:
    """An elector with what happened to it: ("elected", term) and ("lost",)."""

    def __init__(self, store: Store, clock: FakeClock, worker_id: str) -> None:
        self.events: list[tuple[object, ...]] = []
        self.elector = Elector(
            store,
            clock,
            worker_id,
            CONFIG,
            on_elected=lambda lease: self.events.append(("elected", lease.term)),
            on_lost=lambda: self.events.append(("lost",)),
            monotonic=lambda: clock.now().timestamp(),  # the deadline on the fake clock
        )

    def step(self, block: float = 0.0) -> float:
        return self.elector.step(block=block)


@pytest.fixture
def node(store: Store, clock: FakeClock) -> Iterator[Recorder]:
    yield Recorder(store, clock, "a")


def test_a_lone_candidate_leads_with_term_one(node: Recorder, store: Store, clock) -> None:
    node.step()
    assert node.elector.is_leader and node.elector.term == 1
    assert node.events == [("elected", 1)]
    lease = store.leader_get(now=clock.db_now())
    assert lease.worker_id == "a" and lease.held


def test_a_second_candidate_follows(node: Recorder, store: Store, clock) -> None:
    node.step()
    other = Recorder(store, clock, "b")
    assert other.step() == CONFIG.wait_slice  # looks again after a slice
    assert not other.elector.is_leader and other.events == []


def test_the_leader_renews_when_due(node: Recorder, store: Store, clock: FakeClock) -> None:
    node.step()
    elected = store.leader_get(now=clock.db_now())
    node.step()  # a look at the lease, no renewal yet
    assert store.leader_get(now=clock.db_now()) == elected
    clock.advance(seconds=CONFIG.renew_interval)
    node.step()
    renewed = store.leader_get(now=clock.db_now())
    assert renewed.term == 1 and renewed.expires_at > elected.expires_at


def test_a_follower_takes_over_when_the_leader_dies(
    store: Store, clock: FakeClock, other_app: Tock
) -> None:
    leader = Recorder(other_app.store, clock, "a")
    leader.step()
    follower = Recorder(store, clock, "b")
    follower.step()
    assert not follower.elector.is_leader
    other_app.close()  # the leader's process dies: its lock is released
    wait_token_freed(store, "a")
    follower.step(block=30)  # the lease still runs: no waiting for its expiry
    assert follower.events == [("elected", 2)]
    assert store.leader_get(now=clock.db_now()).worker_id == "b"


def test_a_paused_leader_loses_its_lease_at_expiry_and_finds_out(
    node: Recorder, store: Store, clock: FakeClock
) -> None:
    node.step()
    follower = Recorder(store, clock, "b")
    clock.advance(seconds=CONFIG.ttl)  # "a" paused: no renewal, its lock still held
    follower.step()
    assert follower.events == [("elected", 2)]
    node.step()  # back: its renewal is refused, it stops acting
    assert node.events == [("elected", 1), ("lost",)]
    assert not node.elector.is_leader
    assert store.leader_get(now=clock.db_now()).worker_id == "b"


def test_a_failed_renewal_is_tried_again_soon_not_at_once(
    node: Recorder, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    node.step()
    calls: list[float] = []

    def unreachable(*args: object, **kwargs: object) -> Lease | None:
        calls.append(clock.now().timestamp())
        raise StoreError("the database does not answer")

    monkeypatch.setattr(store, "leader_renew", unreachable)
    clock.advance(seconds=CONFIG.renew_interval)
    delay = node.step()
    assert len(calls) == 1 and delay > 0  # not a busy loop against a database that is down
    node.step()
    assert len(calls) == 1
    clock.advance(seconds=CONFIG.renew_interval / 4)
    node.step()
    assert len(calls) == 2 and node.elector.is_leader


def test_a_leader_that_cannot_renew_stops_before_its_lease_expires(
    node: Recorder, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    node.step()

    def unreachable(*args: object, **kwargs: object) -> Lease | None:
        raise StoreError("the database does not answer")

    monkeypatch.setattr(store, "leader_renew", unreachable)
    clock.advance(seconds=CONFIG.renew_interval)
    node.step()  # a failed renewal: still leading, the deadline not passed
    assert node.elector.is_leader
    clock.advance(seconds=CONFIG.ttl * DEADLINE_SHARE - CONFIG.renew_interval)
    node.step()
    assert node.events == [("elected", 1), ("lost",)]
    lease = store.leader_get(now=clock.db_now())
    assert lease.held  # it stopped while its lease still ran: no overlap of two leaders


def test_a_leader_whose_lock_is_lost_resigns(
    node: Recorder, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    node.step()
    monkeypatch.setattr(store, "leader_lock_held", lambda term: False)
    clock.advance(seconds=CONFIG.renew_interval)
    node.step()
    assert node.events == [("elected", 1), ("lost",)]
    assert not store.leader_get(now=clock.db_now()).held  # cleared for the others


def test_resign_hands_over_at_once(node: Recorder, store: Store, clock: FakeClock) -> None:
    node.step()
    follower = Recorder(store, clock, "b")
    follower.step()
    assert node.elector.resign()
    assert node.events == [("elected", 1), ("lost",)]
    assert not node.elector.resign()  # a follower has nothing to resign
    follower.step(block=30)
    assert follower.events == [("elected", 2)]


def test_stop_resigns_a_leader(node: Recorder, store: Store, clock: FakeClock) -> None:
    node.step()
    node.elector.stop()
    assert node.events == [("elected", 1), ("lost",)]
    assert store.leader_get(now=clock.db_now()).worker_id is None


def test_terms_grow_through_every_kind_of_change(store: Store, clock: FakeClock) -> None:
    a, b = Recorder(store, clock, "a"), Recorder(store, clock, "b")
    a.step()  # 1: elected
    a.elector.resign()
    b.step()  # 2: after a resignation
    clock.advance(seconds=CONFIG.ttl)
    a.step()  # 3: after an expiry
    b.step()  # "b" finds out
    assert [e for e in a.events + b.events if e[0] == "elected"] == [
        ("elected", 1),
        ("elected", 3),
        ("elected", 2),
    ]
    assert store.leader_get(now=clock.db_now()).term == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 0}, "ttl must be a positive duration"),
        ({"renew_interval": "2"}, "renew_interval must be a timedelta or a number"),
        ({"ttl": 4.0, "renew_interval": 2.0}, "renew_interval .* must be under half"),
        ({"wait_slice": -1}, "wait_slice must be a positive duration"),
        ({"watch_interval": 0}, "watch_interval must be a positive duration"),
    ],
)
def test_bad_elector_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ElectorConfig(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("wait", ["watch", "renewal"])
def test_a_deposed_leader_steps_down_and_lets_another_lead(
    node: Recorder, store: Store, clock: FakeClock, wait: str
) -> None:
    node.step()
    follower = Recorder(store, clock, "b")
    assert store.leader_depose(now=clock.db_now()) is not None  # tock leader resign
    # It finds out at its next look at the lease, or at the latest its next renewal,
    # stops, and sits out the next election.
    clock.advance(seconds=CONFIG.watch_interval if wait == "watch" else CONFIG.renew_interval)
    node.step()
    assert node.events == [("elected", 1), ("lost",)]
    node.step()
    assert not node.elector.is_leader
    follower.step()
    assert follower.events == [("elected", 2)]
