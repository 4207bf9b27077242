"""``rexmon archive``: check the RRD files against the configuration, migrate them, prune old ones.

``check`` lists files whose step, DS type, heartbeat, min/max or RRAs differ from what the configuration
would create today, and files no metric has written for ``[archive] stale_after``. ``migrate`` rewrites
the differing files keeping their data (``rrdtool create --source``); it is a dry run unless ``--yes``.
``prune --older-than 90d`` lists files not written for that long and removes them with ``--yes``.
Migrate and prune work on the files, so they run on the archive host.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.progress import track

from rexmon.cli import EXIT_USAGE, fail, load_config
from rexmon.config import Config, build_slurper
from rrd.archive import Archive, ArchiveError, DSType, SeriesSpec
from rrd.lifecycle import Layout, differences, layout_of, migrate, wanted
from rrd.rrdcached import RRDCachedClient, RRDCachedError
from slurpers.api import parse_duration

#: a progress bar from this many files on (on stderr, only on a terminal)
PROGRESS_FROM = 200
HEALTH = "rexmon"
T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    """One file and what is wrong with it."""

    metric_id: str
    have: Layout
    want: Layout | None
    problems: list[str]


@click.group()
def archive() -> None:
    """The RRD files: check them against the configuration, migrate them, prune old ones."""


def _open(cfg: Config) -> Archive:
    return Archive(cfg.rrd_dir, cfg.archive.step, cfg.rrdcached, retention=cfg.retention())


def _wanted_specs(cfg: Config) -> dict[str, Any]:
    """The configured slurpers by id (built, so their metric specs can be asked)."""
    out: dict[str, Any] = {}
    for sc in cfg.slurpers:
        try:
            out[sc.id] = build_slurper(sc, cfg.registry)
        except Exception as exc:  # a slurper that cannot be built is named, the rest are checked
            click.echo(
                f"rexmon: archive: slurper {sc.id}: cannot build it ({exc}); its files are not compared"
            )
    return out


def _want(cfg: Config, slurpers: dict[str, Any], metric_id: str, have: Layout) -> Layout | None:
    """The layout the configuration gives this file today; None when no configured slurper owns it."""
    sid, _, name = metric_id.partition("/")
    step = cfg.archive.step
    if sid == HEALTH:  # rexmon's own series: the archive's retention, their DS as created
        spec = SeriesSpec(cast(DSType, have.ds_type), have.heartbeat, have.min, have.max)
        return wanted(step, spec, cfg.retention())
    slurper = slurpers.get(sid)
    if slurper is None:
        return None
    ms = slurper.spec_for(name)
    heartbeat = int(max(2 * slurper.interval, step))
    return wanted(step, SeriesSpec(ms.ds_type, heartbeat, ms.min, ms.max), cfg.retention(sid))


def _findings(cfg: Config, arch: Archive, stale_after: float, now: float) -> Iterator[Finding]:
    slurpers = _wanted_specs(cfg)
    for mid in _progress(arch.metric_ids(), "checking"):
        try:
            have = layout_of(arch.info(mid))
        except ArchiveError as exc:
            yield Finding(mid, Layout(0, "", 0, None, None, ()), None, [f"unreadable: {exc}"])
            continue
        want = _want(cfg, slurpers, mid, have)
        # a file no configured slurper owns (another shard's, or a slurper removed) is only judged by age
        problems = differences(have, want) if want is not None else []
        if have.last_update < now - stale_after:
            days = (now - have.last_update) / 86400
            problems.append(f"not written for {days:.0f} days")
        if problems:
            yield Finding(mid, have, want, problems)


def _progress(items: list[T], what: str) -> Iterable[T]:
    """The items, with a progress bar on stderr for long runs on a terminal."""
    console = Console(stderr=True)
    if len(items) < PROGRESS_FROM or not console.is_terminal:
        return items
    return track(items, description=f"{what} {len(items)} files", console=console, transient=True)


@archive.command("check")
@click.option(
    "--stale-after", default=None, help="Age that makes a file stale (default [archive] stale_after)."
)
@click.pass_context
def check(ctx: click.Context, stale_after: str | None) -> None:
    """List files that differ from the configuration or that no metric has written for long.

    Exit 0 when every file matches, 1 when something is listed.
    """
    cfg = load_config(ctx)
    age = _age(stale_after, cfg.archive.stale_after)
    arch = _open(cfg)
    try:
        found = list(_findings(cfg, arch, age, time.time()))
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        arch.close()
    for f in found:
        click.echo(f"{f.metric_id}: {'; '.join(f.problems)}")
    click.echo(
        f"{len(found)} file(s) to look at" if found else "every file matches the configuration", err=True
    )
    ctx.exit(1 if found else 0)


@archive.command("migrate")
@click.option("--yes", is_flag=True, help="Rewrite the files (default: list what would change).")
@click.pass_context
def migrate_(ctx: click.Context, yes: bool) -> None:
    """Rewrite files whose layout differs from the configuration, keeping their data."""
    cfg = load_config(ctx)
    arch = _open(cfg)
    try:
        todo = [f for f in _findings(cfg, arch, float("inf"), time.time()) if _differs(f)]
        for f in todo:
            click.echo(f"{f.metric_id}: {'; '.join(_differs(f))}")
        if not yes:
            click.echo(f"{len(todo)} file(s) would be rewritten (dry run; --yes rewrites them)", err=True)
            return
        failed = _rewrite(cfg, arch, todo)
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        arch.close()
    click.echo(f"{len(todo) - failed} file(s) rewritten, {failed} failed", err=True)
    ctx.exit(1 if failed else 0)


def _differs(f: Finding) -> list[str]:
    """What differs from the configuration (nothing for files no configured slurper owns)."""
    return differences(f.have, f.want) if f.want is not None else []


def _rewrite(cfg: Config, arch: Archive, todo: list[Finding]) -> int:
    client = RRDCachedClient(cfg.rrdcached) if cfg.rrdcached else None
    failed = 0
    try:
        for f in _progress(todo, "rewriting"):
            assert f.want is not None
            spec = SeriesSpec(cast(DSType, f.want.ds_type), f.want.heartbeat, f.want.min, f.want.max)
            path = arch.path(f.metric_id)
            try:
                if client is not None:  # pending values into the old file, then rrdcached forgets it
                    name = arch.reader.names.name(f.metric_id)
                    client.flush(name)
                    client.command(f"FORGET {name}")
                migrate(path, cfg.archive.step, spec, cfg.retention(f.metric_id.partition("/")[0]))
            except (ArchiveError, RRDCachedError) as exc:
                click.echo(f"rexmon: archive: {f.metric_id}: {exc}", err=True)
                failed += 1
    finally:
        if client is not None:
            client.close()
    return failed


@archive.command("prune")
@click.option("--older-than", required=True, help="Files not written for this long (90d, 12w, 520w).")
@click.option("--yes", is_flag=True, help="Remove them (default: list them).")
@click.pass_context
def prune(ctx: click.Context, older_than: str, yes: bool) -> None:
    """List (and with --yes remove) files no metric has written for a long time."""
    cfg = load_config(ctx)
    age = _age(older_than, None)
    now = time.time()
    arch = _open(cfg)
    old: list[tuple[str, int]] = []
    try:
        for mid in _progress(arch.metric_ids(), "reading"):
            got = arch.last(mid, flush=False)
            if got is not None and got[0] < now - age:
                old.append((mid, got[0]))
        for mid, t in old:
            click.echo(f"{mid}: last written {time.strftime('%Y-%m-%d %H:%M', time.gmtime(t))} UTC")
        if yes:
            _remove(cfg, arch, [m for m, _ in old])
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        arch.close()
    verb = "removed" if yes else "would be removed (--yes removes them)"
    click.echo(f"{len(old)} file(s) {verb}", err=True)


def _remove(cfg: Config, arch: Archive, metric_ids: list[str]) -> None:
    client = RRDCachedClient(cfg.rrdcached) if cfg.rrdcached else None
    try:
        for mid in metric_ids:
            if client is not None:
                client.command(f"FORGET {arch.reader.names.name(mid)}")
            arch.path(mid).unlink(missing_ok=True)
    except (OSError, RRDCachedError) as exc:
        raise ArchiveError(f"cannot remove: {exc}") from exc
    finally:
        if client is not None:
            client.close()


def _age(text: str | None, default: float | None) -> float:
    if text is None:
        assert default is not None
        return default
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{text!r}: {exc}", EXIT_USAGE)
