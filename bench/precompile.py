"""Compile Tock's modules to bytecode before a benchmark starts worker processes.

``pip install`` writes the bytecode of an installed package once; a checkout imported
from source (an editable install, or ``PYTHONPATH``) is compiled on every start where
Python may not write it (``PYTHONDONTWRITEBYTECODE``, as on the machines these benchmarks
run on): some 50 ms of each worker's start-up that a user's installed Tock does not pay,
and the peers, installed from PyPI, do not pay either. The files go to ``__pycache__``
beside the sources (ignored by git); an up-to-date file is left alone.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def tock_package() -> Path:
    """The directory of the ``tock`` package this interpreter imports."""
    spec = importlib.util.find_spec("tock")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("tock is not importable: run `pip install -e .` first")
    return Path(next(iter(spec.submodule_search_locations)))


def compile_for(python: str, paths: Iterable[Path]) -> None:
    """Bytecode for ``paths`` (directories or files), as ``python`` (another
    interpreter's version tag may differ) will read it."""
    cmd = [python, "-m", "compileall", "-q", *map(str, paths)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def compile_tock(*more: Path) -> None:
    """Bytecode for Tock and for ``more`` (the benchmark's own app modules)."""
    compile_for(sys.executable, [tock_package(), *more])
