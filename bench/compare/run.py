"""Tock and its peers side by side, on this machine's real servers, in one run.

    python bench/compare/run.py                      # every system, one run a cell (~15-20 min)
    python bench/compare/run.py --full               # 3 runs a cell, N = 100,000, d 60 s, e 120 s
    python bench/compare/run.py --tock-only --quick  # Tock alone, smoke sizes (CI runs this)
    python bench/compare/run.py --systems tock-postgres-tp,celery-redis --workloads drain
    python bench/compare/run.py --full --resume      # go on with an interrupted run
    python bench/compare/run.py --full --tock-at HEAD  # Tock as committed, not the checkout

Every measured cell is saved at once to a progress file (``bench/compare/progress/``,
one per kind of run), so a long run that is stopped (Ctrl-C, a machine that goes away)
goes on where it stopped with ``--resume``; the report says over how many sittings it
was measured. The full run takes hours here (the slowest peers drain 100,000 jobs at a
few hundred a second), so its progress file, ``compare-full.json``, is meant to be
committed between sittings. ``--tock-at REV`` measures Tock's code as of a commit (taken
out of git into ``bench/compare/.tock/``) instead of the checkout's, so a run that spans
sittings goes on measuring one version while the checkout moves on; the report names
the commit measured.

Systems (``systems/__init__.py``): Tock on SQLite and on PostgreSQL, each at its defaults
and at its documented throughput settings; Celery (Redis broker, and RabbitMQ), RQ,
Dramatiq (Redis), Huey (Redis, and SQLite), Procrastinate and PgQueuer (PostgreSQL). The
peers are installed from PyPI into an environment of the benchmark's own
(``bench/compare/.venv``, made on first use from ``requirements.txt``, with Tock from
this checkout); ``--python`` names another interpreter that has them all.

Workloads (each system's driver measures one cell in a process of its own; see
``common.py``): a. bulk enqueue of N jobs through the system's fastest documented path;
b. drain: N pre-enqueued no-op jobs, W = 1 and 2 worker processes, two rates from one
drain: from the first job's start to the last job's end, and "from start", from the
driver's launch of the worker processes to the last job's end (each system's worker
start-up in it); c. enqueue-to-start latency on an idle worker, p50/p99;
d. fire-to-start delay of an every-second schedule, p50/p99; e. crash recovery: from the
SIGKILL of a worker holding jobs until those jobs run again, capped.

Tock at its defaults runs ``tock worker`` with no flags. Its throughput-settings variants
differ from the defaults only in how workers claim, so they run b and c; the defaults run
every workload. In a run, the order of the systems rotates from one workload to the next,
so no system always goes first or last; with several runs each cell is the median. A
complete run (every system and workload at the sizes of its kind, default or ``--full``)
writes the report to ``docs/benchmarks.md`` (the raw results to ``docs/benchmarks.json``,
the chart to ``docs/benchmarks.svg``); any other run (``--quick``, ``--tock-only``,
``--systems``, ``--workloads``, ``--n``) writes ``report-<kind>.md``, ``.json`` and
``.svg`` beside its progress file in ``bench/compare/progress/``, and leaves the
committed report alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOCS = ROOT / "docs"
VENV = HERE / ".venv"
# Progress files of runs: the full run's is committed between sittings (see --resume).
RESULTS = HERE / "progress"
TREES = HERE / ".tock"  # Tock's code as of a commit (--tock-at), one directory a commit
sys.path.insert(0, str(HERE))

from systems import SYSTEMS, TOCK  # noqa: E402

#: cell -> (workload, extra argv, title, unit, higher is better)
CELLS: dict[str, tuple[str, tuple[str, ...], str, str, bool]] = {
    "enqueue": ("enqueue", (), "a. bulk enqueue", "jobs/s", True),
    "drain1": ("drain", ("--workers", "1"), "b. drain, 1 worker process", "jobs/s", True),
    "drain2": ("drain", ("--workers", "2"), "b. drain, 2 worker processes", "jobs/s", True),
    "latency": ("latency", (), "c. enqueue-to-start, idle worker", "ms", False),
    "periodic": ("periodic", (), "d. every-second schedule, fire-to-start", "ms", False),
    "recovery": ("recovery", (), "e. SIGKILLed worker, until its jobs run again", "s", False),
}
THROUGHPUT_CELLS = ("drain1", "drain2", "latency")  # what Tock's -tp variants run
TIMEOUT = 900.0  # one cell, at most (a system that hangs fails its cell, not the run)


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    settings: str = ""
    notes: list[str] = field(default_factory=list)
    # Drains: microseconds of CPU a job in the system's servers and in its workers.
    cpu_server: list[float] = field(default_factory=list)
    cpu_workers: list[float] = field(default_factory=list)
    # Drains: the rate from the launch of the worker processes, and the seconds from
    # that launch to the first job's start (none in results saved before they were).
    from_start: list[float] = field(default_factory=list)
    first_job: list[float] = field(default_factory=list)

    @property
    def value(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def from_start_value(self) -> float | None:
        return statistics.median(self.from_start) if self.from_start else None

    @property
    def first_job_value(self) -> float | None:
        return statistics.median(self.first_job) if self.first_job else None

    @property
    def p99_value(self) -> float | None:
        return statistics.median(self.p99) if self.p99 else None

    @property
    def cpu(self) -> tuple[float, float] | None:
        """Median CPU a job (server, workers) in microseconds, where measured."""
        if not self.cpu_server or not self.cpu_workers:
            return None
        return statistics.median(self.cpu_server), statistics.median(self.cpu_workers)


def bench_python(args: argparse.Namespace) -> str:
    """The interpreter the drivers run with: the project's for --tock-only, else the
    benchmark's own environment (made, or brought up to date with requirements.txt)."""
    if args.python:
        return str(args.python)
    if args.tock_only:
        return sys.executable
    requirements = HERE / "requirements.txt"
    stamp = VENV / ".requirements-sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    python = VENV / "bin" / "python"
    if not python.exists() or not stamp.exists() or stamp.read_text() != digest:
        print(f"making the benchmark's environment in {VENV} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(requirements),
             "-e", f"{ROOT}[postgres]"],
            check=True,
        )  # fmt: skip
        stamp.write_text(digest)
    return str(python)


def sizes(args: argparse.Namespace) -> dict[str, tuple[str, ...]]:
    """Per workload, the size options every driver gets."""
    if args.quick:
        n, samples, seconds, cap = 2_000, 20, 4.0, 20.0
    elif args.full:
        n, samples, seconds, cap = 100_000, 200, 60.0, 120.0
    else:
        n, samples, seconds, cap = 20_000, 200, 15.0, 30.0
    n = args.n or n
    return {
        "enqueue": ("--n", str(n)),
        "drain": ("--n", str(n)),
        "latency": ("--samples", str(samples)),
        "periodic": ("--seconds", str(seconds)),
        "recovery": ("--cap", str(cap)),
    }


@dataclass(frozen=True)
class TockCode:
    """The Tock a run measures: the checkout's, or a commit's (``--tock-at``)."""

    src: Path  # the directory that holds the ``tock`` package
    commit: str  # short hash, with "+" when the checkout's src/tock has uncommitted changes
    env: dict[str, str]  # what a driver's environment needs to import this Tock

    def digest(self) -> str:
        """The code as measured: a run resumed after it changed would mix two versions."""
        h = hashlib.sha256()
        for path in sorted((self.src / "tock").rglob("*")):
            if path.is_file() and path.suffix in {".py", ".sql"}:
                rel = path.relative_to(self.src.parent).as_posix().encode()
                h.update(rel + b"\0" + path.read_bytes())
        return h.hexdigest()[:16]


def compile_bytecode(python: str, code: TockCode) -> None:
    """Bytecode for everything the workers import, written once before they start: the
    environment's packages, Tock and the drivers' modules. ``pip install`` writes it for
    the packages it installs, but not where Python may not write bytecode
    (``PYTHONDONTWRITEBYTECODE``, as on the machines this runs on), and a checkout imported
    from source never has it: every worker process would then compile what it imports
    at each start (100 ms and more of a PostgreSQL worker's start-up here), a cost no
    installed system pays. Files already up to date are left alone (see ../precompile.py)."""
    where = subprocess.run(
        [python, "-c", "import sysconfig; p = sysconfig.get_paths(); "
         "print(p['purelib']); print(p['platlib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    dirs = [*dict.fromkeys(where), str(code.src / "tock"), str(HERE / "systems")]
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", *dirs], stdout=subprocess.DEVNULL
    )  # a file that does not compile (a test of some package's) is no reason to stop
    subprocess.run(
        [python, "-m", "compileall", "-q", "-l", str(HERE)], check=True, stdout=subprocess.DEVNULL
    )


def git(*argv: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def tock_code(rev: str | None, python: str) -> TockCode:
    """The checkout's Tock, or (``rev``) Tock's code as of that commit, taken out of git
    once into ``.tock/<hash>``; drivers and their workers import it first (PYTHONPATH)."""
    if rev is None:
        head = git("rev-parse", "--short=12", "HEAD") or "unknown"
        dirty = bool(git("status", "--porcelain", "--", "src/tock"))
        return TockCode(ROOT / "src", head + ("+" if dirty else ""), {})
    sha = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not sha:
        raise SystemExit(f"--tock-at: {rev!r} is not a commit of this repository")
    tree = TREES / sha
    if not (tree / "src" / "tock").is_dir():
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", sha, "src"], capture_output=True, check=True
        ).stdout
        partial = TREES / f"{sha}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        partial.replace(tree)
    src = tree / "src"
    path = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)
    code = TockCode(src, sha[:12], {"PYTHONPATH": path})
    # Drivers import tock: make sure it is this one, not the checkout's installed copy.
    where = subprocess.run(
        [python, "-c", "import tock; print(tock.__file__)"],
        cwd=HERE, env={**os.environ, **code.env}, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    if not where.startswith(str(src)):
        raise SystemExit(f"--tock-at: the drivers would import tock from {where or '?'}")
    return code


def run_cell(
    python: str, system: str, cell: str, size: tuple[str, ...], code: TockCode
) -> dict[str, Any]:
    module, system_argv, _label = SYSTEMS[system]
    workload, cell_argv, *_ = CELLS[cell]
    argv = [python, "-m", module, workload, *cell_argv, *size, *system_argv]
    proc = subprocess.Popen(
        argv,
        cwd=HERE,
        env={**os.environ, **code.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"value": None, "note": f"no result within {TIMEOUT:g} s", "settings": ""}
    except KeyboardInterrupt:
        # Stopped (Ctrl-C, SIGINT or SIGTERM): let the driver stop its workers before
        # this run stops; the cell is not saved, so --resume measures it again.
        proc.send_signal(signal.SIGTERM)  # common.py turns it into a clean exit
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"value": None, "note": f"failed: {tail[0][:200]}", "settings": ""}


def workload_cells(names: str) -> list[str]:
    """The cells of comma-separated workloads (``drain``: both drains) or cells."""
    cells: list[str] = []
    for w in names.split(","):
        matching = [c for c, spec in CELLS.items() if spec[0] == w or c == w]
        if not matching:
            raise SystemExit(f"unknown workload {w!r}: one of {', '.join(CELLS)}")
        cells += [c for c in matching if c not in cells]
    return cells


def plan(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(cell, systems in the order they run) for one run, before rotation."""
    systems = list(TOCK) if args.tock_only else list(SYSTEMS)
    if args.systems:
        wanted = args.systems.split(",")
        unknown = set(wanted) - set(SYSTEMS)
        if unknown:
            raise SystemExit(f"unknown system(s): {', '.join(sorted(unknown))}")
        systems = [s for s in systems if s in wanted]
    cells = workload_cells(args.workloads) if args.workloads else list(CELLS)
    out = []
    for cell in cells:
        chosen = [s for s in systems if not (s.endswith("-tp") and cell not in THROUGHPUT_CELLS)]
        out.append((cell, chosen))
    return out


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "jobs/s":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.2f} s" if value < 1 else f"{value:.1f} s"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def shown(c: Cell, unit: str) -> str:
    """The result column: the figure, else what happened ("never", "> 30 s", "n/a")."""
    if c.value is not None:
        return fmt(c.value, unit)
    note = next((n for n in c.notes if n), "")
    if note.startswith("never"):
        return "never"
    if note.startswith(">"):
        return note.split(" (", 1)[0]
    return "n/a" if note else "—"


def cpu_shown(cpu: tuple[float, float] | None) -> str:
    """The CPU a drained job took in the servers and in the workers: "18 + 14 µs"."""
    if cpu is None:
        return ""
    return f"{cpu[0]:,.0f} + {cpu[1]:,.0f} µs"


def advantage(tock: float | None, peer: float | None, higher_better: bool) -> str:
    """How many times better Tock's best is than this peer ("3.2x"), or "—"."""
    if tock is None or peer is None or tock <= 0 or peer <= 0:
        return "—"
    ratio = tock / peer if higher_better else peer / tock
    return f"{ratio:.1f}x" if ratio >= 0.95 else f"{ratio:.2g}x"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def servers(python: str) -> str:
    """The servers' versions, asked of them."""
    code = (
        "import common, psycopg, redis\n"
        "pg = psycopg.connect(common.PG_URL).execute('SHOW server_version').fetchone()[0]\n"
        "rd = redis.Redis.from_url(common.REDIS_URL).info()['redis_version']\n"
        "print(f'PostgreSQL {pg.split()[0]}, Redis {rd}')\n"
    )
    done = subprocess.run([python, "-c", code], cwd=HERE, capture_output=True, text=True)
    found = done.stdout.strip() or "servers: unknown"
    rabbit = subprocess.run(
        ["rabbitmqctl", "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"{found}, RabbitMQ {rabbit}" if rabbit else found


#: A figure of a cell: a drain's rate from the first job's start (``value``), or from the
#: launch of the workers (``from_start``).
Figure = Callable[[Cell], float | None]
TOCK_DEFAULTS = [name for name in TOCK if not name.endswith("-tp")]  # `tock worker`, no flags


def result_of(c: Cell) -> float | None:
    return c.value


def from_start_of(c: Cell) -> float | None:
    return c.from_start_value


def best_of(
    results: dict[str, dict[str, Cell]],
    cell: str,
    systems: Sequence[str],
    figure: Figure = result_of,
) -> tuple[str, float] | None:
    """The best figure in ``cell`` among ``systems`` (name, figure), if any has one."""
    higher = CELLS[cell][4]
    found = [
        (s, v) for s, c in results[cell].items() if s in systems and (v := figure(c)) is not None
    ]
    if not found:
        return None
    return (max if higher else min)(found, key=lambda x: x[1])


def best_tock(results: dict[str, dict[str, Cell]], cell: str) -> tuple[str, float] | None:
    return best_of(results, cell, TOCK)


def peers_of(results: dict[str, dict[str, Cell]]) -> list[str]:
    return [s for by in results.values() for s in by if s not in TOCK]


def summary(results: dict[str, dict[str, Cell]]) -> list[str]:
    """Per workload (and a drain's rate from starting the workers): Tock at its defaults
    and Tock's best figure, each against the best peer's."""
    lines = [
        "## Summary",
        "",
        "| workload | Tock at its defaults | Tock's best | the best peer | defaults vs | best vs |",
        "|---|---|---|---|---|---|",
    ]
    peers = peers_of(results)
    for cell in results:
        _w, _a, title, unit, higher = CELLS[cell]
        rows: list[tuple[str, Figure]] = [(title, result_of)]
        if CELLS[cell][0] == "drain":
            rows.append((f"{title}, from starting the workers", from_start_of))
        for name, figure in rows:
            defaults = best_of(results, cell, TOCK_DEFAULTS, figure)
            tock = best_of(results, cell, TOCK, figure)
            peer = best_of(results, cell, peers, figure)
            d, t, p = (
                f"{fmt(x[1], unit)} ({SYSTEMS[x[0]][2]})" if x else "—"
                for x in (defaults, tock, peer)
            )
            if peer is None:
                p = "none had a figure"
            d_vs = advantage(defaults and defaults[1], peer and peer[1], higher)
            t_vs = advantage(tock and tock[1], peer and peer[1], higher)
            lines.append(f"| {name} | {d} | {t} | {p} | {d_vs} | {t_vs} |")
    return [*lines, ""]


#: Why Tock's best figure trails the best peer's, and what would close the gap: shown
#: under the summary for each workload Tock does not lead in a run.
BEHIND: dict[str, str] = {
    "latency": (
        "Between `enqueue` and the job's start Tock makes two commits, each a round trip "
        "to the server: the enqueue's (its INSERT and wake-up hint are one statement) and "
        "the worker's claim. After a few idle milliseconds a round trip that commits "
        "costs most of a millisecond on this machine (the fsync itself about 0.2 ms; the "
        "rest is waking the processes at both ends). Huey on Redis commits nothing: the "
        "Redis here keeps nothing on disk, and Huey acknowledges nothing. Tock's claim "
        "on PostgreSQL already skips the fsync (it commits lazily unless it takes an "
        "at-most-once job); the enqueue's must stay, or a job whose enqueue returned "
        "could be lost with the server. What is left is the two round trips and the "
        "wake-ups of idle processes and threads on both sides."
    ),
    "periodic": (
        "The scheduler makes each fire's job half a second before the fire time (due at "
        "it), and the worker's claimer, told by its scheduler, sleeps until that time. "
        "What is left between the fire and the start is the claimer thread's wake-up, one "
        "claim, and the hand-off to an executor thread. The claim commits (it key-share-"
        "locks the worker's row, so even an empty one flushes the WAL on PostgreSQL), which "
        "after an idle second costs one to two milliseconds on this machine. Claiming a "
        "few milliseconds ahead and starting the job at its due time would take the claim "
        "out of that path too. Celery beat's figure is measured from its own previous send "
        "plus a second, so its drift is not in it."
    ),
    "recovery": (
        "the death rule (docs/design.md: Death and rescue): the leader looks at every "
        "worker's liveness lock each 0.1 s and buries a worker whose lock is free (on "
        "PostgreSQL, free for 0.3 s, so that a live worker whose session alone was ended "
        "takes its lock again first), then its jobs are claimed (NOTIFY on PostgreSQL, "
        "the 20 ms poll of `PRAGMA data_version` on SQLite); RabbitMQ hands a dead "
        "consumer's messages on the moment its connection drops. Looking more often "
        "would cost the leader a query (or a lock try per worker) each time; on "
        "PostgreSQL the grace is the floor, since a session the server ends is not "
        "always a dead process."
    ),
}

#: Drain on PostgreSQL at the throughput settings: at least this many times the fastest
#: peer of any kind, and never under FLOOR jobs/s.
TARGET, FLOOR = 3.0, 15_000.0
#: Tock at its defaults (`tock worker`, no flags), drains timed from starting the workers
#: (stated for TARGET_N jobs): at least this many times the fastest peer of any kind ...
DEFAULTS_VS_PEER = {"tock-postgres": 3.0, "tock-sqlite": 2.0}
#: ... and at least this share of the throughput settings' rate on the same store.
DEFAULTS_VS_THROUGHPUT = 0.70
#: Enqueue-to-start p50 at the defaults, at most (ms).
DEFAULTS_LATENCY = {"tock-postgres": 1.5, "tock-sqlite": 3.0}
TARGET_N = 20_000
DRAIN_LIMITS = (
    "A PostgreSQL worker finishes one batch and claims the next in one statement (with "
    "--claimers 2, two of them overlap); per job the server does a non-HOT UPDATE to claim it "
    "and a DELETE plus an INSERT to move it to the finished table (docs/design.md: live and "
    "finished jobs apart), and the worker decodes it, runs it and encodes its outcome, "
    "all on the two cores the server shares with the workers. Fewer writes per job (a "
    "narrower live row, or no finished row for jobs kept zero seconds) or cores of "
    "the server's own would raise it."
)


def ceiling(
    tock: Cell, fastest_peer: float, cores: int, target: float = TARGET, server: str = "PostgreSQL"
) -> str:
    """What the CPU a job took caps the drain at, measured, beside what the target asks
    (``server``: the store's server; SQLite has none, it runs in the workers)."""
    cpu = tock.cpu
    if cpu is None or sum(cpu) <= 0:
        return ""
    most = cores * 1e6 / sum(cpu)
    spent = (
        f"{cpu[0]:,.0f} µs of {server}'s CPU and {cpu[1]:,.0f} µs of the workers' "
        f"({sum(cpu):,.0f} µs)"
        if server
        else f"{cpu[1]:,.0f} µs of the workers' CPU (SQLite runs in them)"
    )
    return (
        f"  In this cell a job took {spent}: with all {cores} cores of this machine "
        f"busy, at most {most:,.0f} jobs/s; the target asks {target * fastest_peer:,.0f}."
    )


def store_of(system: str) -> str:
    return "PostgreSQL" if "postgres" in system else "SQLite"


def drain_n(meta: dict[str, Any]) -> int:
    """Jobs a drain of this run had (reports saved before it was recorded: by mode)."""
    return int(meta.get("n") or {"full": 100_000, "quick": 2_000}.get(meta["mode"], 20_000))


def defaults_targets(
    results: dict[str, dict[str, Cell]], meta: dict[str, Any], cores: int
) -> tuple[list[str], bool]:
    """The targets of Tock at its defaults, each met or missed with its figure; and
    whether a drain on PostgreSQL missed one."""
    lines: list[str] = []
    pg_missed = False
    for cell in ("drain1", "drain2"):
        by = results.get(cell, {})
        peer = best_of(results, cell, peers_of(results), from_start_of) if by else None
        for system, times in DEFAULTS_VS_PEER.items():
            tock = by.get(system)
            if tock is None:
                continue
            rate = tock.from_start_value
            head = (
                f"- {CELLS[cell][2]}, Tock on {store_of(system)} at its defaults, from "
                "starting the workers: "
            )
            if rate is None:
                lines.append(head + "no figure from start in this run.")
                continue
            parts, limit = [], ""
            if peer is None:
                parts.append(f"no peer measured (target {times:g}x the fastest)")
            else:
                ratio = rate / peer[1]
                met = ratio >= times
                parts.append(
                    f"{ratio:.1f}x the fastest peer's {peer[1]:,.0f} ({SYSTEMS[peer[0]][2]}; "
                    f"target {times:g}x): **{'met' if met else 'missed'}**"
                )
                if not met:
                    pg_missed = pg_missed or system == "tock-postgres"
                    server = "PostgreSQL" if system == "tock-postgres" else ""
                    limit = ceiling(tock, peer[1], cores, times, server)
            tp = by.get(f"{system}-tp")
            best = tp.from_start_value if tp is not None else None
            if best is None:
                parts.append("no throughput-settings figure from start in this run")
            else:
                share = rate / best
                met = share >= DEFAULTS_VS_THROUGHPUT
                parts.append(
                    f"{share:.0%} of the throughput settings' {best:,.0f} (target "
                    f"{DEFAULTS_VS_THROUGHPUT:.0%}): **{'met' if met else 'missed'}**"
                )
            lines.append(head + f"{rate:,.0f} jobs/s; " + "; ".join(parts) + "." + limit)
    for system, most in DEFAULTS_LATENCY.items():
        tock = results.get("latency", {}).get(system)
        if tock is None:
            continue
        title = CELLS["latency"][2]
        head = f"- {title}, Tock on {store_of(system)} at its defaults: "
        if tock.value is None:
            lines.append(head + "no figure in this run.")
            continue
        met = tock.value <= most
        lines.append(
            head + f"p50 {fmt(tock.value, 'ms')} (target ≤ {most:g} ms): "
            f"**{'met' if met else 'missed'}**."
        )
    if lines:
        n = drain_n(meta)
        intro = (
            "Tock at its defaults (`tock worker`, no flags): a drain timed from starting the "
            f"workers ≥ {DEFAULTS_VS_PEER['tock-postgres']:g}x the fastest peer's on PostgreSQL "
            f"and ≥ {DEFAULTS_VS_PEER['tock-sqlite']:g}x on SQLite (the fastest peer of any "
            f"kind, timed the same way), and ≥ {DEFAULTS_VS_THROUGHPUT:.0%} of the "
            "throughput settings' on the same store; enqueue-to-start p50 "
            f"≤ {DEFAULTS_LATENCY['tock-postgres']:g} ms on PostgreSQL and "
            f"≤ {DEFAULTS_LATENCY['tock-sqlite']:g} ms on SQLite. The drain targets are "
            f"stated for {TARGET_N:,} jobs"
            + ("." if n == TARGET_N else f"; this run's drains were of {n:,}.")
        )
        lines = [intro, "", *lines]
    return lines, pg_missed


def targets(
    results: dict[str, dict[str, Cell]], cores: int, meta: dict[str, Any] | None = None
) -> list[str]:
    """The targets, met or missed, and why Tock trails where it does."""
    lines = ["## Targets, and where Tock is behind", ""]
    found, missed = defaults_targets(results, meta or {"mode": "default"}, cores)
    lines += found
    for cell in ("drain1", "drain2"):
        by = results.get(cell, {})
        tock = by.get("tock-postgres-tp")
        peers = [c.value for s, c in by.items() if s not in TOCK and c.value]
        if tock is None or tock.value is None or not peers:
            continue
        ratio = tock.value / max(peers)
        met = ratio >= TARGET and tock.value >= FLOOR
        lines.append(
            f"- {CELLS[cell][2]}, PostgreSQL at the throughput settings: "
            f"{tock.value:,.0f} jobs/s, {ratio:.1f}x the fastest peer (target: "
            f"{TARGET:g}x and at least {FLOOR:,.0f}): **{'met' if met else 'missed'}**."
            + ("" if met else ceiling(tock, max(peers), cores))
        )
        missed = missed or not met
    if missed:
        lines.append(f"- What limits the drain: {DRAIN_LIMITS}")
    for cell, why in BEHIND.items():
        if cell not in results:
            continue
        _w, _a, title, _unit, higher = CELLS[cell]
        tock_best = best_tock(results, cell)
        peers = [c.value for s, c in results[cell].items() if s not in TOCK and c.value]
        if tock_best is None or not peers:
            continue
        best_peer = max(peers) if higher else min(peers)
        behind = tock_best[1] < best_peer if higher else tock_best[1] > best_peer
        if behind:
            lines.append(f"- {title}: {why}")
    return [*lines, ""] if len(lines) > 2 else []


def commit(meta: dict[str, Any]) -> str:
    """Which Tock was measured (reports written before it was recorded say nothing)."""
    at = meta.get("tock")
    if not at:
        return ""
    changed = " with uncommitted changes" if at.endswith("+") else ""
    return f", Tock at commit `{at.rstrip('+')}`{changed}"


def sittings(meta: dict[str, Any]) -> str:
    n = meta.get("sittings", 1)
    return "" if n == 1 else f" of measuring, in {n} sittings (`--resume`)"


def from_start_shown(c: Cell) -> str:
    """A drain's rate from starting the workers, with the seconds to its first job."""
    rate = c.from_start_value
    if rate is None:
        return "—"
    first = c.first_job_value
    return fmt(rate, "jobs/s") + (f" (first job at {first:.2f} s)" if first is not None else "")


def report(
    results: dict[str, dict[str, Cell]], meta: dict[str, Any], name: str = "benchmarks"
) -> str:
    """The report in Markdown (``name``: its chart's and raw results' file name)."""
    flag = {"full": " --full", "quick": " --quick"}.get(meta["mode"], "")
    command = meta.get("command", f"python bench/compare/run.py{flag}")
    lines = [
        "# Tock and its peers, side by side",
        "",
        f"Measured {meta['date']} with `{command}`{commit(meta)} "
        f"({meta['mode']} "
        f"run: {meta['runs']} run(s) a cell, the median shown; {meta['minutes']} minutes"
        f"{sittings(meta)}), "
        f"on {meta['machine']}; Python {meta['python']}; {meta['servers']}; every server on "
        "the same machine as the workers. Each figure was measured in this one run, the "
        "systems interleaved. `Tock vs` is how many times better Tock's best figure in that "
        "row is than the peer's (higher throughput, or shorter time). A drain has two "
        "rates: `result`, from the first job's start to the last job's end, and `from "
        "start`, from the launch of the worker processes to the last job's end (the "
        "system's worker start-up in it). Tock at its defaults is `tock worker` with no "
        f"flags. The chart: [{name}.svg]({name}.svg); the raw figures: "
        f"[{name}.json]({name}.json).",
        "",
    ]
    lines += summary(results)
    lines += targets(results, meta.get("cores") or os.cpu_count() or 1, meta)
    for cell, by_system in results.items():
        _w, _a, title, unit, higher = CELLS[cell]
        lines += [f"## {title}", ""]
        tock = best_tock(results, cell)
        # A drain's third column is the CPU a job took, where the others have a p99.
        drain = CELLS[cell][0] == "drain"
        third = "CPU a job: servers + workers" if drain else "p99"
        start = " from start |" if drain else ""
        lines += [f"| system | result | {third} | Tock vs |{start} settings and notes |"]
        lines += ["|---|---|---|---|---|" + ("---|" if drain else "")]
        for system, c in by_system.items():
            label = SYSTEMS[system][2]
            extra = cpu_shown(c.cpu) if drain else fmt(c.p99_value, unit) if c.p99 else ""
            vs = "" if system in TOCK else advantage(tock and tock[1], c.value, higher)
            notes = "; ".join(n for n in dict.fromkeys(c.notes) if n)
            detail = c.settings + (f" — {notes}" if notes else "")
            begun = f" {from_start_shown(c)} |" if drain else ""
            lines.append(f"| {label} | {shown(c, unit)} | {extra} | {vs} |{begun} {detail} |")
        lines.append("")
    return "\n".join(lines)


def chart(results: dict[str, dict[str, Cell]], path: Path) -> bool:
    """Draw with matplotlib (in the benchmark's environment: ``chart_main``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed here: no chart", file=sys.stderr)
        return False
    cells = [c for c in results if any(x.value is not None for x in results[c].values())]
    fig, axes = plt.subplots(len(cells), 1, figsize=(9, 2.1 + 1.9 * len(cells)))
    if len(cells) == 1:
        axes = [axes]
    for ax, cell in zip(axes, cells, strict=True):
        _w, _a, title, unit, higher = CELLS[cell]
        # Worst at the top, best at the bottom; no figure ("never", "> 30 s", "n/a")
        # counts as the worst, with what happened written beside it.
        present = [(SYSTEMS[s][2], c) for s, c in results[cell].items() if c.value is not None]
        present.sort(key=lambda x: x[1].value or 0.0, reverse=not higher)
        missing = [(SYSTEMS[s][2], c) for s, c in results[cell].items() if c.value is None]
        items = missing + present
        labels = [label for label, _ in items]
        values = [c.value or 0.0 for _, c in items]
        colors = ["#d9480f" if label.startswith("Tock") else "#868e96" for label in labels]
        ax.barh(labels, values, color=colors)
        ax.invert_yaxis()
        better = "higher is better" if higher else "lower is better"
        ax.set_title(f"{title} ({unit}, {better})", fontsize=10, loc="left")
        ax.tick_params(labelsize=8)
        for i, (_label, c) in enumerate(items):
            ax.text(c.value or 0.0, i, f" {shown(c, unit)}", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})  # the same figures make the same file
    return True


def load(path: Path) -> tuple[dict[str, dict[str, Cell]], dict[str, Any]]:
    raw = json.loads(path.read_text())
    meta = raw.pop("_meta", {})
    return {cell: {s: Cell(**c) for s, c in by.items()} for cell, by in raw.items()}, meta


def write(
    results: dict[str, dict[str, Cell]],
    meta: dict[str, Any],
    python: str,
    out: Path = DOCS / "benchmarks.md",
) -> None:
    """The report (``out``), the raw results beside it (.json) and the chart (.svg, drawn
    by the benchmark's interpreter, which has matplotlib)."""
    text = report(results, meta, out.stem)
    print("\n" + text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    raw: dict[str, Any] = {
        cell: {s: c.__dict__ for s, c in by.items()} for cell, by in results.items()
    }
    raw["_meta"] = meta
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
    done = subprocess.run(
        [python, str(Path(__file__)), "--_chart", str(out.with_suffix(".json"))], check=False
    )
    if done.returncode == 0:
        print(f"chart: {out.with_suffix('.svg')}")


def report_path(args: argparse.Namespace) -> Path:
    """docs/benchmarks.md for a complete run: every system in every workload, at the sizes
    of its kind (default or --full). Any other run's report goes beside its progress
    file (not committed), so that it never overwrites the committed one."""
    every = argparse.Namespace(**{**vars(args), "tock_only": False, "systems": None})
    every.workloads = None
    if not args.quick and not args.n and plan(args) == plan(every):
        return DOCS / "benchmarks.md"
    return progress_path(args).with_name(f"{progress_path(args).stem}-report.md")


def progress_path(args: argparse.Namespace) -> Path:
    mode = "full" if args.full else "quick" if args.quick else "default"
    return RESULTS / f"compare-{mode}{'-tock' if args.tock_only else ''}.json"


class Progress:
    """The cells measured so far in this run, saved after each one (see ``--resume``)."""

    def __init__(
        self, path: Path, plan: dict[str, Any], resume: bool, again: Sequence[str] = ()
    ) -> None:
        self.path = path
        self.plan = json.loads(json.dumps(plan))  # as it reads back from the file
        self.done: dict[tuple[int, str, str], dict[str, Any]] = {}
        self.sittings = 1  # this one included, once it measures a cell
        self.seconds = 0.0
        if resume:
            if not path.exists():
                raise SystemExit(f"--resume: no run to go on with ({path} does not exist)")
            saved = json.loads(path.read_text())
            if saved.get("plan") != self.plan:
                raise SystemExit(
                    f"--resume: {path} holds a run of other sizes, systems or workloads, "
                    "or of other Tock code; start it again without --resume (or give the "
                    "same options)"
                )
            for entry in saved["cells"]:
                if entry["cell"] not in again:  # --again: measured anew
                    self.done[entry["run"], entry["cell"], entry["system"]] = entry["result"]
            self.sittings = saved.get("sittings", 1)
            self.seconds = saved.get("seconds", 0.0)
        self._new_sitting = resume

    def get(self, run: int, cell: str, system: str) -> dict[str, Any] | None:
        return self.done.get((run, cell, system))

    def add(self, run: int, cell: str, system: str, result: dict[str, Any], took: float) -> None:
        self.done[run, cell, system] = result
        self.seconds += took
        if self._new_sitting:
            self.sittings += 1
            self._new_sitting = False
        cells = [
            {"run": r, "cell": c, "system": s, "result": res}
            for (r, c, s), res in self.done.items()
        ]
        state = {
            "plan": self.plan,
            "sittings": self.sittings,
            "seconds": round(self.seconds, 1),
            "cells": cells,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        tmp.replace(self.path)  # a run stopped mid-write keeps the last whole file


def measure(
    python: str,
    runs: int,
    cells: list[tuple[str, list[str]]],
    size: dict[str, tuple[str, ...]],
    progress: Progress,
    results: dict[str, dict[str, Cell]],
    code: TockCode,
) -> None:
    """Every cell of every run, the systems interleaved (each cell's order rotates from
    run to run); a cell saved in ``progress`` is not measured again."""
    for run in range(runs):
        for k, (cell, systems) in enumerate(cells):
            shift = (run + k) % len(systems) if systems else 0
            for system in systems[shift:] + systems[:shift]:
                workload = CELLS[cell][0]
                saved = progress.get(run, cell, system)
                if saved is None:
                    began = time.monotonic()
                    got = run_cell(python, system, cell, size[workload], code)
                    progress.add(run, cell, system, got, time.monotonic() - began)
                else:
                    got = saved
                c = results[cell].setdefault(system, Cell())
                if got.get("value") is not None:
                    c.values.append(float(got["value"]))
                if got.get("p99") is not None:
                    c.p99.append(float(got["p99"]))
                if got.get("cpu_server_us") is not None and got.get("cpu_workers_us") is not None:
                    c.cpu_server.append(float(got["cpu_server_us"]))
                    c.cpu_workers.append(float(got["cpu_workers_us"]))
                # Drains measured before the rate from start was have none: "—".
                if got.get("from_start") is not None:
                    c.from_start.append(float(got["from_start"]))
                if got.get("first_job_s") is not None:
                    c.first_job.append(float(got["first_job_s"]))
                c.settings = got.get("settings") or c.settings
                c.notes.append(got.get("note", ""))
                unit = CELLS[cell][3]
                also = f", p99 {fmt(got.get('p99'), unit)}" if got.get("p99") is not None else ""
                if got.get("from_start") is not None:
                    also = f", from start {fmt(got['from_start'], unit)}"
                note = f"  ({got['note']})" if got.get("note") else ""
                again = "  (measured before: --resume)" if saved is not None else ""
                print(
                    f"[run {run + 1}/{runs}] {cell:<9} {system:<17} "
                    f"{fmt(got.get('value'), unit)}{also}{note}{again}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="3 runs, N=100,000, d 60 s, e 120 s")
    parser.add_argument("--quick", action="store_true", help="smoke sizes")
    parser.add_argument("--runs", type=int, default=1, help="runs per cell (--full: 3)")
    parser.add_argument("--tock-only", action="store_true", help="Tock's systems only")
    parser.add_argument("--systems", help="comma-separated names (see systems/__init__.py)")
    parser.add_argument("--workloads", help="comma-separated: enqueue,drain,latency,...")
    parser.add_argument("--n", type=int, help="jobs for enqueue and drain")
    parser.add_argument("--python", help="an interpreter with the peers and Tock installed")
    parser.add_argument("--no-docs", action="store_true", help="print only; write no files")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with the run that stopped (its measured cells are kept)",
    )
    parser.add_argument(
        "--again",
        metavar="WORKLOADS",
        help="with --resume: measure these workloads' saved cells again (comma-separated; "
        "after a change in how they are measured)",
    )
    parser.add_argument(
        "--tock-at",
        metavar="REV",
        help="measure Tock's code as of this commit (tag, branch) instead of the checkout's",
    )
    parser.add_argument(
        "--from-json", action="store_true", help="write the docs again from docs/benchmarks.json"
    )
    parser.add_argument("--_chart", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Stop cleanly on Ctrl-C, SIGINT or SIGTERM, also when started in the background
    # (where a shell makes SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args._chart:
        results, _meta = load(Path(args._chart))
        raise SystemExit(0 if chart(results, Path(args._chart).with_suffix(".svg")) else 1)
    if args.from_json:
        results, meta = load(DOCS / "benchmarks.json")
        if args.no_docs:
            print(report(results, meta))
        else:
            write(results, meta, bench_python(args))
        return
    runs = 3 if args.full else args.runs
    python = bench_python(args)
    size = sizes(args)
    code = tock_code(args.tock_at, python)
    compile_bytecode(python, code)
    cells = plan(args)
    again = workload_cells(args.again) if args.again else []
    if again and not args.resume:
        raise SystemExit("--again goes with --resume (a new run measures every cell anyway)")
    results: dict[str, dict[str, Cell]] = {cell: {} for cell, _ in cells}
    progress = Progress(
        progress_path(args),
        {"runs": runs, "sizes": size, "cells": [[c, s] for c, s in cells], "tock": code.digest()},
        args.resume,
        again,
    )
    try:
        measure(python, runs, cells, size, progress, results, code)
    except KeyboardInterrupt:
        raise SystemExit(
            f"stopped: {len(progress.done)} cell(s) saved in {progress.path}; "
            "go on with the same options and --resume"
        ) from None
    # Systems in table order, whatever order they ran in.
    for cell in results:
        results[cell] = {s: results[cell][s] for s in SYSTEMS if s in results[cell]}
    meta = {
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "mode": "full" if args.full else "quick" if args.quick else "default",
        "runs": runs,
        "minutes": round(progress.seconds / 60),
        "sittings": progress.sittings,
        "machine": machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tock": code.commit,
        "servers": servers(python),
        "n": int(size["drain"][1]),
        "command": " ".join(["python bench/compare/run.py", *sys.argv[1:]]),
    }
    if args.no_docs:
        print("\n" + report(results, meta))
    else:
        write(results, meta, python, report_path(args))


if __name__ == "__main__":
    main()
