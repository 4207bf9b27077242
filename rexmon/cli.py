"""The ``rexmon`` command. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error."""

from __future__ import annotations

import importlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import click

from rexmon import __version__
from rexmon.config import Config, ConfigError, build_slurper, config_path, load, parse_shard

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# Sub-command groups that live in their own modules ("module:attribute").
SUBCOMMANDS = [
    "rexmon.cli_downtime:downtime",
    "rexmon.cli_alarms:alarms",
    "rexmon.cli_db:db",
    "rexmon.cli_web:web",
    "rexmon.cli_demo:demo",
    "rexmon.cli_watchdog:watchdog",
    "rexmon.cli_archive:archive",
]


def fail(message: str, code: int = EXIT_FAIL) -> NoReturn:
    click.echo(f"rexmon: {message}", err=True)
    sys.exit(code)


def load_config(ctx: click.Context) -> Config:
    obj = ctx.ensure_object(dict)
    if "config" not in obj:
        try:
            obj["config"] = load(obj.get("config_path"))
        except ConfigError as exc:
            for line in exc.errors:
                click.echo(f"rexmon: config: {line}", err=True)
            sys.exit(EXIT_USAGE)
    cfg: Config = obj["config"]
    return cfg


pass_config = click.make_pass_decorator(dict, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $REXMON_CONFIG, else etc/rexmon.toml); conf.d/*.toml beside it is merged.",
)
@click.version_option(__version__, prog_name="rexmon", message="%(prog)s %(version)s")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    show_default=True,
)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, log_level: str) -> None:
    """rexmon: slurpers, one RRD archive, downtime-aware alarms and graphs."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.ensure_object(dict)["config_path"] = str(config_path(config_file))


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration and print every error (exit 2 on any)."""
    path = ctx.obj["config_path"]
    try:
        cfg = load(path)
    except ConfigError as exc:
        for line in exc.errors:
            click.echo(line)
        click.echo(f"{len(exc.errors)} error(s)", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(
        f"{cfg.path}: ok ({len(cfg.files)} file(s), {len(cfg.slurpers)} slurper(s), "
        f"{len(cfg.alarms)} alarm rule(s), {len(cfg.notify)} notify target(s))"
    )


def _alarm_sink(cfg: Config) -> Any:
    """The alarm side (wired here and nowhere else)."""
    from alarms.pipeline import build
    from rexmon.selfmetrics import NotifyCounts

    return build(cfg, NotifyCounts())


def _check_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        try:
            parse_shard(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@cli.command()
@click.option("--once", is_flag=True, help="Run every slurper once, archive, evaluate alarms, exit.")
@click.option("--shard", callback=_check_shard, help="Run only shard I of N (I/N), overriding [scheduler].")
@click.pass_context
def run(ctx: click.Context, once: bool, shard: str | None) -> None:
    """Run the collector (scheduler -> slurpers -> archive -> alarms)."""
    from rexmon.memory import cap_arenas
    from rexmon.service import Service

    cap_arenas()  # before the threads: RSS that follows what the collector holds (rexmon/memory.py)
    cfg = load_config(ctx)
    try:
        # the alarm side is built by its own thread: the collector archives while the database is away
        service = Service(cfg, shard=shard, alarms=lambda: _alarm_sink(cfg))
    except Exception as exc:
        fail(f"cannot start: {exc}")
    if once:
        results = service.run_once()
        failed = [r for r in results if r.error]
        for r in sorted(results, key=lambda r: r.slurper_id):
            status = f"FAILED: {r.error}" if r.error else f"{len(r.updates)} value(s)"
            click.echo(f"{r.slurper_id}: {status} ({r.duration:.2f} s)")
        errs = service.totals.errors
        for mid, msg in errs:
            click.echo(f"archive: {mid}: {msg}", err=True)
        if service.alarm_failures:
            click.echo("alarms: could not be evaluated or delivered (see the log); the values are archived",
                       err=True)  # fmt: skip
        sys.exit(EXIT_FAIL if failed or errs or service.alarm_failures else EXIT_OK)
    from rexmon.health import serve_collector

    try:
        endpoints = serve_collector(cfg, shard)  # /metrics, /healthz, /readyz on [scheduler] metrics_listen
    except (OSError, click.BadParameter) as exc:
        fail(f"cannot serve [scheduler] metrics_listen = {cfg.scheduler.metrics_listen!r}: {exc}")
    try:
        _serve_until_signal(service.start, service.stop)
    finally:
        if endpoints is not None:
            endpoints.stop()


def _serve_until_signal(start: Callable[[], None], stop: Callable[[], None]) -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    start()
    try:
        while not done.wait(1.0):
            pass
    finally:
        stop()


@cli.command()
@click.argument("slurper_id")
@click.option("--dry-run", is_flag=True, help="Print the readings; archive nothing.")
@click.pass_context
def slurp(ctx: click.Context, slurper_id: str, dry_run: bool) -> None:
    """Run one slurper once and print its readings."""
    from rexmon.runner import Runner
    from rexmon.service import Service

    cfg = load_config(ctx)
    matches = [s for s in cfg.slurpers if s.id == slurper_id]
    if not matches:
        known = ", ".join(s.id for s in cfg.slurpers) or "none"
        fail(f"no slurper with id {slurper_id!r} (configured: {known})", EXIT_USAGE)
    slurper = build_slurper(matches[0], cfg.registry)
    if dry_run:
        runner = Runner(cfg, [slurper], dry_run=True)
        slurper.start()
        try:
            result = runner.run(slurper)
        finally:
            slurper.close()
    else:
        result = Service(cfg, slurpers=[slurper], alarms=_alarm_sink(cfg)).run_once()[0]
    for u in result.updates:
        value = "U" if u.value is None else f"{u.value:g}"
        click.echo(f"{u.metric_id}\t{value}\t{u.time}")
    if result.error:
        fail(result.error)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {id, value, time}.")
@click.argument("pattern", required=False)
@click.pass_context
def metrics(ctx: click.Context, as_json: bool, pattern: str | None) -> None:
    """Every metric in the archive with its last value and time."""
    import fnmatch

    from rrd.archive import Archive, ArchiveError

    cfg = load_config(ctx)
    archive = Archive(cfg.rrd_dir, cfg.archive.step, cfg.rrdcached)
    try:
        ids = [m for m in archive.metric_ids() if pattern is None or fnmatch.fnmatchcase(m, pattern)]
        last = archive.last_many(ids)
    except (ArchiveError, OSError) as exc:
        fail(str(exc))
    finally:
        archive.close()
    if as_json:
        rows = [{"id": m, "value": last[m][1], "time": last[m][0]} for m in ids if m in last]
        click.echo(json.dumps(rows, indent=1))
        return
    for m in ids:
        if m in last:
            t, v = last[m]
            value = "U" if v is None else f"{v:g}"
            click.echo(f"{m}\t{value}\t{time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(t))}")


def _register_subcommands() -> None:
    for spec in SUBCOMMANDS:
        module_name, _, attr = spec.partition(":")
        cli.add_command(getattr(importlib.import_module(module_name), attr))


_register_subcommands()


def main() -> None:
    cli(prog_name="rexmon")
