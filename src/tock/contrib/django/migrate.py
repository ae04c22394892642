"""Django's migrations apply Tock's own SQL migrations (docs/django.md: one source of
truth). Each Django migration of this app applies Tock's schema up to a version, on the
connection Django migrates with and inside its transaction, so that ``manage.py
migrate`` and ``tock migrate`` each find the other's work done."""

from __future__ import annotations

from typing import Any

from django.db import migrations

__all__ = ["TockSQL"]


class TockSQL(migrations.RunPython):  # type: ignore[misc]
    """Apply Tock's schema migrations up to version ``upto`` on the Tock database
    (``settings.TOCK["DATABASE"]``); on any other alias it does nothing."""

    reduces_to_sql = False
    reversible = False

    def __init__(self, upto: int) -> None:
        self.upto = upto
        super().__init__(self._apply, hints={"tock": True})

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (f"{__name__}.{type(self).__name__}", [], {"upto": self.upto})

    def describe(self) -> str:
        return f"Apply Tock's schema migrations up to version {self.upto}"

    def _apply(self, apps: Any, schema_editor: Any) -> None:
        from tock.contrib.django.conf import get_app

        app = get_app()
        connection = schema_editor.connection
        if connection.alias != app.alias:
            return
        connection.ensure_connection()
        app.store.migrate(connection=connection.connection, upto=self.upto)
