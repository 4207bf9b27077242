"""``rexmon watchdog``: tell the ``watchdog`` targets when a collector stops, and when it is back."""

from __future__ import annotations

import time

import click

from rexmon.cli import EXIT_FAIL, EXIT_OK, EXIT_USAGE, fail, load_config


@click.command()
@click.option("--loop", is_flag=True, help="Check every [watchdog] check_interval until stopped (else once).")
@click.option(
    "--forget",
    metavar="COLLECTOR",
    help="Remove a collector that is gone for good (a shard no longer run) from the heartbeats, then check.",
)
@click.pass_context
def watchdog(ctx: click.Context, loop: bool, forget: str | None) -> None:
    """Check every collector's heartbeat once (for cron on another host); exit 1 while one is down."""
    from downtime.db import DatabaseError
    from rexmon.watchdog import Watchdog, pause

    cfg = load_config(ctx)
    try:
        dog = Watchdog.from_config(cfg)
        if forget is not None:
            if not dog.forget(forget):
                known = ", ".join(sorted(dog.report_names())) or "none"
                fail(f"no collector {forget!r} has recorded a heartbeat (known: {known})", EXIT_USAGE)
            click.echo(f"forgot collector {forget}")
    except DatabaseError as exc:
        fail(str(exc))
    try:
        while True:
            try:
                report = dog.check(time.time())
            except DatabaseError as exc:
                fail(str(exc))
            for line in report.lines():
                click.echo(line)
            if not loop:
                break
            pause(cfg.watchdog.check_interval)
    finally:
        dog.close()
    raise SystemExit(EXIT_FAIL if report.down else EXIT_OK)
