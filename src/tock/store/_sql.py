"""Loads a dialect's ``queries.sql``: blocks that start with ``-- name: <query>``.

Each store keeps its SQL in one file per dialect under the same query names
(procrastinate's ``sql/__init__.py`` does the same); placeholders such as ``{now}``
are filled in once, when the file loads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str, placeholders: Mapping[str, str] | None = None) -> dict[str, str]:
    for key, value in (placeholders or {}).items():
        text = text.replace("{" + key + "}", value)
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip()
    return queries


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
