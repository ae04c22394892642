"""The rescuer: fabricate the rows a dead worker leaves, then run one pass."""

from __future__ import annotations

import pytest
from conftest import ensure_worker, store_url, wait_token_freed

from tock import FakeClock, JobStatus, Tock
from tock.duties import Rescuer, RescuerConfig
from tock.jobs import Outcome, OutcomeKind, Start
from tock.store import Store


def rescue(store: Store, clock: FakeClock, **config):
    return Rescuer(store, clock, RescuerConfig(**config)).run_once()


def test_rescues_jobs_of_a_dead_worker(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    dead = make_worker("dead")
    jobs = [make_job(status="running", worker=dead, retries=0) for _ in range(3)]
    clock.advance(seconds=11)
    report = rescue(store, clock)
    assert report.dead_workers == ["dead"]
    assert sorted(report.rescued) == [j.id for j in jobs]
    assert report.lost == [] and report.failed == []
    for j in jobs:
        record = store.job_get(j.id)
        assert record.status is JobStatus.PENDING
        assert record.rescues == 1
        assert record.attempts == 1
        assert record.errors_so_far == 0  # a rescue uses up no retry
        assert record.worker_id is None
        assert record.claim_token is None
    assert [w.id for w in store.worker_list()] == []
    assert store.worker_heartbeat("dead", now=clock.db_now()) is False


def test_rescued_job_with_no_retries_runs_again(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    make_worker("dead")
    job = make_job(status="running", worker="dead", retries=0)
    clock.advance(seconds=11)
    rescue(store, clock)
    ensure_worker(store, "w2", clock.db_now())
    (again,) = store.job_claim_batch(
        worker_id="w2", queues=["default"], limit=5, free=5, now=clock.db_now()
    )
    assert again.id == job.id
    assert again.attempts == 2
    assert again.rescues == 1
    assert again.errors_so_far == 1


def test_at_most_once_jobs_end_lost(store: Store, clock: FakeClock, make_worker, make_job) -> None:
    make_worker("dead")
    amo = make_job(status="running", worker="dead", at_most_once=True, retries=3)
    plain = make_job(status="running", worker="dead")
    clock.advance(seconds=11)
    report = rescue(store, clock)
    assert report.lost == [amo.id]
    assert report.rescued == [plain.id]
    lost = store.job_get(amo.id)
    assert lost.status is JobStatus.LOST
    assert lost.finished_at == clock.now()
    assert lost.error is not None and "died" in lost.error["message"]


def test_past_max_rescues_ends_failed(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    job = None
    for n in range(3):
        make_worker(f"dead-{n}")
        if job is None:
            job = make_job(status="running", worker="dead-0", max_rescues=2)
        else:
            (claimed,) = store.job_claim_batch(
                worker_id=f"dead-{n}", queues=["default"], limit=1, free=1, now=clock.db_now()
            )
            assert claimed.id == job.id
        clock.advance(seconds=11)
        report = rescue(store, clock)
        if n < 2:
            assert report.rescued == [job.id]
            assert store.job_get(job.id).rescues == n + 1
    assert report.failed == [job.id]
    failed = store.job_get(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert "worker" in failed.error["message"] and "died" in failed.error["message"]
    assert failed.attempts == 3
    assert failed.rescues == 2


def test_max_rescues_zero_fails_at_first_death(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    make_worker("dead")
    job = make_job(status="running", worker="dead", max_rescues=0)
    clock.advance(seconds=11)
    assert rescue(store, clock).failed == [job.id]
    assert store.job_get(job.id).status is JobStatus.FAILED


def test_live_worker_is_not_rescued(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    # The other app holds its worker's liveness token, as a live process would.
    make_worker("alive", on=other_app.store)
    job = make_job(status="running", worker="alive")
    clock.advance(seconds=9)
    assert not rescue(store, clock)
    assert store.job_get(job.id).status is JobStatus.RUNNING
    other_app.store.worker_heartbeat("alive", now=clock.db_now())
    clock.advance(seconds=9)
    assert not rescue(store, clock)
    assert [w.id for w in store.worker_list()] == ["alive"]
    assert store.job_get(job.id).status is JobStatus.RUNNING


def test_heartbeat_past_rescue_after_is_dead_even_with_its_token(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("paused", on=other_app.store)
    job = make_job(status="running", worker="paused")
    clock.advance(seconds=10.5)
    report = rescue(store, clock)
    assert report.dead_workers == ["paused"]
    assert store.job_get(job.id).status is JobStatus.PENDING
    # The paused worker comes back: its heartbeat finds no row; its old completion is stale.
    assert other_app.store.worker_heartbeat("paused", now=clock.db_now()) is False
    stale = Outcome(job.id, job.claim_token, OutcomeKind.SUCCEEDED, result="1")
    assert other_app.store.job_complete_batch([stale], now=clock.db_now()) == 0


def test_token_held_by_this_process_keeps_a_quiet_worker_alive(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    make_worker("mine")
    job = make_job(status="running", worker="mine")
    clock.advance(seconds=5)
    assert not rescue(store, clock)
    assert store.job_get(job.id).status is JobStatus.RUNNING


def test_released_token_and_old_heartbeat_is_dead(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("gone", on=other_app.store)
    job = make_job(status="running", worker="gone")
    other_app.close()  # the process died: the OS (or the database) releases its token
    wait_token_freed(store, "gone")
    clock.advance(seconds=3)
    assert not rescue(store, clock)  # a heartbeat younger than two intervals: not yet
    assert store.job_get(job.id).status is JobStatus.RUNNING
    clock.advance(seconds=2)
    report = rescue(store, clock)
    assert report.dead_workers == ["gone"]
    assert report.rescued == [job.id]
    assert [w.id for w in store.worker_list()] == []


def test_heartbeat_interval_sets_the_token_threshold(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("gone", on=other_app.store)
    make_job(status="running", worker="gone")
    other_app.close()
    wait_token_freed(store, "gone")
    clock.advance(seconds=5)
    assert not rescue(store, clock, heartbeat_interval=3.0)  # needs more than 6 s
    clock.advance(seconds=1.5)
    assert rescue(store, clock, heartbeat_interval=3.0).dead_workers == ["gone"]


def test_rescue_after_is_configurable(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("slow", on=other_app.store)
    make_job(status="running", worker="slow")
    clock.advance(seconds=11)
    assert not rescue(store, clock, rescue_after=30.0)
    clock.advance(seconds=20)
    assert rescue(store, clock, rescue_after=30.0).dead_workers == ["slow"]


def test_dead_worker_without_jobs_is_removed(store: Store, clock: FakeClock, make_worker) -> None:
    make_worker("idle-dead")
    clock.advance(seconds=11)
    report = rescue(store, clock)
    assert report.dead_workers == ["idle-dead"]
    assert report.rescued == []
    assert store.worker_list() == []


def test_a_buried_worker_claims_nothing_until_it_registers_again(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    make_worker("paused")
    make_job(status="running", worker="paused")
    clock.advance(seconds=11)
    assert rescue(store, clock).dead_workers == ["paused"]
    # Back from its pause, before its heartbeat notices: it must not take more jobs.
    claim = dict(worker_id="paused", queues=["default"], limit=5, free=5)
    assert store.job_claim_batch(**claim, now=clock.db_now()) == []
    assert store.worker_heartbeat("paused", now=clock.db_now()) is False
    make_worker("paused")  # what its heartbeat does on finding its row gone
    assert len(store.job_claim_batch(**claim, now=clock.db_now())) == 1


def test_a_rescuer_never_buries_its_own_worker(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    make_worker("me")
    make_job(status="running", worker="me")
    clock.advance(seconds=11)
    rescuer = Rescuer(store, clock, worker_id="me")
    report = rescuer.run_once()
    assert report.dead_workers == []
    assert [w.id for w in store.worker_list()] == ["me"]


def test_old_heartbeats_are_no_evidence_while_the_rescuers_own_is_old(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    # Every heartbeat stalled alike (a writer held the lock, or this process was
    # paused): only released tokens count, in this pass and the next.
    make_worker("me")
    make_worker("other", on=other_app.store)  # alive: its token is held
    job = make_job(status="running", worker="other")
    clock.advance(seconds=11)
    rescuer = Rescuer(store, clock, worker_id="me")
    first = rescuer.run_once()
    assert first.dead_workers == [] and not first.kept_pace
    store.worker_heartbeat("me", now=clock.db_now())
    second = rescuer.run_once()  # the store keeps pace again, but only just
    assert second.dead_workers == [] and second.kept_pace
    third = rescuer.run_once()  # a full pass later: "other" really stopped writing
    assert third.dead_workers == ["other"]
    assert store.job_get(job.id).status is JobStatus.PENDING


def test_released_tokens_count_even_when_heartbeats_do_not(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("me")
    make_worker("gone", on=other_app.store)
    job = make_job(status="running", worker="gone")
    other_app.close()  # its process "dies": the token is released
    clock.advance(seconds=11)
    wait_token_freed(store, "gone")
    report = Rescuer(store, clock, worker_id="me").run_once()
    assert not report.kept_pace  # "me" has not written a heartbeat for 11 s
    assert report.dead_workers == ["gone"]
    assert store.job_get(job.id).status is JobStatus.PENDING


def test_a_second_rescuer_reports_nothing_already_buried(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("dead")
    make_job(status="running", worker="dead")
    clock.advance(seconds=11)
    assert rescue(store, clock).dead_workers == ["dead"]
    assert not Rescuer(other_app.store, clock).run_once()


def test_only_the_dead_workers_jobs_move(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("dead")
    dead_job = make_job(status="running", worker="dead")
    clock.advance(seconds=8)
    make_worker("alive", on=other_app.store)
    live_job = make_job(status="running", worker="alive")
    pending = make_job()
    clock.advance(seconds=3)
    report = rescue(store, clock)
    assert report.dead_workers == ["dead"]
    assert report.rescued == [dead_job.id]
    assert store.job_get(live_job.id).status is JobStatus.RUNNING
    assert store.job_get(pending.id).status is JobStatus.PENDING
    assert store.job_get(pending.id).rescues == 0
    assert [w.id for w in store.worker_list()] == ["alive"]


def test_second_pass_finds_nothing(store: Store, clock: FakeClock, make_worker, make_job) -> None:
    make_worker("dead")
    make_job(status="running", worker="dead")
    clock.advance(seconds=11)
    assert rescue(store, clock)
    assert not rescue(store, clock)


def test_unregister_settles_held_jobs(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    make_worker("leaving")
    plain = make_job(status="running", worker="leaving")
    amo = make_job(status="running", worker="leaving", at_most_once=True)
    report = store.worker_unregister("leaving", now=clock.db_now())
    assert report.rescued == [plain.id]
    assert report.lost == [amo.id]
    assert store.worker_list() == []


def test_register_again_after_being_declared_dead(
    store: Store, clock: FakeClock, make_worker
) -> None:
    make_worker("w")
    clock.advance(seconds=11)
    assert rescue(store, clock).dead_workers == ["w"]
    make_worker("w")
    assert [w.id for w in store.worker_list()] == ["w"]
    assert store.worker_heartbeat("w", now=clock.db_now()) is True
    clock.advance(seconds=5)
    assert not rescue(store, clock)


def test_worker_list_counts_running_jobs(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    make_worker("w1", queues=("default", "b"), concurrency=7)
    held = make_job(status="running", worker="w1")
    make_job(status="running", worker="w1")
    make_job()
    (w,) = store.worker_list()
    assert (w.id, w.queues, w.concurrency, w.running, w.claimed) == (
        "w1",
        ("default", "b"),
        7,
        0,
        2,
    )
    assert held.claim_token is not None
    store.job_complete_batch([], now=clock.db_now(), started=[Start(held.id, held.claim_token)])
    (w,) = store.worker_list()
    assert (w.running, w.claimed) == (1, 1)
    assert w.started_at == w.heartbeat_at == clock.now()
    clock.advance(seconds=2)
    assert store.worker_heartbeat("w1", now=clock.db_now()) is True
    (w,) = store.worker_list()
    assert w.heartbeat_at == clock.now()


# -- the watch: a token seen free over the grace (docs/design.md: Death and rescue) ----


class SteppedClock(FakeClock):
    """A fake clock whose monotonic time moves only when told to, too."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock.now())
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono


def watcher(store: Store, clock: FakeClock, **config) -> tuple[Rescuer, SteppedClock]:
    stepped = SteppedClock(clock)
    return Rescuer(store, stepped, RescuerConfig(**config)), stepped


def test_a_token_free_over_the_grace_is_a_death_whatever_the_heartbeat(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("gone", on=other_app.store)
    job = make_job(status="running", worker="gone")
    other_app.close()  # the process died: its heartbeat is still fresh
    wait_token_freed(store, "gone")
    rescuer, stepped = watcher(store, clock, token_grace=0.3)
    if store.token_sessions:  # a session may end alone: the grace first
        assert rescuer.tick() is None  # seen free once: not yet
        assert store.job_get(job.id).status is JobStatus.RUNNING
        stepped.mono += 0.2
        assert rescuer.tick() is None
        stepped.mono += 0.1
    report = rescuer.tick()  # SQLite: a free file lock is a death at once
    assert report is not None and report.dead_workers == ["gone"]
    assert report.rescued == [job.id]
    assert store.job_get(job.id).status is JobStatus.PENDING
    assert store.worker_list() == []
    stepped.mono += 0.1
    assert rescuer.tick() is None  # nothing left to see


@pytest.mark.parametrize("store_kind", ["postgres"], indirect=True)  # tokens are sessions
def test_a_token_taken_again_within_the_grace_keeps_its_worker(
    store: Store,
    clock: FakeClock,
    make_worker,
    make_job,
    other_app: Tock,
    store_kind: str,
    tmp_path,
) -> None:
    make_worker("flaky", on=other_app.store)
    job = make_job(status="running", worker="flaky")
    other_app.close()  # its session ended (a proxy gone, a terminated backend) ...
    wait_token_freed(store, "flaky")
    rescuer, stepped = watcher(store, clock, token_grace=0.3)
    assert rescuer.tick() is None
    back = Tock(store_url(store_kind, tmp_path), clock=clock)
    try:
        make_worker("flaky", on=back.store)  # ... and it took its token again at once
        stepped.mono += 0.5
        assert rescuer.tick() is None
        stepped.mono += 2.0  # the full pass: its token is held
        report = rescuer.tick()
        assert report is not None and not report
        assert store.job_get(job.id).status is JobStatus.RUNNING
    finally:
        back.close()


def test_the_watch_sees_only_free_tokens_of_others(
    store: Store, clock: FakeClock, make_worker, other_app: Tock
) -> None:
    make_worker("mine")  # held by this store
    make_worker("alive", on=other_app.store)
    make_worker("gone")
    store._drop_token("gone")  # type: ignore[attr-defined]  # as its process's death would
    wait_token_freed(store, "gone")
    assert store.worker_tokens_free(exclude=None, settle=4.0) == ["gone"]
    assert store.worker_tokens_free(exclude="gone", settle=4.0) == []


def test_released_names_the_workers_whose_free_token_alone_is_death(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("gone", on=other_app.store)
    make_worker("alive")
    job = make_job(status="running", worker="gone")
    kept = make_job(status="running", worker="alive")
    other_app.close()
    wait_token_freed(store, "gone")
    assert not rescue(store, clock)  # a fresh heartbeat: the full pass alone waits
    report = Rescuer(store, clock).run_once(released=["gone", "alive"])
    assert report.dead_workers == ["gone"]  # "alive" holds its token: named, not dead
    assert store.job_get(job.id).status is JobStatus.PENDING
    assert store.job_get(kept.id).status is JobStatus.RUNNING


def test_rescuer_options_are_checked() -> None:
    for bad in (
        {"watch_interval": 0},
        {"interval": -1},
        {"rescue_after": 0},
        {"token_grace": -0.1},
        {"heartbeat_interval": float("nan")},
    ):
        with pytest.raises(ValueError, match="RescuerConfig"):
            RescuerConfig(**bad)


def test_a_pass_the_watch_starts_counts_no_heartbeat_age(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    make_worker("quiet", on=other_app.store)  # alive (its token held), heartbeat stalled
    make_worker("gone")
    quiet = make_job(status="running", worker="quiet")
    store._drop_token("gone")  # type: ignore[attr-defined]  # as its process's death would
    wait_token_freed(store, "gone")
    clock.advance(seconds=11)
    rescuer, stepped = watcher(store, clock, token_grace=0.0)
    report = rescuer.tick()  # between full passes: the free token alone
    assert report is not None and report.dead_workers == ["gone"]
    assert store.job_get(quiet.id).status is JobStatus.RUNNING
    stepped.mono += 2.0  # the full pass: an 11 s old heartbeat is a death
    report = rescuer.tick()
    assert report is not None and report.dead_workers == ["quiet"]


@pytest.mark.parametrize("store_kind", ["postgres"], indirect=True)  # tokens are sessions
def test_no_free_token_counts_on_a_server_up_for_less_than_the_settle_time(
    store: Store, clock: FakeClock, make_worker, make_job, other_app: Tock
) -> None:
    """A server restart frees every token at once: until the server has been up for
    ``settle`` (two heartbeat intervals; here a settle longer than this server's uptime
    plays the freshly restarted server), a free token is no death."""
    make_worker("gone", on=other_app.store)
    job = make_job(status="running", worker="gone")
    other_app.close()
    wait_token_freed(store, "gone")
    ages = 100 * 365 * 24 * 3600.0  # longer than any server has been up
    assert store.worker_tokens_free(exclude=None, settle=ages) == []
    assert store.worker_tokens_free(exclude=None, settle=4.0) == ["gone"]
    report = store.worker_rescue(
        rescue_after=ages * 2, token_after=ages, now=clock.db_now(), released=["gone"]
    )
    assert not report
    assert store.job_get(job.id).status is JobStatus.RUNNING
    report = store.worker_rescue(
        rescue_after=ages * 2, token_after=4.0, now=clock.db_now(), released=["gone"]
    )
    assert report.dead_workers == ["gone"]
