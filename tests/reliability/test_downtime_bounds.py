"""Downtimes that never move on, never occur or lie outside 1980..9999, and a bad TZ.

Each is refused with one clear line at every entry point, and harmless to every reader when a row is
already in the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from downtime.db import make_engine, upgrade
from rexmon.cli import cli
from rexmon.config import load
from tests.reliability.helpers import munin_plugin

REXMON = str(Path(sys.executable).with_name("rexmon"))
#: generous bounds for a reader that must answer at all (a hang is what is tested, not speed)
BOUND = 120
GOOD = '[ "$1" = config ] && { echo "x.label x"; exit 0; }\necho "x.value 42"\n'
RULES = {
    "INTERVAL=0": ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number"),
    "never occurs": ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "has no occurrence"),
    "every second": ("FREQ=SECONDLY", "FREQ must be one of"),
    "part twice": ("FREQ=DAILY;interval=1;INTERVAL=00", "INTERVAL is given twice"),
}


def _cfg(tmp_path: Path, write_config: Callable[..., Path]) -> Path:
    plugin = munin_plugin(tmp_path / "plugins.d", "good", GOOD)
    return write_config(f'[[slurper]]\nid = "good"\ntype = "munin"\nplugin = "{plugin}"\n')


def _listed(runner: CliRunner, cfg: Path) -> list[dict[str, object]]:
    r = runner.invoke(cli, ["--config", str(cfg), "downtime", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows: list[dict[str, object]] = json.loads(r.stdout)
    return rows


@pytest.mark.parametrize("case", list(RULES))
def test_cli_refuses_rules_that_hang_readers(
    case: str, tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """`rexmon downtime add --rrule` with INTERVAL=0, a rule that never occurs, FREQ=SECONDLY or a part given twice: exit 2 naming the rule and why, nothing stored."""  # noqa: E501
    rule, message = RULES[case]
    cfg = _cfg(tmp_path, write_config)
    args = ["--scope", "good/*", "--duration", "1h", "--reason", "x", "--rrule", rule]
    r = runner.invoke(cli, ["--config", str(cfg), "downtime", "add", *args])
    assert r.exit_code == 2, r.output
    assert f"rrule {rule!r}" in r.output and message in r.output
    assert _listed(runner, cfg) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--end", "+99999999h"], "--end: '+99999999h' is out of range"),
        (["--start", "99999999999999", "--duration", "1h"], "--start: '99999999999999' is out of range"),
        (["--start", "1970-01-02", "--end", "now"], "--start: '1970-01-02' is out of range"),
    ],
    ids=["end +99999999h", "start epoch 99999999999999", "start 1970-01-02"],
)
def test_cli_refuses_times_out_of_range(
    args: list[str], message: str, tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """`rexmon downtime add` with times past 9999 or before 1980: exit 2 naming the option, nothing stored."""
    cfg = _cfg(tmp_path, write_config)
    r = runner.invoke(
        cli, ["--config", str(cfg), "downtime", "add", "--scope", "good/*", "--reason", "x", *args]
    )
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert _listed(runner, cfg) == []


@pytest.mark.parametrize(
    "command",
    [
        ["downtime", "list"],
        ["downtime", "show", "1"],
        ["downtime", "add", "--scope", "good/*", "--duration", "1h", "--reason", "x"],
        ["downtime", "extend", "1", "--end", "+2h"],
        ["alarms", "replay", "--start", "2026-01-01 08:00"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
@pytest.mark.parametrize("tz", ["Mars/Olympus", "/etc/passwd"])
def test_bad_tz_is_one_line_not_a_traceback(
    command: list[str], tz: str, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    """A TZ that names no zone (Mars/Olympus, a file that is not one) under the CLI: exit 2 and one line naming TZ, no traceback."""  # noqa: E501
    cfg = _cfg(tmp_path, write_config)
    upgrade(load(cfg).database_url)
    r = subprocess.run(
        [REXMON, "--config", str(cfg), *command],
        env={**os.environ, "TZ": tz},
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"TZ={tz!r} is not a time zone" in r.stderr


#: rows as the CLI stored them before these checks (or as written by hand): rule, start, end, tz
STORED = {
    "INTERVAL=0": ("FREQ=DAILY;INTERVAL=0", 0, 3600, "UTC"),
    "never occurs": ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", 0, 3600, "UTC"),
    "hourly never": ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", 0, 3600, "Europe/Zurich"),
    "past 9999": (None, 0, 1e20, "UTC"),
    "before 1980": (None, -1.7e9, 3600, "UTC"),
    "bad zone": ("FREQ=DAILY", 0, 3600, "Mars/Olympus"),
}


def _store_rows(url: str, now: float) -> None:
    """The bad rows and one good downtime, written as a pre-check CLI would have (plain SQL)."""
    engine = make_engine(url)
    upgrade(engine)
    rows = [(rule, now + a, now + b, tz) for rule, a, b, tz in STORED.values()]
    rows.append(("", now - 60, now + 3600, "/etc/localtime"))  # one-off: an empty rule, $TZ as a path
    with engine.begin() as conn:
        for i, (rule, start, end, tz) in enumerate(rows, 1):
            conn.execute(
                text(
                    'INSERT INTO downtime (id, start, "end", kind, severity, author, reason, ticket, rrule, '
                    "tz, status, cancel_reason, created, updated) VALUES (:id, :start, :end, 'planned', "
                    "'outage', 'ops', :reason, '', :rrule, :tz, 'active', '', :now, :now)"
                ),
                {
                    "id": i,
                    "start": start,
                    "end": end,
                    "reason": f"row {i}",
                    "rrule": rule,
                    "tz": tz,
                    "now": now,
                },
            )
            conn.execute(
                text("INSERT INTO downtime_scope (downtime_id, pattern) VALUES (:id, 'good/*')"), {"id": i}
            )
    engine.dispose()


def test_bad_rows_already_stored_cannot_hang_or_crash_readers(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    """Rows stored before the checks (INTERVAL=0, rules that never occur, times past 9999 or before 1980, an unknown zone) next to a good downtime: `downtime list`, `rexmon run --once` (the alarm side reads the windows), the downtime pages, the API and the iCal feed answer; each bad row shows as invalid with why and covers nothing, the good one still silences."""  # noqa: E501
    cfg = _cfg(tmp_path, write_config)
    config = load(cfg)
    now = time.time()
    _store_rows(config.database_url, now)
    listed = subprocess.run(
        [REXMON, "--config", str(cfg), "downtime", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert listed.returncode == 0, listed.stderr
    rows = {d["reason"]: d for d in json.loads(listed.stdout)}
    good = f"row {len(STORED) + 1}"
    assert rows[good]["status"] == "active" and rows[good]["problem"] is None
    for i, case in enumerate(STORED, 1):
        assert rows[f"row {i}"]["status"] == "invalid", case
        assert rows[f"row {i}"]["problem"], case
    text_list = subprocess.run(
        [REXMON, "--config", str(cfg), "downtime", "list"], capture_output=True, text=True, timeout=BOUND
    )
    assert text_list.returncode == 0 and "out of range" in text_list.stdout, text_list.stderr
    ical = subprocess.run(
        [REXMON, "--config", str(cfg), "downtime", "ical"], capture_output=True, text=True, timeout=BOUND
    )
    assert ical.returncode == 0, ical.stderr
    assert ical.stdout.count("BEGIN:VEVENT") == 1 and good in ical.stdout  # invalid rows cover nothing
    run = subprocess.run(
        [REXMON, "--config", str(cfg), "run", "--once"], capture_output=True, text=True, timeout=BOUND
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (
        "downtime 1 is ignored (it covers nothing): rrule 'FREQ=DAILY;INTERVAL=0' is not valid" in run.stderr
    )
    _web_readers(config, now, good)


def _web_readers(config: object, now: float, good: str) -> None:
    from alarms.pipeline import Downtimes
    from tests.web.conftest import basic
    from web import create_app

    app = create_app(config, clock=lambda: now)  # type: ignore[arg-type]
    client = app.test_client()
    for url in ("/downtimes?which=all", "/downtimes?which=active", "/downtimes.ics", "/downtimes/1"):
        assert client.get(url, headers=basic()).status_code == 200, url
    api = client.get("/api/downtimes?which=all", headers=basic())
    assert api.status_code == 200
    phases = {d["reason"]: (d["phase"], d["problem"]) for d in api.get_json()}
    assert phases[good] == ("active", None)
    assert {phases[f"row {i}"][0] for i in range(1, len(STORED) + 1)} == {"invalid"}
    assert "INTERVAL must be a whole number" in phases["row 1"][1]
    page = client.get("/downtimes/1", headers=basic()).get_data(as_text=True)
    assert "covers nothing because" in page and "INTERVAL must be a whole number" in page
    covering = Downtimes(make_engine(config.database_url)).at(now).covering("good/x", now)  # type: ignore[attr-defined]
    assert [w.reason for w in covering] == [good]
