"""``rexmon downtime``: file, list, show, end, extend and cancel downtimes; print the iCal feed."""

from __future__ import annotations

import fnmatch
import getpass
import json
import sys
import time
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import click

from downtime.checks import site_zone
from downtime.db import DatabaseError, make_engine, upgrade
from downtime.ical import to_ical
from downtime.models import Downtime
from downtime.store import DowntimeError, DowntimeNotFound, DowntimeStore, problem, status_at
from downtime.timeparse import TimeParseError, format_local, local_zone, parse_duration, parse_time, zone_name
from rexmon.cli import EXIT_USAGE, fail, load_config
from rrd.archive import Archive

MAX_DRY_RUN = 50


def _store(ctx: click.Context) -> DowntimeStore:
    cfg = load_config(ctx)
    try:
        engine = make_engine(cfg.database_url)
        upgrade(engine)
    except DatabaseError as exc:
        fail(str(exc))
    return DowntimeStore(engine)


def _zone() -> tzinfo:
    """The zone times are read and shown in ($TZ, else the system's); a bad $TZ is a usage error."""
    try:
        return local_zone()
    except TimeParseError as exc:
        fail(str(exc), EXIT_USAGE)


def _when(option: str, text: str, now: float, zone: tzinfo) -> float:
    try:
        return parse_time(text, now, zone)
    except TimeParseError as exc:
        fail(f"{option}: {exc}", EXIT_USAGE)


@click.group()
def downtime() -> None:
    """Planned and unplanned downtimes: they silence alarms and shade graphs."""


@downtime.command("add")
@click.option("--scope", "scopes", multiple=True, required=True, help="Glob over metric ids (repeatable).")
@click.option("--start", default="now", show_default=True, help="ISO 8601, now, +30m, 'tomorrow 08:00'.")
@click.option("--end", help="When it ends (same forms as --start).")
@click.option("--duration", help="Instead of --end: 2h, 90m, 1d.")
@click.option("--reason", required=True, help="Why: shown on graphs and in notifications.")
@click.option("--author", default=None, help="Who files it (default: your login name).")
@click.option("--kind", type=click.Choice(["planned", "unplanned"]), default="planned", show_default=True)
@click.option("--severity", type=click.Choice(["outage", "at-risk"]), default="outage", show_default=True)
@click.option("--ticket", default="", help="URL of the ticket or announcement.")
@click.option("--rrule", default=None, help="RFC 5545 recurrence, e.g. FREQ=WEEKLY;BYDAY=TU.")
@click.option("--dry-run", is_flag=True, help="Show which existing metrics the scope matches; save nothing.")
@click.option("--yes", is_flag=True, help="Confirm a scope that matches every metric.")
@click.pass_context
def add(ctx: click.Context, scopes: Sequence[str], start: str, end: str | None, duration: str | None,
        reason: str, author: str | None, kind: str, severity: str, ticket: str, rrule: str | None,
        dry_run: bool, yes: bool) -> None:  # fmt: skip
    """File a downtime."""
    now = time.time()
    zone = _zone()
    t0 = _when("--start", start, now, zone)
    if (end is None) == (duration is None):
        fail("give exactly one of --end and --duration", EXIT_USAGE)
    if duration is not None:
        try:
            t1 = t0 + parse_duration(duration)
        except ValueError as exc:
            fail(f"--duration: {exc}", EXIT_USAGE)
    else:
        t1 = _when("--end", end or "", t0, zone)
    cfg = load_config(ctx)
    ids = Archive(cfg.rrd_dir, cfg.archive.step).metric_ids()
    matched = [m for m in ids if any(fnmatch.fnmatchcase(m, p) for p in scopes)]
    if _matches_everything(scopes) and not yes:
        fail(f"scope {' '.join(scopes)} matches every metric: add --yes if you mean it", EXIT_USAGE)
    if dry_run:
        click.echo(f"scope matches {len(matched)} of {len(ids)} metric(s):")
        for m in matched[:MAX_DRY_RUN]:
            click.echo(f"  {m}")
        if len(matched) > MAX_DRY_RUN:
            click.echo(f"  ... and {len(matched) - MAX_DRY_RUN} more")
        click.echo(f"{format_local(t0, zone)} -> {format_local(t1, zone)} (not saved: --dry-run)")
        return
    store = _store(ctx)
    try:
        dt = store.add(list(scopes), t0, t1, reason, author or getpass.getuser(), kind, severity, ticket,
                       rrule, site_zone(), now=now)  # fmt: skip
    except DowntimeError as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(f"downtime {dt.id} filed: {format_local(dt.start, zone)} -> {format_local(dt.end, zone)}, "
               f"{len(matched)} metric(s) matched now")  # fmt: skip


def _matches_everything(scopes: Sequence[str]) -> bool:
    """A pattern of only wildcards and slashes (``*``, ``*/*``, ``?*``, ``*/**``) matches every metric."""
    return any("*" in p and set(p.strip()) <= set("*?/") for p in scopes)


@downtime.command("list")
@click.option("--active", "which", flag_value="active", help="Covering now.")
@click.option("--upcoming", "which", flag_value="upcoming", help="Starting later.")
@click.option("--past", "which", flag_value="past", help="Over or cancelled.")
@click.option("--all", "which", flag_value="all", default=True, help="Every downtime (default).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, which: str, as_json: bool) -> None:
    """List downtimes."""
    now = time.time()
    zone = _zone()
    rows = _store(ctx).list(which, now)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps([as_dict(d, now) for d in rows], indent=1))
        return
    click.echo(f"times in {zone_name(zone, now)}")
    for d in rows:
        span = f"{format_local(d.start, zone)} -> {format_local(d.end, zone)}"
        scope = ",".join(d.scope)
        click.echo(f"{d.id:>5}  {status_at(d, now):<9}  {span}  {d.severity:<7} {scope}  {d.reason}")


@downtime.command("show")
@click.argument("downtime_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, downtime_id: int, as_json: bool) -> None:
    """One downtime with its audit trail."""
    zone = _zone()
    store = _store(ctx)
    now = time.time()
    try:
        d = store.require(downtime_id)
    except DowntimeNotFound as exc:
        fail(str(exc), EXIT_USAGE)
    audit = [{"at": a.at, "author": a.author, "action": a.action, "detail": json.loads(a.detail)}
             for a in store.audit(downtime_id)]  # fmt: skip
    if as_json:
        click.echo(json.dumps({**as_dict(d, now), "audit": audit}, indent=1))
        return
    for key, value in as_dict(d, now).items():
        if key in ("start", "end", "created", "updated") and isinstance(value, float):
            value = format_local(value, zone)
        click.echo(f"{key:>10}: {value}")
    click.echo("audit:")
    for a in audit:
        click.echo(
            f"  {format_local(a['at'], zone)}  {a['author']}  {a['action']}  {json.dumps(a['detail'])}"
        )


def _change(ctx: click.Context, action: str, downtime_id: int, **kw: Any) -> Downtime:
    store = _store(ctx)
    try:
        result: Downtime = getattr(store, action)(downtime_id, **kw)
    except (DowntimeError, DowntimeNotFound) as exc:
        fail(str(exc), EXIT_USAGE)
    return result


@downtime.command("end")
@click.argument("downtime_id", type=int)
@click.option("--author", default=None)
@click.pass_context
def end_(ctx: click.Context, downtime_id: int, author: str | None) -> None:
    """End a downtime now."""
    zone = _zone()
    d = _change(ctx, "end", downtime_id, now=time.time(), author=author or getpass.getuser())
    until = d.end if not d.rrule else (d.rrule_until or d.end)
    click.echo(f"downtime {d.id} ended at {format_local(until, zone)}")


@downtime.command("extend")
@click.argument("downtime_id", type=int)
@click.option("--end", "new_end", required=True, help="The new end (ISO 8601, +2h, 'tomorrow 08:00').")
@click.option("--author", default=None)
@click.pass_context
def extend(ctx: click.Context, downtime_id: int, new_end: str, author: str | None) -> None:
    """Move the end of a downtime."""
    now = time.time()
    zone = _zone()
    t1 = _when("--end", new_end, now, zone)
    d = _change(ctx, "extend", downtime_id, end=t1, author=author or getpass.getuser(), now=now)
    click.echo(f"downtime {d.id} now ends {format_local(d.end, zone)}")


@downtime.command("cancel")
@click.argument("downtime_id", type=int)
@click.option("--reason", required=True)
@click.option("--author", default=None)
@click.pass_context
def cancel(ctx: click.Context, downtime_id: int, reason: str, author: str | None) -> None:
    """Withdraw a downtime (kept in the history, never matched again)."""
    d = _change(
        ctx, "cancel", downtime_id, reason=reason, author=author or getpass.getuser(), now=time.time()
    )
    click.echo(f"downtime {d.id} cancelled")


@downtime.command("ical")
@click.pass_context
def ical(ctx: click.Context) -> None:
    """Print the iCalendar feed of every downtime."""
    sys.stdout.buffer.write(to_ical(_store(ctx).all(), time.time()))


def as_dict(d: Downtime, now: float) -> dict[str, Any]:
    return {
        "id": d.id, "status": status_at(d, now), "scope": list(d.scope), "start": d.start, "end": d.end,
        "kind": d.kind, "severity": d.severity, "author": d.author, "reason": d.reason, "ticket": d.ticket,
        "rrule": d.rrule, "tz": d.tz, "cancel_reason": d.cancel_reason, "created": d.created,
        "updated": d.updated, "problem": problem(d),
    }  # fmt: skip
