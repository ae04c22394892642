"""The comparison's drain tables show the CPU a job took in the servers and in the
workers, and a missed drain target says what that CPU allows on the machine's cores."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT

# Burns CPU in its own process group until it has used `seconds` of it, says so, then
# waits (alive, so that its CPU is its own and not yet its parent's).
BURN = """
import sys, time
while time.process_time() < float(sys.argv[1]):
    pass
print("burnt", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def burner() -> Iterator[subprocess.Popen[str]]:
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc here")
    proc = subprocess.Popen(
        [sys.executable, "-c", BURN, "0.3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "burnt"
    yield proc
    proc.communicate("")


def test_cpu_of_a_process_group_and_of_servers_by_name(
    run: ModuleType, burner: subprocess.Popen[str]
) -> None:
    import common

    name = Path(f"/proc/{burner.pid}/comm").read_text().strip()
    got = common.cpu_seconds(frozenset(), {burner.pid})
    assert got is not None
    _server, workers = got
    assert workers >= 0.29  # its 0.3 s, in clock ticks
    assert workers < 5  # nothing but that group (this test's own process is not in it)
    # The same process named as a server counts there, and not among the workers.
    got = common.cpu_seconds(frozenset({name}), {burner.pid})
    assert got is not None
    server, workers = got
    assert server >= 0.29
    assert workers == 0


def test_a_meter_gives_nothing_for_a_window_too_short_or_too_few_jobs(run: ModuleType) -> None:
    import common

    procs = common.Procs()
    meter = common.CpuMeter.start(procs, ["postgres"], jobs=10)
    assert meter is not None
    assert meter.servers == frozenset({"postgres"})
    assert meter.per_job(10_000) is None  # at once: shorter than a few clock ticks say
    late = common.CpuMeter(procs, meter.servers, 10, meter.server, meter.workers, began=0.0)
    assert late.per_job(50) is None  # 40 jobs: too few to say
    got = late.per_job(10_010)
    assert got is not None and all(x >= 0 for x in got)


def test_an_unknown_server_name_is_refused(run: ModuleType) -> None:
    import common

    with pytest.raises(KeyError, match="mysql"):
        common.CpuMeter.start(common.Procs(), ["mysql"], jobs=0)


META = {
    "date": "2026-12-03",
    "mode": "default",
    "runs": 1,
    "minutes": 1,
    "machine": "a test machine, 2 cores",
    "python": "3.11",
    "servers": "PostgreSQL 15",
    "tock": "abc",
    "cores": 2,
}


def test_the_drain_table_shows_cpu_and_a_missed_target_its_ceiling(run: ModuleType) -> None:
    Cell = run.Cell
    tock = Cell(values=[48_000.0], settings="tock", cpu_server=[17.0, 19.0], cpu_workers=[11.0])
    peer = Cell(values=[20_000.0], settings="peer", cpu_server=[27.4], cpu_workers=[31.2])
    bare = Cell(values=[1_000.0], settings="no cpu measured")
    results = {"drain1": {"tock-postgres-tp": tock, "pgqueuer": peer, "rq": bare}}
    text = run.report(results, META)
    assert "| system | result | CPU a job: servers + workers | Tock vs |" in text
    assert "| 48,000 | 18 + 11 µs |" in text  # the medians
    assert "| 20,000 | 27 + 31 µs | 2.4x |" in text
    assert "| 1,000 |  | 48.0x |" in text
    # 18 + 11 = 29 µs a job on 2 cores: at most 68,966 jobs/s; 3x 20,000 = 60,000.
    assert "**missed**." in text
    assert "18 µs of PostgreSQL's CPU and 11 µs of the workers' (29 µs)" in text
    assert "with all 2 cores of this machine busy, at most 68,966 jobs/s" in text
    assert "the target asks 60,000" in text


def test_a_met_target_and_other_tables_say_nothing_of_cpu(run: ModuleType) -> None:
    Cell = run.Cell
    tock = Cell(values=[90_000.0], settings="tock", cpu_server=[10.0], cpu_workers=[10.0])
    peer = Cell(values=[20_000.0], settings="peer")
    latency = {"tock-postgres-tp": Cell(values=[3.0], p99=[4.0], settings="t")}
    results = {"drain1": {"tock-postgres-tp": tock, "pgqueuer": peer}, "latency": latency}
    text = run.report(results, META)
    assert "**met**." in text and "at most" not in text
    assert "| system | result | p99 | Tock vs |" in text  # latency keeps its p99 column


def test_results_saved_before_cpu_was_measured_still_load(run: ModuleType, tmp_path: Path) -> None:
    """The committed results, as a run before the CPU columns would have saved them."""
    data = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    for name, cells in data.items():
        if not name.startswith("_"):
            for cell in cells.values():
                for key in ("cpu_server", "cpu_workers", "from_start", "first_job"):
                    cell.pop(key, None)
    saved = tmp_path / "old.json"
    saved.write_text(json.dumps(data))
    results, saved_meta = run.load(saved)
    text = run.report(results, saved_meta)
    assert "CPU a job: servers + workers" in text
    assert " µs |" not in text.split("## b. drain, 1 worker process", 1)[1].split("##")[0]
