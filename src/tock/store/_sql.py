"""Loads a dialect's ``queries.sql``: blocks that start with ``-- name: <query>``.

Each store keeps its SQL in one file per dialect under the same query names
(procrastinate's ``sql/__init__.py`` does the same). Every text is complete when the file
loads; the store never builds SQL at run time (docs/design.md: Stores). The file may say:

- ``{placeholder}``: a value the store gives the loader once (a schema name, a column
  list, the clock expression), filled in everywhere;
- ``{query:other}``: the text of another query of the file (a list of CTEs, or the
  conditions, several statements share), in the variant of the flags set here that it
  declares too;
- ``-- variants: a, b`` in a query's comments (on several lines if need be), and lines
  that end in ``-- if a`` or ``-- if not a``: the query comes in every combination of
  its flags, each named ``name+flag+…`` (flags in alphabetical order; see ``variant``),
  with the lines whose condition holds. The query's own name is the variant without
  flags; the others are made from the file's lines the first time they are asked for
  (a list query has a dozen flags: thousands of combinations, of which a program uses
  a few).
"""

from __future__ import annotations

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


class _Template:
    """A query as the file writes it: its flags, and its lines with their conditions."""

    __slots__ = ("flags", "lines", "name")

    def __init__(
        self, name: str, flags: tuple[str, ...], lines: list[tuple[str, bool, str | None]]
    ) -> None:
        self.name = name
        self.flags = flags
        self.lines = lines  # (text, negated, flag): kept when flag is None or it holds

    def render(self, chosen: frozenset[str]) -> str:
        kept = [t for t, negated, f in self.lines if f is None or ((f in chosen) != negated)]
        return "\n".join(kept).strip()


class Queries(dict[str, str]):
    """A dialect's queries by name; a variant (``name+flag+…``) is made from its query's
    lines the first time it is asked for, then kept."""

    def __init__(self, templates: Mapping[str, _Template]) -> None:
        self._templates = dict(templates)
        super().__init__({name: self._text(t, frozenset()) for name, t in templates.items()})

    def names(self) -> set[str]:
        """The queries the file defines (the keys also hold the variants made so far)."""
        return set(self._templates)

    def flags(self, name: str) -> tuple[str, ...]:
        """The variant flags query ``name`` declares (none: it has no variants)."""
        return self._templates[name].flags

    def __missing__(self, key: str) -> str:
        name, *flags = key.split("+")
        template = self._templates.get(name)
        if template is None or not flags or flags != sorted(set(flags)):
            raise KeyError(key)
        unknown = set(flags) - set(template.flags)
        if unknown:
            raise KeyError(f"{key}: query {name!r} has no variant {sorted(unknown)}")
        text = self[key] = self._text(template, frozenset(flags))
        return text

    def _text(self, template: _Template, chosen: frozenset[str], seen: tuple[str, ...] = ()) -> str:
        """The variant's text with every ``{query:other}`` replaced by that query's."""
        if template.name in seen:
            path = " -> ".join((*seen, template.name))
            raise ValueError(f"query {template.name!r} includes itself: {path}")

        def one(match: re.Match[str]) -> str:
            other = self._templates.get(match[1])
            if other is None:
                raise ValueError(
                    f"query {template.name!r} includes {match[1]!r}, which is not defined"
                )
            return self._text(other, chosen & set(other.flags), (*seen, template.name))

        text = _INCLUDE.sub(one, template.render(chosen))
        return "\n".join(line for line in text.splitlines() if line.strip())


def fill(text: str, placeholders: Mapping[str, str] | None) -> str:
    """``text`` with each ``{placeholder}`` replaced by its value (queries and migrations)."""
    for key, value in (placeholders or {}).items():
        text = text.replace("{" + key + "}", value)
    return text


def parse_queries(text: str, placeholders: Mapping[str, str] | None = None) -> Queries:
    text = fill(text, placeholders)
    parts = _NAME.split(text)
    templates: dict[str, _Template] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in templates:
            raise ValueError(f"query {name!r} is defined twice")
        flags: list[str] = []
        lines: list[tuple[str, bool, str | None]] = []
        for line in body.strip().splitlines():
            if line.lstrip().startswith("--"):
                declared = _VARIANTS.match(line)
                if declared:  # may take several lines: they add up
                    more = [f.strip() for f in declared[1].split(",")]
                    clash = len(set(more)) != len(more) or set(more) & set(flags)
                    if not all(_FLAG.match(f) for f in more) or clash:
                        raise ValueError(f"query {name!r}: bad variants line {line.strip()!r}")
                    flags += more
                continue
            condition = _CONDITION.search(line)
            if condition is None:
                lines.append((line, False, None))
            else:
                lines.append((line[: condition.start()], bool(condition[1]), condition[2]))
        for flag in sorted({f for _, _, f in lines if f is not None} - set(flags)):
            raise ValueError(f"query {name!r}: a line depends on {flag!r}, not in its variants")
        templates[name] = _Template(name, tuple(sorted(flags)), lines)
    return Queries(templates)


def load_queries(package: str, placeholders: Mapping[str, str] | None = None) -> Queries:
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
