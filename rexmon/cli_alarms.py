"""``rexmon alarms``: list states, acknowledge, test the notification targets, replay rules on the archive."""

from __future__ import annotations

import fnmatch
import getpass
import json
import os
import sys
import time
from datetime import UTC, datetime, tzinfo
from typing import Any

import click

from rexmon.cli import EXIT_FAIL, EXIT_USAGE, fail, load_config


@click.group()
def alarms() -> None:
    """Alarm states, acknowledgements, notification targets and replays."""


def _db(cfg: Any) -> Any:
    from alarms.pipeline import database

    try:
        return database(cfg.database_url)
    except Exception as exc:  # an unreachable or broken database is an operator's problem to read about
        fail(f"database {cfg.database.url}: {exc}")


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


@alarms.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list with every field.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Current state per metric (problems first), with since, value and downtime/ack flags."""
    from dataclasses import asdict

    from alarms.state import SEVERITY_ORDER
    from alarms.store import current_states

    states = current_states(_db(load_config(ctx)))
    states.sort(key=lambda s: (SEVERITY_ORDER[s.state], s.metric_id))
    if as_json:
        click.echo(json.dumps([asdict(s) for s in states], indent=1))
        return
    for s in states:
        flags = [
            f"downtime #{s.downtime_id}" if s.in_downtime else "",
            f"acked by {s.ack_author}" if s.acknowledged else "",
            "flapping" if s.flapping else "",
            "stale" if s.stale else "",
            f"pending {s.pending}" if s.pending else "",
        ]
        value = "U" if s.value is None else f"{s.value:.6g}"
        extra = ", ".join(f for f in flags if f)
        click.echo(f"{s.state:<8} {s.metric_id}\t{value}\tsince {_when(s.since)} UTC\t{extra}".rstrip())


@alarms.command()
@click.argument("metric_id")
@click.option("--comment", required=True, help="Why (shown in the web and the CLI).")
@click.option("--author", default=None, help="Who (default: the login name).")
@click.pass_context
def ack(ctx: click.Context, metric_id: str, comment: str, author: str | None) -> None:
    """Acknowledge a metric's problem: no re-notification until it is OK again."""
    from alarms.store import AlarmStore
    from rrd.names import MetricIdError, check_id

    try:
        check_id(metric_id)
    except MetricIdError as exc:
        fail(str(exc), EXIT_USAGE)
    who = author or os.environ.get("USER") or getpass.getuser()
    store = AlarmStore(_db(load_config(ctx)))
    try:
        rec = store.file_ack(metric_id, who, comment, time.time())
    except (LookupError, ValueError) as exc:
        fail(str(exc.args[0]))
    click.echo(f"acknowledged {metric_id} ({rec.state}) by {who}: {comment}")


@alarms.command("test-notify")
@click.pass_context
def test_notify(ctx: click.Context) -> None:
    """Send a test message to every [[notify]] target (directly, not through the outbox)."""
    from alarms.notify import send_test, targets_from_config

    targets = targets_from_config(load_config(ctx).notify)
    if not targets:
        fail("no [[notify]] targets are configured", EXIT_USAGE)
    failed = 0
    for t in targets:
        error = send_test(t, time.time())
        click.echo(f"{t.key}: {'ok' if error is None else 'FAILED: ' + error} ({t.masked()})")
        failed += error is not None
    if failed:
        sys.exit(EXIT_FAIL)


def parse_when(text: str, now: float, zone: tzinfo | None = None) -> float:
    """A time in the one grammar (:mod:`downtime.timeparse`; without an offset in ``zone``, else in $TZ
    or the system's zone, as ``rexmon downtime``); click.BadParameter quoting the text."""
    from downtime.timeparse import TimeParseError, parse_time

    try:
        return parse_time(text, now, zone)
    except TimeParseError as exc:
        raise click.BadParameter(str(exc)) from None


def _option_time(option: str, text: str, now: float, zone: tzinfo) -> float:
    try:
        return parse_when(text, now, zone)
    except click.BadParameter as exc:
        fail(f"{option}: {exc.message}", EXIT_USAGE)


@alarms.command()
@click.option("--start", "--from", "t_from", required=True, help="now, -2h, 2h ago, epoch, ISO 8601 ($TZ).")
@click.option("--end", "--to", "t_to", default="now", show_default=True, help="The end, same forms.")
@click.option("--match", "pattern", default="*", show_default=True, help="Glob over metric ids.")
@click.pass_context
def replay(ctx: click.Context, t_from: str, t_to: str, pattern: str) -> None:
    """Replay the rules over archived values and print what would have fired (downtimes honoured).

    --from and --to are the older names of --start and --end."""
    from downtime.timeparse import TimeParseError, local_zone

    now = time.time()
    try:
        zone = local_zone()
    except TimeParseError as exc:
        fail(str(exc), EXIT_USAGE)
    start, end = (
        _option_time(option, text, now, zone) for option, text in (("--start", t_from), ("--end", t_to))
    )
    if start >= end:
        fail(f"--start ({_when(start)}) must be before --end ({_when(end)})", EXIT_USAGE)
    cfg = load_config(ctx)
    try:
        lines = replay_archive(cfg, _db(cfg), start, end, lambda m: fnmatch.fnmatchcase(m, pattern))
    except Exception as exc:
        fail(f"replay failed: {exc}")
    for line in lines:
        click.echo(line)
    click.echo(f"{sum(1 for x in lines if ' held ' not in x)} notification(s) would have been sent", err=True)


def replay_archive(cfg: Any, db: Any, start: float, end: float, wanted: Any) -> list[str]:
    """Read the matching metrics from the archive and replay the rules over them."""
    from alarms.engine import Engine
    from alarms.pipeline import Downtimes, rule_set
    from alarms.replay import Meta, replay
    from alarms.store import AlarmStore
    from downtime.index import DowntimeIndex
    from rrd.archive import Archive

    known = AlarmStore(db).load()
    meta = {m: Meta(r.spec_warning, r.spec_critical, r.interval) for m, r in known.items()}
    archive = Archive(cfg.rrd_dir, cfg.archive.step, cfg.rrdcached)
    try:
        series = {}
        for metric_id in archive.metric_ids():
            if wanted(metric_id):
                s = archive.fetch(metric_id, int(start), int(end))
                series[metric_id] = [(float(t), v) for t, v in s.points() if start <= t <= end]
    finally:
        archive.close()
    store = Downtimes(db)._store
    windows = store.windows(start, end) if store is not None else []
    return replay(Engine(rule_set(cfg)), series, meta, DowntimeIndex(windows))
