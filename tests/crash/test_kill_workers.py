"""Real processes, real signals (docs/design.md: Guarantees; Semantics: death and rescue).

Workers run ``crashapp`` in their own processes on one store (each test runs on SQLite
and on PostgreSQL); this process enqueues, watches the store, and sends SIGKILL, SIGSTOP
and SIGCONT. Every task writes a start log
outside the store, so a start the store never learnt of still shows. Waits poll with
generous deadlines; no test asserts a duration.
"""

from __future__ import annotations

import random
import signal
from collections import Counter

import pytest

from tock import JobStatus

from .cluster import Cluster, WorkerProcess, cli_worker, runner_worker

pytestmark = pytest.mark.slow

SUCCEEDED, LOST = JobStatus.SUCCEEDED, JobStatus.LOST


def tag_of(job) -> str:
    return job.args[-1]


def enqueue(cluster: Cluster, task: str, items: list[tuple[object, ...]]) -> None:
    cluster.app.tasks[task].enqueue_many(items)


def registered(cluster: Cluster, *workers: WorkerProcess) -> bool:
    return all(cluster.worker_row(w) is not None for w in workers)


def test_sigkill_one_of_three_workers_loses_no_job(cluster: Cluster) -> None:
    """5,000 jobs (20,000 on PostgreSQL), three workers, one killed while it runs jobs:
    at-least-once jobs all succeed, at-most-once jobs succeed or end lost and never
    start twice. Two of the workers run two claimers."""
    rng = random.Random(20300101)
    # PostgreSQL: four times the jobs, each shorter and more at once, in about the time.
    rounds, ms, concurrency = (
        (160, (2, 10), "20") if cluster.kind == "postgres" else (40, (10, 50), "10")
    )
    total = rounds * 125
    # Interleaved so that whatever a worker holds mixes both kinds.
    for r in range(rounds):
        enqueue(
            cluster,
            "crash.sleepy",
            [(rng.randint(*ms), f"a{r}-{i}") for i in range(100)],
        )
        enqueue(cluster, "crash.once", [(rng.randint(*ms), f"o{r}-{i}") for i in range(25)])
    # Two of them (the victim among them) claim with two transactions in flight.
    lanes = ("--claimers", "2", "--prefetch", "50")
    workers = [
        cluster.start_worker(
            f"w{i}", cli_worker("--concurrency", concurrency, *(lanes if i < 2 else ()))
        )
        for i in range(3)
    ]
    cluster.wait_for("three workers", lambda: registered(cluster, *workers), 60)
    victim = workers[0]
    row = cluster.worker_row(victim)
    assert row is not None
    victim_id = row.id

    def victim_runs_both_kinds() -> bool:
        held = cluster.running_jobs(victim_id)
        return any(j.at_most_once for j in held) and any(not j.at_most_once for j in held)

    cluster.wait_for("the victim to hold jobs of both kinds", victim_runs_both_kinds, 60)
    cluster.kill(victim)
    assert victim.popen.wait(10) == -signal.SIGKILL
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 120)
    for w in workers[1:]:
        assert cluster.stop(w) == 0

    jobs = cluster.jobs()
    assert len(jobs) == total
    assert len({j.id for j in jobs}) == total
    statuses = Counter((j.task, j.status) for j in jobs)
    assert set(statuses) <= {
        ("crash.sleepy", SUCCEEDED),
        ("crash.once", SUCCEEDED),
        ("crash.once", LOST),
    }, statuses
    assert statuses["crash.sleepy", SUCCEEDED] == rounds * 100
    starts = cluster.starts()
    for job in jobs:
        pids = starts.get(tag_of(job), [])
        if job.at_most_once:
            assert len(pids) <= 1, (job, pids)
            if job.status is SUCCEEDED:
                assert len(pids) == 1, (job, pids)
            else:
                assert job.worker_id == victim_id, job  # only the dead worker's jobs
        else:
            assert pids, job
            assert job.rescues <= 1, job
    rescued = [j for j in jobs if j.rescues >= 1 or j.status is LOST]
    assert rescued, "the killed worker held jobs: some must have been rescued or lost"
    cluster.assert_clean_output()


def test_a_rescue_uses_up_no_retry(cluster: Cluster) -> None:
    """Jobs of a task with ``retries=0`` whose worker is killed run again and succeed;
    each started at most twice: the killed attempt and the rescued one."""
    assert cluster.app.tasks["crash.fragile"].options.retries == 0
    enqueue(cluster, "crash.fragile", [(20, f"f{i}") for i in range(20)])
    # Its slots and prefetch hold all 20: a hanging first attempt never ends elsewhere.
    victim = cluster.start_worker("victim", cli_worker("--prefetch", "10"))

    def victim_started_ten() -> bool:
        return sum(len(p) for p in cluster.starts().values()) >= 10

    # Each first attempt hangs until the worker dies.
    cluster.wait_for("the victim to start ten jobs", victim_started_ten, 60)
    cluster.kill(victim)
    assert victim.popen.wait(10) == -signal.SIGKILL
    rescuer = cluster.start_worker("rescuer", cli_worker())
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 60)
    assert cluster.stop(rescuer) == 0

    jobs = cluster.jobs()
    assert len(jobs) == 20
    starts = cluster.starts()
    killed_attempts = 0
    for job in jobs:
        assert job.status is SUCCEEDED, job
        assert job.retries == 0, job
        assert job.errors_so_far == 1, job  # the successful attempt alone
        assert job.result == [tag_of(job), rescuer.pid], job
        pids = starts[tag_of(job)]
        if pids[0] == victim.pid:
            killed_attempts += 1
            assert pids == [victim.pid, rescuer.pid], (job, pids)
            assert job.rescues == 1, job
        else:
            # Claimed by the victim but never started (the prefetch), or left pending.
            assert pids == [rescuer.pid], (job, pids)
            assert job.rescues in (0, 1), job
    assert killed_attempts == 10
    cluster.assert_clean_output()


def test_sigstopped_worker_comes_back_without_harm(cluster: Cluster) -> None:
    """A worker paused past ``rescue_after``: the others rescue and run its jobs; when it
    resumes, its late completions (stale claim tokens) change nothing, it registers again
    and goes on working, and every job ends succeeded, once, in the store."""
    options = ("--heartbeat", "0.5", "--rescue-after", "3", "--rescue-interval", "0.5")
    # The jobs it will hold: a first attempt ends during the pause; a rescued one takes
    # RERUN_MS, so the paused worker's completion lands while another worker runs it.
    enqueue(cluster, "crash.steady", [(2_000, f"h{i}") for i in range(20)])
    paused = cluster.start_worker("w0", runner_worker(*options))

    def started_ten() -> bool:
        return sum(p.count(paused.pid) for p in cluster.starts().values()) >= 10

    cluster.wait_for("it to start ten jobs", started_ten, 60)
    row = cluster.worker_row(paused)
    assert row is not None
    paused_id = row.id

    # With every slot and its prefetch full it has nothing to write but its heartbeat:
    # paused just after one, it holds no write lock (which would stall every worker).
    def heartbeat_moved() -> bool:
        now = cluster.worker_row(paused)
        return now is not None and now.heartbeat_at != row.heartbeat_at

    cluster.wait_for("a heartbeat", heartbeat_moved, 30, poll=0.002)
    cluster.kill(paused, signal.SIGSTOP)
    cluster.wait_paused(paused)
    held = cluster.running_jobs(paused_id)  # as they stay until it is declared dead
    held_ids = {j.id for j in held}
    starts = cluster.starts()
    started_by_paused = [tag_of(j) for j in held if paused.pid in starts.get(tag_of(j), [])]
    assert started_by_paused, (held, starts)

    others = [cluster.start_worker(f"w{i}", runner_worker(*options)) for i in (1, 2)]
    rng = random.Random(20300102)
    enqueue(cluster, "crash.steady", [(rng.randint(20, 50), f"s{i}") for i in range(1_500)])
    cluster.wait_for(
        "the paused worker to be declared dead", lambda: not registered(cluster, paused), 60
    )

    def taken_by_others() -> bool:
        records = [cluster.app.store.job_get(i) for i in held_ids]
        return all(r.worker_id not in (None, paused_id) for r in records)

    def rerun_by_others() -> bool:
        starts = cluster.starts()
        return all(set(starts[tag]) - {paused.pid} for tag in started_by_paused)

    cluster.wait_for("the others to take its jobs", taken_by_others, 60)
    cluster.wait_for("the others to run its jobs again", rerun_by_others, 60)
    cluster.kill(paused, signal.SIGCONT)
    cluster.wait_for("it to register again", lambda: registered(cluster, paused), 30)
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 60)

    # It goes on working after its return.
    enqueue(cluster, "crash.steady", [(20, f"t{i}") for i in range(300)])
    cluster.wait_for("the second batch", lambda: cluster.live_count() == 0, 60)
    for w in [paused, *others]:
        assert cluster.stop(w) == 0

    jobs = cluster.jobs()
    assert len(jobs) == 1_820
    assert len({j.id for j in jobs}) == 1_820
    assert Counter(j.status for j in jobs) == {SUCCEEDED: 1_820}
    other_pids = {w.pid for w in others}
    starts = cluster.starts()
    for job in jobs:
        tag = tag_of(job)
        assert job.result[0] == tag, job
        assert job.result[1] in starts[tag], (job, starts[tag])
        if job.id in held_ids:
            # Rescued, then run again by another worker; the paused worker's completion,
            # which landed meanwhile, carried a stale token and changed nothing.
            assert job.rescues >= 1, job
            assert job.result[1] in other_pids, job
            assert job.worker_id != paused_id, job
    for tag in started_by_paused:
        assert starts[tag][0] == paused.pid, (tag, starts[tag])
    assert any(j.result[1] == paused.pid for j in jobs if tag_of(j).startswith("t"))
    cluster.assert_clean_output()


def test_a_killed_workers_token_gets_its_jobs_rescued(cluster: Cluster) -> None:
    """The liveness token (docs/design.md: Death and rescue): with heartbeats every 30 s
    and ``rescue_after`` at 120 s, a dead worker's heartbeat counts for nothing for a
    minute (two intervals, then the old rule of a free token with an old heartbeat),
    yet its jobs are rescued as soon as the leader's watch saw its token (a PostgreSQL
    session advisory lock; an fcntl lock on SQLite) free over the grace."""
    options = ("--heartbeat", "30", "--rescue-after", "120")
    enqueue(cluster, "crash.fragile", [(20, f"k{i}") for i in range(20)])
    victim = cluster.start_worker("victim", runner_worker(*options, "--prefetch", "10"))

    def victim_started_ten() -> bool:
        return sum(len(p) for p in cluster.starts().values()) >= 10

    # Each first attempt hangs until the worker dies; slots and prefetch hold all 20.
    cluster.wait_for("the victim to start ten jobs", victim_started_ten, 60)
    survivor = cluster.start_worker("survivor", runner_worker(*options))
    cluster.wait_for("the survivor", lambda: registered(cluster, survivor), 60)
    row = cluster.worker_row(victim)
    assert row is not None
    cluster.kill(victim)
    assert victim.popen.wait(10) == -signal.SIGKILL
    cluster.wait_for(
        "the victim's jobs to be rescued and run", lambda: cluster.live_count() == 0, 50
    )
    assert not registered(cluster, victim)
    assert cluster.stop(survivor) == 0

    jobs = cluster.jobs()
    assert len(jobs) == 20
    starts = cluster.starts()
    for job in jobs:
        assert job.status is SUCCEEDED, job
        assert job.result == [tag_of(job), survivor.pid], job
        assert job.rescues == 1, job  # every one was claimed by the victim
        pids = starts[tag_of(job)]
        assert pids in ([victim.pid, survivor.pid], [survivor.pid]), (job, pids)
        # Rescued (then finished) while the victim's last heartbeat was younger than
        # two intervals: the heartbeat cannot explain it, only the released token.
        assert job.finished_at is not None
        assert (job.finished_at - row.heartbeat_at).total_seconds() < 60, (job, row)
    assert sum(starts[tag_of(j)][0] == victim.pid for j in jobs) == 10
    survivor_log = dict(cluster.logs())[f"survivor (pid {survivor.pid}) output"]
    assert f"rescued the jobs of dead worker(s) {row.id}: 20 back to pending" in survivor_log
    cluster.assert_clean_output()


def test_a_worker_declared_dead_starts_none_of_the_jobs_it_held(cluster: Cluster) -> None:
    """A worker paused past ``rescue_after`` while it runs one job and holds five more
    unstarted (its prefetch): another worker rescues and runs them all. Resumed, the first
    learns it was declared dead before it starts anything, and hands the five back
    instead of starting them: no task body runs for a job another worker already ran."""
    options = ("--concurrency", "1", "--prefetch", "10", "--heartbeat", "0.5")
    options += ("--rescue-after", "3", "--rescue-interval", "0.5")
    app = cluster.app
    app.tasks["crash.sleepy"].using(priority=10).enqueue(4_000, "long")
    held = [app.tasks["crash.sleepy"].enqueue(20, f"held{i}") for i in range(5)]
    paused = cluster.start_worker("w0", runner_worker(*options))
    cluster.wait_for("the long job to start", lambda: "long" in cluster.starts(), 60)
    row = cluster.worker_row(paused)
    assert row is not None

    def all_claimed() -> bool:
        records = [app.store.job_get(j.id) for j in held]
        return all(r.worker_id == row.id and r.claimed for r in records)

    cluster.wait_for("its prefetch to hold the five", all_claimed, 30)

    def heartbeat_moved() -> bool:  # paused just after a beat: it holds no write lock
        now = cluster.worker_row(paused)
        return now is not None and now.heartbeat_at != row.heartbeat_at

    cluster.wait_for("a heartbeat", heartbeat_moved, 30, poll=0.002)
    cluster.kill(paused, signal.SIGSTOP)
    cluster.wait_paused(paused)
    other = cluster.start_worker("w1", runner_worker(*options))

    def held_ran_elsewhere() -> bool:
        starts = cluster.starts()
        return all(starts.get(f"held{i}") == [other.pid] for i in range(5))

    cluster.wait_for("the other worker to run the five", held_ran_elsewhere, 60)
    cluster.kill(paused, signal.SIGCONT)  # its long job's sleep is over: it looks for work
    cluster.wait_for("it to register again", lambda: registered(cluster, paused), 30)
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 60)
    for w in (paused, other):
        assert cluster.stop(w) == 0

    starts = cluster.starts()
    assert {f"held{i}": starts[f"held{i}"] for i in range(5)} == {
        f"held{i}": [other.pid] for i in range(5)
    }
    assert paused.pid in starts["long"]  # the one it had started, before its pause
    assert {app.store.job_get(j.id).status for j in held} == {JobStatus.SUCCEEDED}
    log = paused.output_path.read_text(errors="replace")
    assert "was declared dead by the rescuer" in log
    cluster.assert_clean_output()
