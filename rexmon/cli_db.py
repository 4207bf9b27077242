"""``rexmon db``: apply schema migrations and show the schema revision."""

from __future__ import annotations

import click

from downtime.db import DatabaseError, current_revision, make_engine, mask, upgrade
from rexmon.cli import fail, load_config


@click.group()
def db() -> None:
    """The rexmon database (downtimes, alarm states, notification outbox)."""


@db.command("upgrade")
@click.pass_context
def upgrade_(ctx: click.Context) -> None:
    """Apply every migration (safe to run repeatedly)."""
    cfg = load_config(ctx)
    try:
        engine = make_engine(cfg.database_url)
        upgrade(engine)
        rev = current_revision(engine)
    except DatabaseError as exc:
        fail(str(exc))
    click.echo(f"{mask(cfg.database_url)}: at revision {rev}")


@db.command("current")
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the schema revision of the database."""
    cfg = load_config(ctx)
    try:
        rev = current_revision(make_engine(cfg.database_url))
    except Exception as exc:
        fail(f"cannot read {mask(cfg.database_url)}: {exc}")
    click.echo(rev or "empty (run: rexmon db upgrade)")
