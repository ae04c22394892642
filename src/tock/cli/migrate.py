"""``tock migrate``: create or upgrade the store's schema."""

from __future__ import annotations

import click

from tock.cli._common import get_app
from tock.store import redact_url


@click.command()
def migrate() -> None:
    """Create or upgrade the schema of the app's store."""
    app = get_app()
    applied = app.migrate()
    version, _ = app.schema_version()
    url = redact_url(app.url)
    if applied:
        click.echo(f"Applied {len(applied)} migration(s) to {url}:")
        for name in applied:
            click.echo(f"  {name}")
        click.echo(f"The schema is now at version {version}.")
    else:
        click.echo(f"The schema of {url} is up to date (version {version}).")
