"""`rexmon downtime` and `rexmon db` against SQLite and PostgreSQL, as an operator types them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rexmon.cli import cli
from rrd.archive import Archive, SeriesSpec, Update

REXMON = str(Path(sys.executable).with_name("rexmon"))


@pytest.fixture
def cfg(write_config, db_url: str, tmp_path: Path) -> Path:
    Archive(tmp_path / "rrd", 60).write(
        [
            Update(m, 1_780_000_000, 1.0, SeriesSpec())
            for m in ("condor/jobs.idle", "condor/jobs.running", "slurm/x")
        ]
    )
    return write_config(f'[database]\nurl = "{db_url}"\n')  # type: ignore[no-any-return]


def run(runner, cfg: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["--config", str(cfg), "downtime", *args])


def test_add_list_show_extend_end_and_ical(runner, cfg: Path) -> None:
    r = run(runner, cfg, "add", "--scope", "condor/*", "--start", "now", "--duration", "2h",
            "--reason", "kernel update", "--author", "alice", "--ticket", "https://tickets/7")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.output.startswith("downtime 1 filed: ") and "2 metric(s) matched now" in r.output
    listed = json.loads(run(runner, cfg, "list", "--active", "--json").output)
    assert [(d["id"], d["scope"], d["author"], d["status"]) for d in listed] == [
        (1, ["condor/*"], "alice", "active")
    ]
    assert run(runner, cfg, "extend", "1", "--end", "+5h", "--author", "bob").exit_code == 0
    assert run(runner, cfg, "end", "1", "--author", "carol").exit_code == 0
    shown = json.loads(run(runner, cfg, "show", "1", "--json").output)
    assert [(a["action"], a["author"]) for a in shown["audit"]] == [
        ("create", "alice"), ("extend", "bob"), ("end", "carol")
    ]  # fmt: skip
    assert shown["status"] == "past"
    assert json.loads(run(runner, cfg, "list", "--past", "--json").output)[0]["id"] == 1
    ical = run(runner, cfg, "ical").output
    assert "BEGIN:VCALENDAR" in ical and "UID:rexmon-downtime-1@rexmon" in ical and "kernel update" in ical


def test_dry_run_shows_matches_and_saves_nothing(runner, cfg: Path) -> None:
    r = run(runner, cfg, "add", "--scope", "condor/*", "--duration", "1h", "--reason", "x", "--dry-run")
    assert r.exit_code == 0
    assert "scope matches 2 of 3 metric(s):" in r.output
    assert "  condor/jobs.idle\n" in r.output and "slurm/x" not in r.output
    assert json.loads(run(runner, cfg, "list", "--json").output) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "*", "--duration", "1h"], "matches every metric: add --yes"),
        (
            ["--scope", "a/*", "--start", "2026-02-30", "--duration", "1h"],
            "--start: '2026-02-30' is not a time",
        ),
        (["--scope", "a/*", "--end", "-1h"], "end must be after start"),
        (["--scope", "a/*", "--duration", "soon"], "--duration: not a duration: 'soon'"),
        (["--scope", "a/*", "--duration", "1h", "--end", "+2h"], "exactly one of --end and --duration"),
        (["--scope", "a/*", "--duration", "1h", "--rrule", "SOMETIMES"], "rrule 'SOMETIMES' is not valid"),
    ],
)
def test_bad_input_is_one_clear_line_exit_2_and_nothing_stored(runner, cfg: Path, args, message) -> None:
    r = run(runner, cfg, "add", "--reason", "x", *args)
    assert r.exit_code == 2
    assert message in r.output
    assert json.loads(run(runner, cfg, "list", "--json").output) == []


def test_star_scope_with_yes_is_accepted(runner, cfg: Path) -> None:
    r = run(runner, cfg, "add", "--scope", "*", "--duration", "1h", "--reason", "site power cut", "--yes")
    assert r.exit_code == 0 and "3 metric(s) matched now" in r.output


@pytest.mark.parametrize("cmd", [["show", "99"], ["end", "99"], ["extend", "99", "--end", "+1h"],
                                 ["cancel", "99", "--reason", "x"]])  # fmt: skip
def test_unknown_id(runner, cfg: Path, cmd: list[str]) -> None:
    r = run(runner, cfg, *cmd)
    assert r.exit_code == 2 and "no downtime with id 99" in r.output


def test_concurrent_adds_from_two_processes_are_both_kept(cfg: Path, runner) -> None:
    procs = [
        subprocess.Popen(
            [
                REXMON,
                "--config",
                str(cfg),
                "downtime",
                "add",
                "--scope",
                f"condor/{i}*",
                "--duration",
                "1h",
                "--reason",
                f"parallel {i}",
                "--author",
                "ops",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    reasons = sorted(d["reason"] for d in json.loads(run(runner, cfg, "list", "--json").output))
    assert reasons == ["parallel 0", "parallel 1"]


def test_db_upgrade_and_current(runner, cfg: Path) -> None:
    r = runner.invoke(cli, ["--config", str(cfg), "db", "upgrade"])
    assert r.exit_code == 0 and "at revision" in r.output
    head = r.output.strip().rsplit(" ", 1)[1]
    assert runner.invoke(cli, ["--config", str(cfg), "db", "current"]).output.strip() == head


@pytest.mark.parametrize("scope", ["*", "*/*", "?*", "*/**", "**"])
def test_every_match_everything_scope_needs_yes(runner, cfg: Path, scope: str) -> None:
    r = run(runner, cfg, "add", "--scope", scope, "--duration", "1h", "--reason", "x")
    assert r.exit_code == 2 and "matches every metric" in r.output
