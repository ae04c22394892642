"""What every page of Tock's admin shares (docs/django.md: The admin): a ``ModelAdmin``
whose URLs are views calling the app, and the helpers of their templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse

__all__ = ["AppAdmin", "query", "to_change", "when"]


class AppAdmin(admin.ModelAdmin):  # type: ignore[misc]
    """A page of the admin whose one URL is its ``changelist_view``, which calls the app:
    no add, change or delete views of rows (there are none)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="{}_{}_changelist".format(*info),
            )
        ]


def query(params: dict[str, Any]) -> str:
    """A changelist link's query string ("?" alone when there is none)."""
    return "?" + urlencode(params)


def when(iso: str | None) -> datetime | None:
    """An ISO time of ``app.health()`` as a datetime the template formats."""
    return None if iso is None else datetime.fromisoformat(iso)


def to_change(admin_view: Any, name: str) -> Any:
    """The URL ``<object_id>/`` of a page whose own is ``<object_id>/change/`` (as
    Django's admin has it): a redirect there, for links written by hand."""

    def redirect(request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse(name, args=[object_id]))

    return admin_view(redirect)
