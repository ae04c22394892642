"""PostgreSQL drops the workers' sessions while they run jobs (issue: connection loss).

Real worker processes (``python -m tock --app crashapp:app worker``) run jobs while this
process terminates their backends with ``pg_terminate_backend``: every session they hold
at once (the pooled ones, the LISTEN one and the liveness-token ones), as a server restart
would, twice; or, through a TCP relay of this test's, the server goes away for a few
seconds for them alone (every session cut, connections refused meanwhile). Their
sessions carry an application name of this test's own, so no other session on the server
is touched. Waits poll with deadlines; no test asserts a duration.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from conftest import require_postgres

from tock import JobStatus

from .cluster import Cluster, WorkerProcess, cli_worker

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("store_kind", ["postgres"], indirect=True)]

LOST = "lost the connection to PostgreSQL"
BACK = "reconnected to PostgreSQL"


def session_names(cluster: Cluster) -> list[str]:
    """The application names of the workers' sessions: pooled, LISTEN, liveness token."""
    return [cluster.app_name, f"{cluster.app_name}-listen", f"{cluster.app_name}-worker"]


def terminate_sessions(admin: psycopg.Connection, cluster: Cluster) -> Counter[str]:
    """Ends every session of the workers at once; how many of each kind it ended."""
    rows = admin.execute(
        "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND application_name = ANY(%s)",
        [session_names(cluster)],
    ).fetchall()
    return Counter(name for name, ended in rows if ended)


def tokens_held(admin: psycopg.Connection, cluster: Cluster) -> int:
    """Liveness tokens (session advisory locks) held by the workers' token sessions."""
    row = admin.execute(
        "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
        [f"{cluster.app_name}-worker"],
    ).fetchone()
    assert row is not None
    return int(row[0])


def listening(admin: psycopg.Connection, cluster: Cluster) -> int:
    """The workers' LISTEN sessions open now."""
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = %s",
        [f"{cluster.app_name}-listen"],
    ).fetchone()
    assert row is not None
    return int(row[0])


def output(worker: WorkerProcess) -> str:
    return worker.output_path.read_text(errors="replace")


def assert_each_ran_once(cluster: Cluster, total: int) -> None:
    """Every job succeeded, none was rescued, and each started once: in the worker that
    finished it (its result names that worker's pid)."""
    jobs = cluster.jobs()
    assert len(jobs) == total
    assert Counter(j.status for j in jobs) == {JobStatus.SUCCEEDED: total}
    assert all(j.rescues == 0 for j in jobs), [j for j in jobs if j.rescues]
    starts = cluster.starts()
    for job in jobs:
        assert starts[job.args[-1]] == [job.result[1]], (job, starts[job.args[-1]])


def test_workers_ride_out_the_loss_of_every_session(
    cluster: Cluster, pg_admin: psycopg.Connection
) -> None:
    """Twice, while three workers run jobs, every one of their sessions is terminated at
    once (a server restart drops every session, the liveness tokens' too). Each worker
    reconnects (LISTEN too), takes its token again and goes on: no worker exits, no job
    is rescued (no live worker is declared dead), every job succeeds once, and each
    worker's log says once per outage that it lost the connection and once that it is
    back, with none of the pool's own warnings. One worker runs two claimers."""
    workers = [
        cluster.start_worker(
            f"w{i}", cli_worker("--concurrency", "10", *(("--claimers", "2") if i == 0 else ()))
        )
        for i in range(3)
    ]
    cluster.wait_for(
        "three workers", lambda: all(cluster.worker_row(w) is not None for w in workers), 60
    )
    cluster.wait_for("three tokens", lambda: tokens_held(pg_admin, cluster) == 3, 30)
    cluster.wait_for("three LISTEN sessions", lambda: listening(pg_admin, cluster) == 3, 30)
    ids = {w.name: row.id for w in workers if (row := cluster.worker_row(w)) is not None}
    rng = random.Random(20300103)
    total = 0
    for outage in (1, 2):
        # Enough work to keep every worker busy across the outage (and after it, so
        # that the LISTEN connection's return and the claims after it are exercised).
        items = [(rng.randint(10, 40), f"c{outage}-{i}") for i in range(1_500)]
        cluster.app.tasks["crash.sleepy"].enqueue_many(items)
        total += len(items)

        def all_busy() -> bool:
            rows = cluster.worker_rows()
            return len(rows) == 3 and all(r.running > 0 for r in rows)

        cluster.wait_for("every worker to run jobs", all_busy, 60)
        ended = terminate_sessions(pg_admin, cluster)
        # Every worker's LISTEN and token sessions, and pooled ones, in one go.
        assert ended[f"{cluster.app_name}-worker"] == 3, ended
        assert ended[f"{cluster.app_name}-listen"] == 3, ended
        assert ended[cluster.app_name] >= 3, ended

        def reconnected(n: int = outage) -> bool:
            return all(output(w).count(BACK) >= n for w in workers)

        cluster.wait_for("every worker to reconnect", reconnected, 30)
        cluster.wait_for(
            "every worker to take its token again", lambda: tokens_held(pg_admin, cluster) == 3, 30
        )
        # The log says "reconnected" once the first of a worker's sessions is back; its
        # LISTEN session may follow a moment later (it waits out its own backoff).
        cluster.wait_for(
            "every worker to LISTEN again", lambda: listening(pg_admin, cluster) == 3, 30
        )
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 120)
    # The same three workers, never declared dead nor registered again.
    assert {r.id for r in cluster.worker_rows()} == set(ids.values())
    for w in workers:
        assert cluster.stop(w) == 0

    jobs = cluster.jobs()
    assert len(jobs) == total
    assert len({j.id for j in jobs}) == total
    assert Counter(j.status for j in jobs) == {JobStatus.SUCCEEDED: total}
    assert all(j.rescues == 0 for j in jobs), [j for j in jobs if j.rescues]
    starts = cluster.starts()
    pids = {w.pid for w in workers}
    for job in jobs:
        tag = job.args[-1]
        # Nobody rescued anything: each job started once, in the worker that finished it.
        assert starts[tag] == [job.result[1]], (job, starts[tag])
        assert job.result == [tag, job.result[1]] and job.result[1] in pids, job
    for w in workers:
        text = output(w)
        assert text.count(LOST) == 2, text[-5_000:]
        assert text.count(BACK) == 2, text[-5_000:]
        assert "rescued" not in text and "declared dead" not in text, text[-5_000:]
        assert "psycopg" not in text, text[-5_000:]  # the pool's own warnings stay out
    cluster.assert_clean_output()


class Proxy:
    """A TCP relay between the workers and PostgreSQL that can play a server restart for
    them alone: ``outage()`` cuts every relayed connection (both ends: each backend
    sees its client vanish and ends, freeing its advisory locks) and turns new ones away
    until ``restore()``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)  # close() does not wake a blocked accept()
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.down = False
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            client.settimeout(None)
            with self.lock:
                if self.down or self.closed:
                    client.close()  # as a restarting server does
                    continue
                try:
                    upstream = socket.create_connection(self.target)
                except OSError:
                    client.close()
                    continue
                self.open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._cut(src, dst)

    def _cut(self, *socks: socket.socket) -> None:
        with self.lock:
            for s in socks:
                if s in self.open:
                    self.open.discard(s)
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                    s.close()

    def outage(self) -> int:
        with self.lock:
            self.down = True
            n = len(self.open) // 2
        self._cut(*list(self.open))
        return n

    def restore(self) -> None:
        with self.lock:
            self.down = False

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self.thread.join()
        self.listener.close()
        self._cut(*list(self.open))


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    parts = urlsplit(require_postgres())
    p = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        yield p
    finally:
        p.close()


def test_a_short_server_outage_declares_no_live_worker_dead(
    cluster: Cluster, pg_admin: psycopg.Connection, proxy: Proxy
) -> None:
    """The server goes away for about 2.5 s (less than two heartbeat intervals) while
    three workers run jobs, as in a restart: every session dropped, connections refused
    meanwhile. The workers reconnect with backoff, take their tokens again, and nobody is
    declared dead: no job rescued, every job succeeds once, one loss and one return in
    each worker's log."""
    via_proxy = urlsplit(cluster.url)._replace(
        netloc=f"{urlsplit(cluster.url).username}@127.0.0.1:{proxy.port}"
    )
    cluster.url = urlunsplit(via_proxy)  # the workers' URL; this process connects directly
    workers = [cluster.start_worker(f"w{i}", cli_worker("--concurrency", "10")) for i in range(3)]
    cluster.wait_for(
        "three workers", lambda: all(cluster.worker_row(w) is not None for w in workers), 60
    )
    cluster.wait_for("three tokens", lambda: tokens_held(pg_admin, cluster) == 3, 30)
    rng = random.Random(20300104)
    items = [(rng.randint(10, 40), f"r{i}") for i in range(3_000)]
    cluster.app.tasks["crash.sleepy"].enqueue_many(items)

    def all_busy() -> bool:
        rows = cluster.worker_rows()
        return len(rows) == 3 and all(r.running > 0 for r in rows)

    cluster.wait_for("every worker to run jobs", all_busy, 60)
    assert proxy.outage() >= 6  # at least each worker's LISTEN and token sessions
    cluster.wait_for("the tokens to be free", lambda: tokens_held(pg_admin, cluster) == 0, 10)
    time.sleep(2.5)  # the outage: shorter than two heartbeat intervals (4 s)
    proxy.restore()
    cluster.wait_for(
        "every worker to reconnect", lambda: all(BACK in output(w) for w in workers), 30
    )
    cluster.wait_for("the tokens taken again", lambda: tokens_held(pg_admin, cluster) == 3, 30)
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 120)
    for w in workers:
        assert cluster.stop(w) == 0

    assert_each_ran_once(cluster, len(items))
    for w in workers:
        text = output(w)
        assert text.count(LOST) == 1, text[-5_000:]
        assert text.count(BACK) == 1, text[-5_000:]
        assert "rescued" not in text and "declared dead" not in text, text[-5_000:]
        assert "psycopg" not in text, text[-5_000:]
    cluster.assert_clean_output()


def test_a_worker_whose_token_session_alone_ends_is_not_declared_dead(
    cluster: Cluster, pg_admin: psycopg.Connection
) -> None:
    """Three times, while three workers run jobs, the liveness-token sessions alone are
    terminated (an administrator, a proxy that dropped them): the server stays up and
    the leader's own connections are untouched, so its watch sees every token free. Each
    worker hears its token session end and takes the token again at once, well within
    the rescuer's grace: nobody is declared dead, no job is rescued, every job succeeds
    once (docs/design.md: Death and rescue)."""
    workers = [cluster.start_worker(f"w{i}", cli_worker("--concurrency", "10")) for i in range(3)]
    cluster.wait_for(
        "three workers", lambda: all(cluster.worker_row(w) is not None for w in workers), 60
    )
    cluster.wait_for("three tokens", lambda: tokens_held(pg_admin, cluster) == 3, 30)
    ids = {row.id for w in workers if (row := cluster.worker_row(w)) is not None}
    rng = random.Random(20301205)
    items: list[tuple[int, str]] = []

    def all_busy() -> bool:
        rows = cluster.worker_rows()
        return len(rows) == 3 and all(r.running > 0 for r in rows)

    for cut in range(3):
        more = [(rng.randint(10, 40), f"t{cut}-{i}") for i in range(1_500)]
        cluster.app.tasks["crash.sleepy"].enqueue_many(more)
        items += more
        cluster.wait_for("every worker to run jobs", all_busy, 60)
        ended = pg_admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [f"{cluster.app_name}-worker"],
        ).fetchone()
        assert ended is not None and ended[0] == 3, ended
        cluster.wait_for(
            "every worker to take its token again", lambda: tokens_held(pg_admin, cluster) == 3, 30
        )
        time.sleep(1.0)  # several of the leader's looks at the tokens, past the grace
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 120)
    assert {r.id for r in cluster.worker_rows()} == ids  # never declared dead
    for w in workers:
        assert cluster.stop(w) == 0
    assert_each_ran_once(cluster, len(items))
    for w in workers:
        text = output(w)
        assert "rescued" not in text and "declared dead" not in text, text[-5_000:]
    cluster.assert_clean_output()
