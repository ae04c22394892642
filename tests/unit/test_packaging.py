"""The package's metadata says what is true: its licence file and the Pythons it supports."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        data: dict[str, object] = tomllib.load(f)["project"]
    return data


def test_licence_file_matches_the_declared_licence() -> None:
    assert project()["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_classifiers_name_each_supported_python() -> None:
    meta = project()
    low = re.fullmatch(r">=3\.(\d+)", str(meta["requires-python"]))
    assert low is not None
    classifiers = meta["classifiers"]
    assert isinstance(classifiers, list)
    named = {int(m[1]) for c in classifiers if (m := re.fullmatch(r".* :: 3\.(\d+)", c))}
    assert named == set(range(int(low[1]), 14))  # 3.11 up to 3.13, the Pythons CI runs
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
