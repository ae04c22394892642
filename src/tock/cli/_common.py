"""What every command shares: finding the app, one-line errors, output helpers, and the
garbage collector's pause while ``tock`` loads.

Errors a newcomer can act on (a bad ``--app``, a store that needs ``tock migrate``, a job
in the wrong state) are shown as one line, ``Error: ...``, with exit code 1: a traceback
would only hide the sentence that says what to do.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    # Imported where used: rich by the commands that draw with it, when they do (`tock
    # worker` never loads it); the app's modules once a command loads the app.
    from rich.console import Console
    from rich.table import Table

    from tock.app import Tock

APP_HELP_EXAMPLE = "myproject.tasks:app"
PIPE_WIDTH = 200


class CLIError(click.ClickException):
    """A one-line ``Error: ...`` and exit code 1, never a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(own_words(one_line(message)))


#: ``ctx.meta`` key: how hints name this command line when it is not ``tock``
PROG = "tock.prog"


def prog() -> str:
    """How this command line is called: ``tock``, or what a front end that runs its
    commands set under ``PROG`` (``manage.py tock`` under Django)."""
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get(PROG, "tock")) if ctx is not None else "tock"


def own_words(text: str) -> str:
    """A hint written for ``tock`` (by the app, the store or a command) as this command
    line is called: "run `tock migrate`" reads "run `manage.py tock migrate`" there."""
    name = prog()
    return text if name == "tock" else text.replace("`tock ", f"`{name} ")


def fail(message: str) -> NoReturn:
    raise CLIError(message)


def one_line(message: str) -> str:
    return " ".join(message.split()) or "unknown error"


def type_name(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


# -- start-up ----------------------------------------------------------------------

_gc_paused = False  # by gc_paused_while_loading(), until loaded()


@contextlib.contextmanager
def gc_paused_while_loading() -> Iterator[None]:
    """``tock`` (``main()``): the cyclic garbage collector is off while the command line,
    the app and its store are imported. What they make lives as long as the process: the
    collector would only go over it dozens of times for nothing. A command that runs for
    long resumes it once loaded (``loaded()``); any other ends with it off."""
    global _gc_paused
    if not gc.isenabled():  # turned off by whoever runs this: left as it is
        yield
        return
    gc.disable()
    _gc_paused = True
    try:
        yield
    finally:
        _gc_paused = False
        gc.enable()


def loaded() -> None:
    """A command that runs for long (``tock worker``) has loaded what it runs. Under
    ``gc_paused_while_loading()``, the objects made so far are set aside for good
    (``gc.freeze()``: no later collection goes over them again, nor the one at exit) and
    the collector resumes; elsewhere (``manage.py tock``, tests) nothing changes."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.freeze()
        gc.enable()


# -- the app -----------------------------------------------------------------------


@dataclass
class AppRef:
    """The ``--app`` given on the command line; imported only by commands that need it."""

    spec: str | None
    _app: Tock | None = field(default=None, init=False)

    def get(self, ctx: click.Context) -> Tock:
        if self._app is None:
            if not self.spec:
                fail(
                    f"no app given: pass --app module:attribute (e.g. --app {APP_HELP_EXAMPLE}) "
                    "or set TOCK_APP"
                )
            self._app = load_app(self.spec)
            ctx.call_on_close(self._app.close)
        return self._app


def get_app() -> Tock:
    """The app of the running command (imports it on first use)."""
    ctx = click.get_current_context()
    ref = ctx.find_object(AppRef)
    assert ref is not None, "the tock command group creates an AppRef"
    return ref.get(ctx)


def load_app(spec: str) -> Tock:
    """Import ``module:attribute`` with the current directory first on ``sys.path``."""
    from tock.app import Tock

    module_name, attr = _parse_spec(spec)
    cwd = os.getcwd()
    if sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)
    module = _import(spec, module_name)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            fail(f"--app {spec!r}: module {module_name!r} has no attribute {attr!r}{_hint(module)}")
    if not isinstance(obj, Tock):
        fail(f"--app {spec!r} names a {type(obj).__name__}, not a tock.Tock app{_hint(module)}")
    return obj


def _parse_spec(spec: str) -> tuple[str, str]:
    module_name, sep, attr = spec.strip().partition(":")
    if (
        not sep
        or not all(p.isidentifier() for p in module_name.split("."))
        or not all(p.isidentifier() for p in attr.split("."))
    ):
        fail(f"--app {spec!r} is not of the form module:attribute (e.g. {APP_HELP_EXAMPLE})")
    return module_name, attr


def _import(spec: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            fail(
                f"--app {spec!r}: no module named {missing!r} in {os.getcwd()} or on sys.path "
                "(run tock from your project's directory)"
            )
        _import_failed(spec, module_name, exc)
    except Exception as exc:
        _import_failed(spec, module_name, exc)


def _import_failed(spec: str, module_name: str, exc: Exception) -> NoReturn:
    fail(
        f"--app {spec!r}: importing {module_name!r} raised {type_name(exc)}: {exc} "
        f"(`python -c 'import {module_name}'` shows the traceback)"
    )


def _hint(module: ModuleType) -> str:
    from tock.app import Tock

    names = [name for name, value in vars(module).items() if isinstance(value, Tock)]
    if len(names) == 1:
        return f" (did you mean {module.__name__}:{names[0]}?)"
    return ""


# -- output ------------------------------------------------------------------------


def console() -> Console:
    """Rich output on the current stdout; user data is never read as markup."""
    from rich.console import Console

    out = Console(markup=False, emoji=False, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        # Piped into grep or a file: rows on one line each beat rich's default of 80.
        out.width = PIPE_WIDTH
    return out


def fmt_time(when: datetime | None) -> str:
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_age(seconds: float | None) -> str:
    """A short duration for people: ``0.4 s``, ``12 s``, ``3 min 4 s``, ``2 h 5 min``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def new_table(**options: Any) -> Table:
    """A rich table in the commands' light style, two spaces between columns: more room
    for names on 80 columns. ``options`` are rich's (``title=``, ...)."""
    from rich import box
    from rich.table import Table

    style: dict[str, Any] = {
        "box": box.SIMPLE_HEAD,
        "padding": (0, 1, 0, 0),
        "pad_edge": False,
        "show_edge": False,
    }
    return Table(**style, **options)


STATUS_STYLES = {
    "blocked": "magenta",
    "pending": "cyan",
    "running": "blue",
    "succeeded": "green",
    "failed": "red",
    "canceled": "dim",
    "lost": "yellow",
}
