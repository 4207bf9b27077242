"""``rexmon web``: serve the web pages and the JSON API with waitress."""

from __future__ import annotations

import logging

import click

from rexmon.cli import EXIT_USAGE, fail, load_config

log = logging.getLogger(__name__)


def split_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:8080) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.command()
@click.option("--listen", default=None, help="HOST:PORT to listen on (default: [web] listen).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@click.pass_context
def web(ctx: click.Context, listen: str | None, threads: int) -> None:
    """Serve the overview, graphs, downtime pages and JSON API."""
    import waitress

    from downtime.db import DatabaseError, upgrade
    from rexmon.watchdog import watch_in_background
    from web import create_app
    from web.app import MAX_BODY

    cfg = load_config(ctx)
    try:
        host, port = split_listen(listen or cfg.web.listen)
    except click.BadParameter as exc:
        fail(exc.message, EXIT_USAGE)
    try:  # a fresh database gets its schema; one that is away or read-only is named on its pages
        upgrade(cfg.database_url)
    except DatabaseError as exc:
        log.warning("%s; pages that read the database answer 503 until `rexmon db upgrade` succeeds", exc)
    app = create_app(cfg)
    watch_in_background(cfg)  # the dead man's switch ([watchdog] in_web)
    click.echo(f"rexmon web on http://{host}:{port}/ (archive {cfg.rrd_dir})", err=True)
    # waitress reads a whole body before the app sees the request: cap it there, before any login
    waitress.serve(app, host=host, port=port, threads=threads, ident="rexmon", max_request_body_size=MAX_BODY)
