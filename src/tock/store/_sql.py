"""Loads a dialect's ``queries.sql``: blocks that start with ``-- name: <query>``.

Each store keeps its SQL in one file per dialect under the same query names
(procrastinate's ``sql/__init__.py`` does the same). Every text is complete when the file
loads; the store never builds SQL at run time (docs/design.md: Stores). The file may say:

- ``{placeholder}``: a value the store gives the loader once (a schema name, a column
  list, the clock expression), filled in everywhere;
- ``{query:other}``: the text of another query of the file (a list of CTEs shared by
  several statements);
- ``-- variants: a, b`` in a query's comments, and lines that end in ``-- if a`` or
  ``-- if not a``: the query comes in every combination of its flags, each named
  ``name+flag+…`` (flags in alphabetical order; see ``variant``), with the lines whose
  condition holds. The query's own name is the variant without flags.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_VARIANTS = re.compile(r"^\s*--\s*variants:\s*(.*?)\s*$")
_CONDITION = re.compile(r"\s*--\s*if\s+(not\s+)?([a-z_][a-z0-9_]*)\s*$")
_INCLUDE = re.compile(r"\{query:([a-z_][a-z0-9_]*)\}")
_FLAG = re.compile(r"^[a-z_][a-z0-9_]*$")


def variant(name: str, *flags: str) -> str:
    """The key of a query's variant with these flags set (see the module)."""
    return "+".join((name, *sorted(flags))) if flags else name


def parse_queries(text: str, placeholders: Mapping[str, str] | None = None) -> dict[str, str]:
    for key, value in (placeholders or {}).items():
        text = text.replace("{" + key + "}", value)
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        flags: list[str] = []
        lines: list[tuple[str, bool, str | None]] = []  # (text, negated, flag)
        for line in body.strip().splitlines():
            if line.lstrip().startswith("--"):
                declared = _VARIANTS.match(line)
                if declared:
                    flags = [f.strip() for f in declared[1].split(",")]
                    if not all(_FLAG.match(f) for f in flags) or len(set(flags)) != len(flags):
                        raise ValueError(f"query {name!r}: bad variants line {line.strip()!r}")
                continue
            condition = _CONDITION.search(line)
            if condition is None:
                lines.append((line, False, None))
            else:
                lines.append((line[: condition.start()], bool(condition[1]), condition[2]))
        for flag in {f for _, _, f in lines if f is not None} - set(flags):
            raise ValueError(f"query {name!r}: a line depends on {flag!r}, not in its variants")
        for n in range(len(flags) + 1):
            for chosen in itertools.combinations(sorted(flags), n):
                kept = [t for t, negated, f in lines if f is None or ((f in chosen) != negated)]
                queries[variant(name, *chosen)] = "\n".join(kept).strip()
    return {name: _included(queries, name, ()) for name in queries}


def _included(queries: Mapping[str, str], name: str, seen: tuple[str, ...]) -> str:
    """``queries[name]`` with every ``{query:other}`` replaced by that query's text."""
    if name in seen:
        raise ValueError(f"query {name!r} includes itself: {' -> '.join((*seen, name))}")

    def one(match: re.Match[str]) -> str:
        other = match[1]
        if other not in queries:
            raise ValueError(f"query {name!r} includes {other!r}, which is not defined")
        return _included(queries, other, (*seen, name))

    return _INCLUDE.sub(one, queries[name])


def load_queries(package: str, placeholders: Mapping[str, str] | None = None) -> dict[str, str]:
    text = resources.files(package).joinpath("queries.sql").read_text(encoding="utf-8")
    return parse_queries(text, placeholders)


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of ``migrations/NNNN_name.sql``, in order."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations of {package} are not numbered 1..n: {versions}")
    return found
