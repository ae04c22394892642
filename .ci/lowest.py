"""Print pip constraints that pin every dependency pyproject.toml declares to its lowest
version: ``name==X`` for each ``name>=X`` of ``dependencies`` and of the ``postgres``,
``django`` and ``test`` extras (extras dropped: pip refuses them in constraints; an
environment marker is kept). A requirement without a ``>=`` lower bound is an error: CI
could not install its lowest version.

    python3 .ci/lowest.py > lowest.txt && pip install -c lowest.txt -e '.[postgres,test]'
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
REQUIREMENT = re.compile(
    r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*>=\s*([^\s,;]+)\s*(?:;\s*(.+?))?\s*"
)


def lowest(requirements: list[str]) -> dict[str, str]:
    """Each name's pin: ``X``, or ``X; marker``."""
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = REQUIREMENT.fullmatch(requirement)
        if match is None:
            raise SystemExit(f"{PYPROJECT}: {requirement!r} is not 'name>=X' (one lower bound)")
        name = re.sub(r"[-_.]+", "-", match[1]).lower()
        pin = match[3] + (f"; {match[4]}" if match[4] else "")
        if pins.setdefault(name, pin) != pin:
            raise SystemExit(f"{PYPROJECT}: {name} has two lower bounds: {pins[name]}, {pin}")
    return pins


def main() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = project["optional-dependencies"]
    pins = lowest(
        [*project["dependencies"], *extras["postgres"], *extras["django"], *extras["test"]]
    )
    sys.stdout.write("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))


if __name__ == "__main__":
    main()
