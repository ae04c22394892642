"""``tock worker``: claim jobs from queues and run them until told to stop.

The worker installs its own SIGTERM/SIGINT handlers: the first signal stops claiming,
hands back claimed jobs that never started and lets running ones finish within
``--shutdown-grace``; a second signal stops at once (docs/design.md: Workers).
"""

from __future__ import annotations

import logging
import re
import sys

import click

from tock.cli._common import fail, get_app, loaded, prog
from tock.errors import ConfigurationError
from tock.leader import ElectorConfig
from tock.logs import JsonFormatter
from tock.worker.worker import Worker, WorkerConfig

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

log = logging.getLogger("tock.worker")


@click.command()
@click.option(
    "--queues",
    "-q",
    "queue_options",
    multiple=True,
    metavar="Q1,Q2",
    help="Queues to serve, comma-separated (or repeat the option).  [default: default]",
)
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=10,
    show_default=True,
    help="Jobs running at once in this process, sync and async together.",
)
@click.option(
    "--prefetch",
    type=int,
    default=None,
    help="Claimed jobs that may wait for a free slot.  [default: sized from the jobs' run "
    "times: at most ~100 ms of work, up to 4000]",
)
@click.option(
    "--claimers",
    type=int,
    default=None,
    help="Claim transactions in flight at once; the second turns only while claims come "
    "back full.  [default: 2 on PostgreSQL, 1 on SQLite]",
)
@click.option(
    "--burst",
    is_flag=True,
    help="Exit once no job is held and nothing (a job, a retry, a fire) is due within 0.5 s.",
)
@click.option(
    "--no-leader",
    is_flag=True,
    help="Never run for leader: this worker runs jobs only, never the schedules, rescues "
    "and pruning the leader runs.",
)
@click.option(
    "--lease-ttl",
    type=float,
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="As leader: how long its lease lasts after each renewal; a leader that is paused "
    "or cut off is replaced after this long.",
)
@click.option(
    "--lease-renew",
    type=float,
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="As leader: how often it renews its lease (under 0.45 x --lease-ttl).",
)
@click.option(
    "--shutdown-grace",
    type=float,
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM/SIGINT, how long running jobs may take to finish.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="Logging to stderr; debug adds a line for each job that starts or succeeds.",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS, case_sensitive=False),
    default="text",
    show_default=True,
    help="text, or json: one JSON object a line, with each job's fields.",
)
def worker(
    queue_options: tuple[str, ...],
    concurrency: int,
    prefetch: int | None,
    claimers: int | None,
    burst: bool,
    no_leader: bool,
    lease_ttl: float,
    lease_renew: float,
    shutdown_grace: float,
    log_level: str,
    log_format: str,
) -> None:
    """Run jobs until stopped.

    Every worker is a candidate for leader (unless --no-leader); the one elected fires
    schedules, rescues the jobs of dead workers and prunes old jobs.

    The first SIGTERM or SIGINT (Ctrl-C) resigns the leadership, stops claiming, hands
    back jobs that never started and lets running ones finish within --shutdown-grace;
    a second one stops at once.
    """
    # Checked before the app is imported: a typo in a queue name fails fast.
    try:
        elector = ElectorConfig(ttl=lease_ttl, renew_interval=lease_renew)
        config = WorkerConfig(
            queues=parse_queues(queue_options),
            concurrency=concurrency,
            prefetch=prefetch,
            claimers=claimers,
            shutdown_grace=shutdown_grace,
            burst=burst,
            duties=not no_leader,
            elector=elector,
        )
    except ConfigurationError as exc:
        fail(option_words(str(exc)))
    handler = setup_logging(log_level, log_format)
    try:
        app = get_app()
        if not app.tasks:
            log.warning(
                "the app has no tasks registered: %s",
                "does the --app module import the modules that define them?"
                if prog() == "tock"
                else "are they defined in the tasks.py of an installed app?",
            )
        else:
            log.info("tasks: %s", ", ".join(sorted(app.tasks)))
        running = Worker(app, config)  # the store's modules are loaded by now
        loaded()
        running.run()
    finally:
        logging.getLogger().removeHandler(handler)


# WorkerConfig names its fields; here the user typed options.
_OPTIONS = {
    "ttl": "--lease-ttl",
    "renew_interval": "--lease-renew",
    "concurrency": "--concurrency",
    "prefetch": "--prefetch",
    "claimers": "--claimers",
    "shutdown_grace": "--shutdown-grace",
}
_LEADING_FIELD = re.compile(rf"^({'|'.join(_OPTIONS)})\b")


def option_words(message: str) -> str:
    """A WorkerConfig message with its field named as the CLI option it came from."""
    return _LEADING_FIELD.sub(lambda m: _OPTIONS[m[1]], message)


def parse_queues(options: tuple[str, ...]) -> tuple[str, ...]:
    """``("default,emails", "reports")`` -> ``("default", "emails", "reports")``."""
    if not options:
        return ("default",)
    names = [name.strip() for option in options for name in option.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


def setup_logging(level: str, log_format: str = "text") -> logging.Handler:
    """Log to stderr at ``level``, the worker's and the tasks' own loggers alike; as
    text, or as one JSON object a line (``tock.logs.JsonFormatter``)."""
    handler = logging.StreamHandler(sys.stderr)
    json_lines = log_format.lower() == "json"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(LOG_FORMAT))
    # The handler's own level too: a logger the project set lower (Django sets "django"
    # to INFO) still propagates its records here.
    handler.setLevel(level.upper())
    handler.addFilter(_not_on_the_console_yet)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def _not_on_the_console_yet(record: logging.LogRecord) -> bool:
    """False for a record a handler of its own logger's chain already writes to the
    console (Django's "console" handler with DEBUG on): shown once, not twice."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None and logger is not logging.root:
        for other in logger.handlers:
            if (
                isinstance(other, logging.StreamHandler)
                and other.stream in (sys.stderr, sys.stdout)
                and record.levelno >= other.level
                and other.filter(record)
            ):
                return False
        logger = logger.parent if logger.propagate else None
    return True
