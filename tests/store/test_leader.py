"""The leader's lease on both stores and the fake clock (docs/design.md: Leader): elect,
renew, lose, expire, resign, take over, and a term that only grows."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from tock import FakeClock, Tock
from tock.store import Lease, Store

TTL = 10.0


def elect(store: Store, clock: FakeClock, worker: str, *, takeover: bool = False) -> Lease | None:
    seen = store.leader_get(now=clock.db_now())
    return store.leader_elect(
        worker_id=worker, term=seen.term, ttl=TTL, now=clock.db_now(), takeover=takeover
    )


def test_nobody_leads_a_new_store(store: Store, clock: FakeClock) -> None:
    lease = store.leader_get(now=clock.db_now())
    assert lease.worker_id is None and lease.term == 0 and not lease.held


def test_the_first_candidate_is_elected_with_term_one(store: Store, clock: FakeClock) -> None:
    lease = elect(store, clock, "a")
    assert lease is not None and lease.worker_id == "a" and lease.term == 1
    assert lease.elected_at == clock.now()
    assert lease.expires_at == clock.now() + timedelta(seconds=TTL)
    assert store.leader_get(now=clock.db_now()) == lease and lease.held


def test_a_held_lease_refuses_other_candidates(store: Store, clock: FakeClock) -> None:
    first = elect(store, clock, "a")
    clock.advance(seconds=TTL - 1)
    assert elect(store, clock, "b") is None
    assert store.leader_get(now=clock.db_now()) == first


def test_two_candidates_from_one_term_elect_one(store: Store, clock: FakeClock) -> None:
    seen = store.leader_get(now=clock.db_now())
    now = clock.db_now()
    won = store.leader_elect(worker_id="a", term=seen.term, ttl=TTL, now=now, takeover=True)
    lost = store.leader_elect(worker_id="b", term=seen.term, ttl=TTL, now=now, takeover=True)
    assert won is not None and won.term == 1 and lost is None


def test_only_the_holder_renews_in_its_term(store: Store, clock: FakeClock) -> None:
    lease = elect(store, clock, "a")
    assert lease is not None
    clock.advance(seconds=TTL / 2)
    renewed = store.leader_renew(lease, ttl=TTL, now=clock.db_now())
    assert renewed is not None and renewed.term == lease.term
    assert renewed.expires_at == clock.now() + timedelta(seconds=TTL)
    assert renewed.elected_at == lease.elected_at
    impostor = Lease("b", lease.term, None, None, False)
    assert store.leader_renew(impostor, ttl=TTL, now=clock.db_now()) is None
    stale = Lease("a", lease.term - 1, None, None, False)
    assert store.leader_renew(stale, ttl=TTL, now=clock.db_now()) is None


def test_an_expired_lease_is_lost_and_goes_to_the_next_candidate(
    store: Store, clock: FakeClock
) -> None:
    lease = elect(store, clock, "a")
    assert lease is not None
    clock.advance(seconds=TTL)
    seen = store.leader_get(now=clock.db_now())
    assert seen.worker_id == "a" and seen.expired and not seen.held
    assert store.leader_renew(lease, ttl=TTL, now=clock.db_now()) is None  # too late
    nxt = elect(store, clock, "b")
    assert nxt is not None and nxt.worker_id == "b" and nxt.term == 2
    # The old leader, back, finds a newer term: it cannot renew.
    assert store.leader_renew(lease, ttl=TTL, now=clock.db_now()) is None


def test_resign_frees_the_lease_and_keeps_the_term(store: Store, clock: FakeClock) -> None:
    lease = elect(store, clock, "a")
    assert lease is not None
    assert store.leader_resign(lease, now=clock.db_now())
    assert not store.leader_resign(lease, now=clock.db_now())  # not held any more
    seen = store.leader_get(now=clock.db_now())
    assert seen.worker_id is None and seen.term == 1 and not seen.held
    nxt = elect(store, clock, "b")
    assert nxt is not None and nxt.term == 2  # at once: no waiting for the expiry


def test_a_stale_holder_cannot_resign_the_next_term(store: Store, clock: FakeClock) -> None:
    old = elect(store, clock, "a")
    assert old is not None
    clock.advance(seconds=TTL + 1)
    new = elect(store, clock, "b")
    assert new is not None
    assert not store.leader_resign(old, now=clock.db_now())
    assert store.leader_get(now=clock.db_now()).worker_id == "b"


def test_a_takeover_needs_the_term_the_candidate_saw(store: Store, clock: FakeClock) -> None:
    """A follower that saw the leader of term 1 die takes over at once (its lease still
    runs); one that saw an older term matches nothing."""
    lease = elect(store, clock, "a")
    assert lease is not None
    assert elect(store, clock, "b", takeover=False) is None
    taken = elect(store, clock, "b", takeover=True)
    assert taken is not None and taken.worker_id == "b" and taken.term == 2
    late = store.leader_elect(worker_id="c", term=1, ttl=TTL, now=clock.db_now(), takeover=True)
    assert late is None


@pytest.mark.parametrize("rounds", [5])
def test_the_term_only_grows(store: Store, clock: FakeClock, rounds: int) -> None:
    terms = []
    for i in range(rounds):
        lease = elect(store, clock, f"w{i}", takeover=True)
        assert lease is not None
        terms.append(lease.term)
        if i % 2:
            store.leader_resign(lease, now=clock.db_now())
        else:
            clock.advance(seconds=TTL + 1)
    assert terms == sorted(set(terms)) == list(range(1, rounds + 1))


def test_the_database_clock_decides_expiry(real_app: Tock) -> None:
    """In production ``now`` is None: the database's clock sets and checks expiry."""
    store = real_app.store
    seen = store.leader_get(now=None)
    lease = store.leader_elect(worker_id="a", term=seen.term, ttl=30, now=None)
    assert lease is not None and lease.expires_at is not None and lease.elected_at is not None
    assert lease.expires_at - lease.elected_at == timedelta(seconds=30)
    assert store.leader_get(now=None).held
    renewed = store.leader_renew(lease, ttl=0.000001, now=None)
    assert renewed is not None
    # Expired as soon as the database's clock moves on (SQLite's by the millisecond).
    deadline = time.monotonic() + 10
    while store.leader_get(now=None).held:
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.001)
    assert store.leader_renew(renewed, ttl=30, now=None) is None


# -- the leader's lock: what the operating system or the server releases at a death ----


def test_one_holder_of_a_term_s_lock(store: Store) -> None:
    assert store.leader_lock_take(1)
    assert store.leader_lock_held(1)
    assert not store.leader_lock_take(1)  # another candidate, even in this process
    assert store.leader_lock_take(2)  # another term's lock is another lock
    store.leader_lock_release(1)
    assert not store.leader_lock_held(1)
    assert store.leader_lock_take(1)
    store.leader_lock_release(1)
    store.leader_lock_release(2)


def test_a_follower_s_wait_ends_when_the_lock_is_free(store: Store) -> None:
    assert store.leader_lock_wait(7, timeout=5)  # nobody holds it: at once
    assert store.leader_lock_take(7)
    assert not store.leader_lock_wait(7, timeout=0.05)  # held: the wait times out
    freed: list[bool] = []
    waiting = threading.Thread(target=lambda: freed.append(store.leader_lock_wait(7, 30)))
    waiting.start()
    store.leader_lock_release(7)
    waiting.join(timeout=60)
    assert freed == [True]


def test_the_lock_of_a_closed_store_is_free(store: Store, other_app: Tock) -> None:
    """A closed store stands for a process that died: its lock goes with it."""
    assert other_app.store.leader_lock_take(3)
    assert not store.leader_lock_take(3)
    other_app.close()
    assert store.leader_lock_wait(3, timeout=30)
    assert store.leader_lock_take(3)
    store.leader_lock_release(3)


def test_depose_clears_the_lease_whoever_holds_it(store: Store, clock: FakeClock) -> None:
    assert store.leader_depose(now=clock.db_now()) is None  # nobody leads
    lease = elect(store, clock, "a")
    assert lease is not None
    deposed = store.leader_depose(now=clock.db_now())
    assert deposed is not None and deposed.worker_id == "a" and deposed.term == 1
    assert store.leader_depose(now=clock.db_now()) is None
    assert store.leader_renew(lease, ttl=TTL, now=clock.db_now()) is None  # it finds out
    nxt = elect(store, clock, "b")
    assert nxt is not None and nxt.term == 2
