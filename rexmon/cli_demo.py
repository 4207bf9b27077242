"""``rexmon demo``: the whole system against simulators on loopback, until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import click

from rexmon.cli import EXIT_FAIL, EXIT_USAGE


@click.command()
@click.option(
    "--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT of the web site (port 0: any)."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/demo"),
    show_default=True,
    help="Where the demo keeps its config, archive, database and logs.",
)
@click.option("--seed", default=1, show_default=True, help="Seed of the simulators.")
@click.option("--no-history", is_flag=True, help="Do not pre-fill a week of history.")
def demo(listen: str, directory: Path, seed: int, no_history: bool) -> None:
    """Run simulators, the real slurpers, rrdcached, alarms and the web site; Ctrl-C stops them all."""
    from rexmon.demo.daemons import DaemonError
    from rexmon.demo.run import Demo, DemoOptions, split_listen

    try:
        split_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    started = time.monotonic()
    site = Demo(DemoOptions(directory, listen, seed, history=not no_history), say=_say)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        site.start()
    except DaemonError as exc:
        click.echo(f"rexmon demo: {exc}", err=True)
        sys.exit(EXIT_FAIL)
    except OSError as exc:
        click.echo(f"rexmon demo: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        for note in site.notes:
            _say(f"note: {note}")
        click.echo(
            f"\nrexmon demo is up after {time.monotonic() - started:.0f} s\n"
            f"  site:          {site.url}\n"
            f"  login:         {site.user} / {site.password}   (needed to file downtimes)\n"
            f"  config:        {site.config_path}\n"
            f"  notifications: {site.dir / 'notifications.log'}\n"
            f"  try:           rexmon --config {site.config_path} metrics 'condor/*'\n"
            "Press Ctrl-C to stop.",
        )
        while not done.wait(1.0):
            pass
    finally:
        click.echo("stopping the demo ...", err=True)
        site.stop()


def _say(text: str) -> None:
    click.echo(f"demo: {text}", err=True)
