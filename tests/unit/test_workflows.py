"""Building workflows: the jobs and dependencies a shape compiles to, the checks of each
step's call, bad input, and the spec a handle is rebuilt from. Nothing is written: the
app's ``insert_workflow`` is replaced by one that records what it was given."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import tock
from tock import ConfigurationError, Context, Job, Signature, Tock, Workflow, chain, chord, group
from tock.jobs import NewJob
from tock.workflows import _build


@pytest.fixture
def app(tmp_path: Path) -> Tock:
    return Tock(f"sqlite:///{tmp_path / 'tock.db'}")


@pytest.fixture
def tasks(app: Tock) -> SimpleNamespace:
    @app.task(name="wf.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="wf.total")
    def total(xs: list[int]) -> int:
        return sum(xs)

    @app.task(name="wf.ping")
    def ping() -> str:
        return "pong"

    @app.task(name="wf.on_error")
    def on_error(job_id: int, note: str = "") -> None:
        pass

    @app.task(name="wf.ctx", takes_context=True)
    def ctx(context: Context, x: int) -> int:
        return x

    return SimpleNamespace(add=add, total=total, ping=ping, on_error=on_error, ctx=ctx)


class Recorder:
    """Stands in for ``app.insert_workflow``: keeps the batch, hands out ids 1, 2, ..."""

    def __init__(self, app: Tock) -> None:
        self.app = app
        self.calls: list[tuple[list[NewJob], str, object]] = []

    def __call__(
        self, jobs: list[NewJob], spec: str, *, connection: object = None
    ) -> tuple[int, list[Job]]:
        self.calls.append((list(jobs), spec, connection))
        return 7, [Job(i + 1, self.app) for i in range(len(jobs))]


@pytest.fixture
def recorder(app: Tock, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder(app)
    monkeypatch.setattr(app, "insert_workflow", recorder)
    return recorder


def table(node: Any, link_error: Signature | None = None) -> list[tuple[Any, ...]]:
    """Each job of the batch: (task, args, after, policy, pass_results)."""
    return [
        (j.task, json.loads(j.args), j.after, j.on_dependency_failure, j.pass_results)
        for j in _build(node, link_error).jobs
    ]


def spec_of(node: Any, link_error: Signature | None = None) -> Any:
    return json.loads(_build(node, link_error).spec)


# -- signatures --------------------------------------------------------------------------


def test_s_and_si_keep_the_call(tasks: SimpleNamespace) -> None:
    sig = tasks.add.s(1, y=2)
    assert (sig.task, sig.args, sig.kwargs, sig.immutable) == (tasks.add, (1,), {"y": 2}, False)
    assert tasks.add.si(1, 2).immutable
    assert repr(tasks.add.s(1)) == "wf.add.s(1)"
    assert repr(tasks.add.si(1, y=2)) == "wf.add.si(1, y=2)"


def test_using_options_reach_the_job(tasks: SimpleNamespace) -> None:
    sig = tasks.add.using(queue="slow", priority=7).s(1)
    ((job, *_),) = [_build(chain(tasks.ping.si(), sig)).jobs[1:]]
    assert (job.queue, job.priority) == ("slow", 7)


def test_a_signature_alone_is_a_workflow_of_one_job(tasks: SimpleNamespace) -> None:
    assert table(tasks.add.s(1, 2)) == [("wf.add", [1, 2], (), "cancel", None)]
    assert spec_of(tasks.add.s(1, 2)) == {"version": 1, "shape": 0, "link_error": None}


def test_arguments_must_be_json_at_once(tasks: SimpleNamespace) -> None:
    with pytest.raises(TypeError, match=r"task 'wf\.add' argument 'y' is a object"):
        tasks.add.s(object())  # after the result it receives
    with pytest.raises(TypeError, match=r"task 'wf\.add' argument 'x' is a object"):
        tasks.add.si(object(), 1)
    with pytest.raises(TypeError, match=r"task 'wf\.add' argument 'y'\[1\] is a set"):
        tasks.add.si(x=1, y=[1, {2}])
    with pytest.raises(TypeError, match=r"task 'wf\.ctx' argument 'x' is a object"):
        tasks.ctx.si(x=object())
    with pytest.raises(TypeError, match=r"task 'wf\.add' positional arguments\[2\]"):
        tasks.add.s(1, 2, object())  # does not fit: named by position


def test_only_registered_tasks_make_signatures(app: Tock, tasks: SimpleNamespace) -> None:
    def plain(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="registered task"):
        Signature(plain, (1,))  # type: ignore[arg-type]
    stray = tock.Task(app, plain, "wf.stray", tasks.add.options)  # never registered
    with pytest.raises(ConfigurationError, match=r"'wf\.stray' is not registered"):
        stray.s(1)


def test_unique_key_and_depends_on_are_refused_in_a_workflow(tasks: SimpleNamespace) -> None:
    with pytest.raises(ConfigurationError, match="unique_key"):
        tasks.add.using(unique_key="k").s(1)
    with pytest.raises(ConfigurationError, match="depends_on"):
        tasks.add.using(depends_on=[1]).s(1)


# -- shapes ------------------------------------------------------------------------------


def test_chain_passes_each_result_on(tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), tasks.add.s(3), tasks.add.s(4))
    assert table(wf) == [
        ("wf.add", [1, 2], (), "cancel", None),
        ("wf.add", [3], (0,), "cancel", "one"),
        ("wf.add", [4], (1,), "cancel", "one"),
    ]
    assert spec_of(wf)["shape"] == {"chain": [0, 1, 2]}


def test_pipe_makes_a_chain_and_chains_flatten(tasks: SimpleNamespace) -> None:
    wf = tasks.add.s(1, 2) | chain(tasks.add.s(3), tasks.add.s(4)) | tasks.add.s(5)
    assert isinstance(wf, chain)
    assert [repr(s) for s in wf.steps] == [
        "wf.add.s(1, 2)",
        "wf.add.s(3)",
        "wf.add.s(4)",
        "wf.add.s(5)",
    ]
    assert spec_of(wf)["shape"] == {"chain": [0, 1, 2, 3]}


def test_si_waits_but_receives_nothing(tasks: SimpleNamespace) -> None:
    assert table(chain(tasks.add.s(1, 2), tasks.ping.si())) == [
        ("wf.add", [1, 2], (), "cancel", None),
        ("wf.ping", [], (0,), "cancel", None),
    ]


def test_group_members_run_side_by_side(tasks: SimpleNamespace) -> None:
    wf = group(tasks.add.s(i, i) for i in range(3))
    assert table(wf) == [("wf.add", [i, i], (), "cancel", None) for i in range(3)]
    assert spec_of(wf)["shape"] == {"group": [0, 1, 2]}
    assert spec_of(group(group(tasks.ping.si(), tasks.ping.si()), tasks.ping.si()))["shape"] == {
        "group": [0, 1, 2]
    }


def test_chord_callback_gets_the_list_in_order(tasks: SimpleNamespace) -> None:
    wf = chord(group(tasks.add.s(i, 1) for i in range(3)), tasks.total.s())
    assert table(wf)[3] == ("wf.total", [], (0, 1, 2), "cancel", "list")
    assert spec_of(wf)["shape"] == {"chord": [{"group": [0, 1, 2]}, 3]}
    # a plain list as the header, and the "run" policy
    wf = chord([tasks.ping.si(), tasks.ping.si()], tasks.total.s(), on_dependency_failure="run")
    assert table(wf)[2] == ("wf.total", [], (0, 1), "run", "list")


def test_group_then_step_in_a_chain_is_a_chord(tasks: SimpleNamespace) -> None:
    as_chain = chain(group(tasks.ping.si(), tasks.ping.si()), tasks.total.s())
    as_chord = chord(group(tasks.ping.si(), tasks.ping.si()), tasks.total.s())
    assert table(as_chain) == table(as_chord)


def test_each_member_of_a_group_in_a_chain_receives_the_result(tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), group(tasks.add.s(10), tasks.ping.si()), tasks.total.s())
    assert table(wf) == [
        ("wf.add", [1, 2], (), "cancel", None),
        ("wf.add", [10], (0,), "cancel", "one"),
        ("wf.ping", [], (0,), "cancel", None),
        ("wf.total", [], (1, 2), "cancel", "list"),
    ]


def test_nested_chain_group_task_group_task(tasks: SimpleNamespace) -> None:
    wf = chain(
        group(tasks.add.s(1, 1), tasks.add.s(2, 2)),
        tasks.total.s(),
        group(tasks.add.s(1), tasks.add.s(2)),
        tasks.total.s(),
    )
    assert table(wf) == [
        ("wf.add", [1, 1], (), "cancel", None),
        ("wf.add", [2, 2], (), "cancel", None),
        ("wf.total", [], (0, 1), "cancel", "list"),
        ("wf.add", [1], (2,), "cancel", "one"),
        ("wf.add", [2], (2,), "cancel", "one"),
        ("wf.total", [], (3, 4), "cancel", "list"),
    ]
    assert spec_of(wf)["shape"] == {"chain": [{"group": [0, 1]}, 2, {"group": [3, 4]}, 5]}


def test_group_of_chains_collects_each_chains_last_step(tasks: SimpleNamespace) -> None:
    wf = chord(
        [chain(tasks.add.s(1, 1), tasks.add.s(1)), chain(tasks.add.s(2, 2), tasks.add.s(2))],
        tasks.total.s(),
    )
    rows = table(wf)
    assert rows[4] == ("wf.total", [], (1, 3), "cancel", "list")
    assert spec_of(wf)["shape"] == {"chord": [{"group": [{"chain": [0, 1]}, {"chain": [2, 3]}]}, 4]}


def test_a_chain_with_another_policy_stays_a_part(tasks: SimpleNamespace) -> None:
    inner = chain(tasks.add.s(1, 1), tasks.add.s(1), on_dependency_failure="run")
    wf = chain(inner, tasks.add.s(2))
    assert table(wf) == [
        ("wf.add", [1, 1], (), "cancel", None),
        ("wf.add", [1], (0,), "run", "one"),
        ("wf.add", [2], (1,), "cancel", "one"),
    ]
    assert spec_of(wf)["shape"] == {"chain": [{"chain": [0, 1]}, 2]}


def test_link_error_depends_on_every_step(tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), tasks.add.s(3))
    assert table(wf, tasks.on_error.s(note="x"))[2] == ("wf.on_error", [], (0, 1), "failure", "id")
    assert table(wf, tasks.ping.si())[2] == ("wf.ping", [], (0, 1), "failure", None)
    assert spec_of(wf, tasks.ping.si())["link_error"] == 2


def test_a_task_taking_the_context_receives_after_it(tasks: SimpleNamespace) -> None:
    assert table(chain(tasks.add.s(1, 2), tasks.ctx.s()))[1] == (
        "wf.ctx",
        [],
        (0,),
        "cancel",
        "one",
    )
    with pytest.raises(TypeError, match=r"wf\.ctx"):
        chain(tasks.add.s(1, 2), tasks.ctx.s(1))


# -- checks of each step's call ------------------------------------------------------------


def test_a_step_that_receives_is_checked_with_its_first_argument_open(
    tasks: SimpleNamespace,
) -> None:
    with pytest.raises(TypeError, match=r"task 'wf\.add'.*receives the previous result"):
        chain(tasks.add.s(1, 2), tasks.add.s(3, 4))  # at build time
    with pytest.raises(TypeError, match=r"task 'wf\.total'"):
        chord(group(tasks.ping.si()), tasks.total.s([1]))
    with pytest.raises(TypeError, match=r"task 'wf\.on_error'"):
        _build(tasks.ping.si(), tasks.on_error.s(1, 2))  # it receives the failed id
    with pytest.raises(TypeError, match=r"task 'wf\.add'"):
        _build(tasks.add.s(1))  # the first step receives nothing
    with pytest.raises(TypeError, match=r"task 'wf\.add'"):
        chain(tasks.ping.si(), group(tasks.add.s(1), tasks.add.s(1, 2)))


def test_a_bad_step_writes_nothing(tasks: SimpleNamespace, recorder: Recorder) -> None:
    wf = chain(tasks.add.s(1), tasks.add.s(2))  # the first step receives nothing: one short
    with pytest.raises(TypeError, match=r"task 'wf\.add'"):
        wf.enqueue()
    assert recorder.calls == []


def test_a_group_member_ending_in_a_group_cannot_feed_a_step(tasks: SimpleNamespace) -> None:
    wf = chord([chain(tasks.ping.si(), group(tasks.ping.si(), tasks.ping.si()))], tasks.total.s())
    with pytest.raises(TypeError, match="list of lists"):
        _build(wf)
    _build(chord([chain(tasks.ping.si(), group(tasks.ping.si()))], tasks.ping.si()))  # .si(): fine


# -- bad input -------------------------------------------------------------------------------


def test_bad_input_is_refused_clearly(tasks: SimpleNamespace) -> None:
    with pytest.raises(TypeError, match=r"chain item 1 is <Task wf\.ping>.*task\.s"):
        chain(tasks.add.s(1, 2), tasks.ping)
    with pytest.raises(TypeError, match=r"group takes signatures.*not 3"):
        group(3)
    with pytest.raises(TypeError, match=r"chain takes signatures.*task\.s"):
        chain(tasks.ping)
    with pytest.raises(ValueError, match="empty group"):
        group()
    with pytest.raises(ValueError, match="empty group"):
        group(iter([]))
    with pytest.raises(ValueError, match="empty chain"):
        chain()
    with pytest.raises(TypeError, match="needs a callback"):
        chord(group(tasks.ping.si()))
    with pytest.raises(TypeError, match="callback is a signature"):
        chord(group(tasks.ping.si()), tasks.total)
    with pytest.raises(ConfigurationError, match="on_dependency_failure"):
        chain(tasks.ping.si(), on_dependency_failure="ignore")
    with pytest.raises(ConfigurationError, match="on_dependency_failure"):
        chord([tasks.ping.si()], tasks.total.s(), on_dependency_failure="failure")


def test_link_error_must_be_a_signature(tasks: SimpleNamespace, recorder: Recorder) -> None:
    for bad in (tasks.on_error, chain(tasks.on_error.s()), "wf.on_error"):
        with pytest.raises(TypeError, match="link_error takes a signature"):
            tasks.ping.si().enqueue(link_error=bad)
    assert recorder.calls == []


def test_tasks_of_two_apps_do_not_mix(tmp_path: Path, tasks: SimpleNamespace) -> None:
    other = Tock(f"sqlite:///{tmp_path / 'other.db'}")
    elsewhere = other.task(name="wf.elsewhere")(lambda: None)
    with pytest.raises(ConfigurationError, match="one app"):
        _build(chain(tasks.ping.si(), elsewhere.si()))


# -- enqueue and the handle, without a store -------------------------------------------------


def test_enqueue_writes_one_batch_and_returns_the_handle(
    tasks: SimpleNamespace, recorder: Recorder
) -> None:
    conn = object()
    wf = chain(tasks.add.s(1, 2), group(tasks.add.s(1), tasks.add.s(2)), tasks.total.s())
    handle = wf.enqueue(connection=conn, link_error=tasks.on_error.s())
    ((jobs, _, connection),) = recorder.calls
    assert (len(jobs), connection) == (5, conn)
    assert isinstance(handle, Workflow)
    assert handle.id == 7
    assert [j.id for j in handle.jobs] == [1, 2, 3, 4, 5]
    assert handle.link_error is not None and handle.link_error.id == 5
    assert [j.id for j in handle.steps] == [1, 2, 3, 4]
    assert _ids(handle.shape()) == [1, [2, 3], 4]


def test_the_connection_of_using_carries_to_the_batch(
    tasks: SimpleNamespace, recorder: Recorder
) -> None:
    conn = object()
    chain(tasks.ping.si(), tasks.add.using(connection=conn).s(1)).enqueue()
    assert recorder.calls[0][2] is conn
    with pytest.raises(ConfigurationError, match="different connections"):
        group(
            tasks.ping.using(connection=object()).si(), tasks.ping.using(connection=conn).si()
        ).enqueue()


def _ids(shape: Any) -> Any:
    return shape.id if isinstance(shape, Job) else [_ids(s) for s in shape]


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t.add.s(1, 2),
        lambda t: chain(t.add.s(1, 2), t.add.s(3)),
        lambda t: group(t.ping.si(), chain(t.ping.si(), t.add.s(1))),
        lambda t: chord([t.ping.si(), t.ping.si()], t.total.s()),
        lambda t: chain(group(t.ping.si()), t.total.s(), group(t.add.s(1)), t.total.s()),
    ],
)
def test_the_spec_rebuilds_the_same_handle(
    app: Tock, tasks: SimpleNamespace, recorder: Recorder, make: Any
) -> None:
    handle = make(tasks).enqueue(link_error=tasks.ping.si())
    record = SimpleNamespace(
        id=handle.id, spec=recorder.calls[0][1], job_ids=[j.id for j in handle.jobs]
    )
    again = Workflow.from_record(record, app)  # type: ignore[arg-type]
    assert _ids(again.shape()) == _ids(handle.shape())
    assert again.link_error == handle.link_error
    assert again.jobs == handle.jobs


def test_a_spec_that_does_not_match_is_refused(app: Tock) -> None:
    for spec in (
        '{"version": 2, "shape": 0}',
        '{"version": 1, "shape": {"chain": []}}',
        '{"version": 1, "shape": {"chord": [0]}}',
        '{"version": 1, "shape": {"chain": [0, 2]}}',
        "not json",
    ):
        record = SimpleNamespace(id=1, spec=spec, job_ids=[1, 2])
        with pytest.raises(ConfigurationError):
            Workflow.from_record(record, app)  # type: ignore[arg-type]


def test_the_public_names(tasks: SimpleNamespace) -> None:
    assert {"chain", "group", "chord", "Signature", "Workflow"} <= set(tock.__all__)
    assert isinstance(tasks.add.s(), Signature)


def test_aenqueue_writes_the_same_batch(tasks: SimpleNamespace, recorder: Recorder) -> None:
    import asyncio

    handle = asyncio.run(chain(tasks.add.s(1, 2), tasks.add.s(3)).aenqueue())
    assert [j.id for j in handle.jobs] == [1, 2]
    assert [j.task for j in recorder.calls[0][0]] == ["wf.add", "wf.add"]
