"""The dead man's switch on a real database: one message per transition, whatever the number of watchers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from downtime.db import make_engine, upgrade
from rexmon.cli import cli
from rexmon.heartbeat import HeartbeatWriter, beats
from rexmon.watchdog import Watchdog, apprise_sender
from tests.fixtures.smtp import SMTPReceiver

MAX_AGE = 60.0


class Outbox:
    """A sender that keeps what it was given (the watchdog's send is a parameter, like an I/O root)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.fail_with: str | None = None

    def __call__(self, subject: str, body: str) -> str | None:
        if self.fail_with is not None:
            return self.fail_with
        self.sent.append(subject)
        return None


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = make_engine(f"sqlite:///{tmp_path / 'rexmon.db'}")
    upgrade(e)
    yield e
    e.dispose()


def watcher(engine: Engine, outbox: Outbox, name: str, lease: float = 120.0) -> Watchdog:
    return Watchdog(engine, outbox, max_age=MAX_AGE, lease=lease, watcher=name)


# each line: "<time> beat" (the collector beats at that time) or "<time> <watcher> <expected subjects>"
SCENARIOS = {
    "up at first sight is no news": ["0 beat", "10 a -"],
    "down once, then quiet": ["0 beat", "10 a -", "60 a -", "61 a PROBLEM", "80 a -", "500 a -"],
    "down then back": ["0 beat", "10 a -", "70 a PROBLEM", "100 beat", "101 a RECOVERY", "110 a -"],
    "two watchers, one message each way": [
        "0 beat", "10 a -", "10 b -", "70 b PROBLEM", "70 a -", "71 a -", "71 b -",
        "100 beat", "101 a RECOVERY", "101 b -", "102 b -",
    ],
    "already down when first watched": ["0 beat", "500 a PROBLEM", "501 b -", "600 a -"],
    "back before the news went out: no news": ["0 beat", "70 a FAIL", "80 beat", "81 b -", "82 a -"],
    "flapping heartbeat: every transition once": [
        "0 beat", "70 a PROBLEM", "80 beat", "81 b RECOVERY", "150 b PROBLEM", "151 a -",
    ],
}  # fmt: skip


@pytest.mark.parametrize("lines", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_transitions(engine: Engine, lines: list[str]) -> None:
    outbox = Outbox()
    dogs = {n: watcher(engine, outbox, n) for n in ("a", "b")}
    hb = HeartbeatWriter(engine, "all", "1.0", 0.0)
    for line in lines:
        t, who, *expect = line.split()
        if who == "beat":
            hb.beat(float(t), 0.1)
            continue
        before = len(outbox.sent)
        outbox.fail_with = "refused" if expect == ["FAIL"] else None
        dogs[who].check(float(t))
        if expect == ["FAIL"]:
            continue
        new = [s.split(":")[0].removeprefix("[rexmon] ") for s in outbox.sent[before:]]
        assert new == ([] if expect == ["-"] else expect), line


def test_failed_delivery_is_retried_by_its_claimer_then_taken_over_after_the_lease(engine: Engine) -> None:
    outbox = Outbox()
    a, b = watcher(engine, outbox, "a", lease=100), watcher(engine, outbox, "b", lease=100)
    HeartbeatWriter(engine, "all", "1.0", 0.0).beat(0.0, None)
    a.check(10)
    outbox.fail_with = "smtp refused"
    report = a.check(70)  # a wins the transition but cannot deliver
    assert report.errors and "smtp refused" in report.errors[0]
    assert b.check(80).sent == []  # b sees a's claim: not yet b's to send
    outbox.fail_with = None
    assert [s.split(":")[0] for s in a.check(90).sent] == ["[rexmon] PROBLEM"]  # a retries its own
    assert b.check(400).sent == [] and len(outbox.sent) == 1
    # a claim whose watcher died before sending is taken over once the lease has passed
    HeartbeatWriter(engine, "all", "1.0", 0.0).beat(500.0, None)
    outbox.fail_with = "down"
    a.check(501)
    outbox.fail_with = None
    assert b.check(550).sent == []
    HeartbeatWriter(engine, "all", "1.0", 0.0).beat(590.0, None)
    assert [s.split(":")[0] for s in b.check(602).sent] == ["[rexmon] RECOVERY"]
    assert a.check(603).sent == []


def test_message_names_collector_host_and_age(engine: Engine) -> None:
    got: list[tuple[str, str]] = []

    def keep(subject: str, body: str) -> None:
        got.append((subject, body))

    dog = Watchdog(engine, keep, max_age=MAX_AGE, watcher="a")
    HeartbeatWriter(engine, "2/3", "9.9", 0.0).beat(1000.0, 0.5)
    dog.check(1000 + 3 * 60 + 5)
    subject, body = got[0]
    assert subject == "[rexmon] PROBLEM: collector 2/3 stopped: no heartbeat for 3 min 5 s"
    row = beats(engine)[0]
    assert f"on {row.host} (pid {row.pid}, rexmon 9.9)" in body
    assert "1970-01-01 00:16:40 UTC" in body and "allowed: 60 s" in body


def test_watchdog_command_mails_the_watchdog_targets_once(
    write_config: object, smtp_server: SMTPReceiver, tmp_path: Path, runner: CliRunner
) -> None:
    other = SMTPReceiver()
    other.start()
    try:
        cfg = write_config(  # type: ignore[operator]
            f"""
            [watchdog]
            max_age = "1m"

            [[notify]]
            name = "ops"
            url = "{smtp_server.url()}"
            tags = ["watchdog"]

            [[notify]]
            name = "alarms-only"
            url = "{other.url()}"
            """
        )
        e = make_engine(f"sqlite:///{tmp_path / 'rexmon.db'}")
        upgrade(e)
        HeartbeatWriter(e, "all", "1.0", 0.0).beat(1000.0, 0.2)  # long ago
        e.dispose()
        first = runner.invoke(cli, ["--config", str(cfg), "watchdog"])
        assert first.exit_code == 1, first.output
        assert "all: DOWN (heartbeat" in first.output and "sent: [rexmon] PROBLEM" in first.output
        second = runner.invoke(cli, ["--config", str(cfg), "watchdog"])
        assert second.exit_code == 1 and "sent:" not in second.output
        subjects = [m["Subject"] for m in smtp_server.messages]
        assert len(subjects) == 1 and subjects[0].startswith("[rexmon] PROBLEM: collector all stopped")
        assert other.messages == []  # not tagged watchdog
    finally:
        other.stop()


def test_watchdog_command_with_no_heartbeat_yet(write_config: object, runner: CliRunner) -> None:
    cfg = write_config("")  # type: ignore[operator]
    result = runner.invoke(cli, ["--config", str(cfg), "watchdog"])
    assert result.exit_code == 0
    assert "no collector has recorded a heartbeat yet" in result.output


def test_the_dead_man_service_is_hit_once_per_interval_across_watchers_while_collectors_are_fresh(
    engine: Engine,
) -> None:
    hits, news = Outbox(), Outbox()
    a, b = (
        Watchdog(engine, news, max_age=MAX_AGE, deadman=hits, deadman_interval=300, watcher=n) for n in "ab"
    )
    hb = HeartbeatWriter(engine, "all", "1.0", 0.0)
    hb.beat(0.0, None)
    assert a.check(10).sent == ["dead-man service"]
    assert b.check(11).sent == []
    hb.beat(290.0, None)
    assert a.check(300).sent == [] and b.check(309).sent == []
    assert b.check(311).sent == ["dead-man service"] and a.check(312).sent == []
    # a stopped collector stops the hits: the dead-man service notices rexmon's silence
    assert [s.split(":")[0] for s in a.check(700).sent] == ["[rexmon] PROBLEM"]
    assert b.check(1000).sent == [] and len(hits.sent) == 2


def test_no_dead_man_hit_before_any_collector_beats(engine: Engine) -> None:
    hits = Outbox()
    dog = Watchdog(engine, Outbox(), max_age=MAX_AGE, deadman=hits, watcher="a")
    assert dog.check(10).sent == [] and hits.sent == []


def test_with_no_watchdog_target_a_stop_is_logged_once(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    dog = Watchdog(engine, apprise_sender([]), max_age=MAX_AGE, watcher="a")
    HeartbeatWriter(engine, "all", "1.0", 0.0).beat(0.0, None)
    dog.check(10)
    with caplog.at_level("WARNING", logger="rexmon.watchdog"):
        assert dog.check(100).errors == [] and dog.check(200).errors == []
    logged = [r.getMessage() for r in caplog.records if "only logged" in r.getMessage()]
    assert len(logged) == 1 and "PROBLEM: collector all stopped" in logged[0]


def test_watchdog_forget_drops_a_collector_gone_for_good(
    write_config: Callable[..., Path], tmp_path: Path, runner: CliRunner
) -> None:
    cfg = write_config("")
    e = make_engine(f"sqlite:///{tmp_path / 'rexmon.db'}")
    upgrade(e)
    HeartbeatWriter(e, "1/2", "1.0", 0.0).beat(time.time(), 0.2)
    HeartbeatWriter(e, "2/2", "1.0", 0.0).beat(1000.0, 0.2)  # the shard that is no longer run
    e.dispose()
    assert runner.invoke(cli, ["--config", str(cfg), "watchdog"]).exit_code == 1
    unknown = runner.invoke(cli, ["--config", str(cfg), "watchdog", "--forget", "3/2"])
    assert (
        unknown.exit_code == 2
        and "no collector '3/2' has recorded a heartbeat (known: 1/2, 2/2)" in unknown.output
    )
    forgot = runner.invoke(cli, ["--config", str(cfg), "watchdog", "--forget", "2/2"])
    assert forgot.exit_code == 0, forgot.output
    assert forgot.output.splitlines()[0] == "forgot collector 2/2" and "1/2: up" in forgot.output
    assert "2/2" not in forgot.output.split("\n", 1)[1]
