"""Tock works without psycopg installed; a PostgreSQL URL then says what to install."""

from __future__ import annotations

import sys

import pytest

from tock import ConfigurationError, Tock


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.startswith("tock.store.postgres"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    app = Tock("postgresql://u:secret@h/db")
    with pytest.raises(ConfigurationError, match=r"pip install 'tock\[postgres\]'") as info:
        app.store  # noqa: B018
    assert "secret" not in str(info.value)
