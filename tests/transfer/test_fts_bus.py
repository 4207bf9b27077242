"""The FTS STOMP consumer against a real ActiveMQ: totals, acks after commit, redelivery, broker restarts."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rexmon.config import build_slurper, load
from rexmon.demo.transfer_sim import FTSPublisher, complete_message, legacy_queue_status, optimizer_message
from rexmon.service import Service
from rrd.archive import Archive
from slurpers.api import CollectContext, Slurper
from tests.fixtures.activemq import ActiveMQ
from tests.transfer.conftest import Metrics, run_once, wait_for

DATA = Path(__file__).resolve().parent.parent / "data" / "fts"
SRC, DST = "davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch"
LINK = "davs_webdav.echo.stfc.ac.uk__davs_eosatlas.cern.ch.atlas"
T0 = 1716400000.0
_names = itertools.count(1)


@pytest.fixture
def queue() -> str:
    """A destination of its own for each test: tests share one broker."""
    return f"/queue/rexmon.test.fts_monitoring.{next(_names)}"


@pytest.fixture
def fts_config(
    write_config: Callable[..., Path], activemq: ActiveMQ, queue: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Path]:
    monkeypatch.setenv("FTS_STOMP_PASSWORD", "guest")

    def _write(interval: int = 60, extra: str = "") -> Path:
        return write_config(f"""
            [[slurper]]
            id = "fts"
            type = "fts"
            interval = {interval}
            timeout = 20
            [slurper.stomp]
            host = "{activemq.host}"
            port = {activemq.port}
            user = "rexmon"
            password = {{ env = "FTS_STOMP_PASSWORD" }}
            destinations = ["{queue}"]
            backoff_max = "2s"
            {extra}
            """)

    return _write


def publish(broker: ActiveMQ, queue: str, bodies: list[str]) -> None:
    with FTSPublisher(broker.host, broker.port) as pub:
        for body in bodies:
            pub.send(queue, body)


def completions(n_ok: int, n_error: int = 0, start: float = T0) -> list[str]:
    out = []
    for i in range(n_ok + n_error):
        state = "Ok" if i < n_ok else "Error"
        out.append(complete_message(SRC, DST, "atlas", state, 1_000_000, start + i, start + i + 10))
    return out


def test_run_once_archives_totals_and_restores_them(
    fts_config: Callable[..., Path], activemq: ActiveMQ, queue: str, runner: CliRunner, metrics: Metrics
) -> None:
    config = fts_config()
    legacy = complete_message(SRC, DST, "atlas", "Ok", 500, T0, T0 + 5, legacy=True)
    channels = [
        ("CERN-DESY", [("lxbra1910.cern.ch", "ennis.desy.de", 3, 7)]),
        ("DESY-CERN", [("dublin.desy.de", "lxbra1910.cern.ch", 5, 1)]),
    ]
    bodies = [
        *completions(3, 1),
        legacy,
        optimizer_message(SRC, DST, 12, 340, 16, T0),
        legacy_queue_status("dteam", channels, T0),
        (DATA / "bad_truncated.msg").read_text(),
    ]
    publish(activemq, queue, bodies)

    assert run_once(config)["fts"].error is None
    got = metrics(config)
    assert got[f"fts/bus.link.{LINK}.ok"] == 4  # the legacy (all strings, EOT) message counts too
    assert got[f"fts/bus.link.{LINK}.error"] == 1
    assert got[f"fts/bus.link.{LINK}.bytes"] == 4_000_500
    assert got["fts/bus.queue.davs_webdav.echo.stfc.ac.uk__davs_eosatlas.cern.ch.all.ratio"] == 75.0
    # both repeated "channel" entries count, not only the last
    assert got["fts/bus.queue.lxbra1910.cern.ch__ennis.desy.de.dteam.ready"] == 7
    assert got["fts/bus.queue.dublin.desy.de__lxbra1910.cern.ch.dteam.active"] == 5
    assert (got["fts/bus.messages"], got["fts/bus.malformed"]) == (8, 1)
    assert got["rexmon/fts.errors"] == 0
    cfg = load(config)
    archive = Archive(cfg.rrd_dir, cfg.archive.step)
    assert archive.info(f"fts/bus.link.{LINK}.ok")["ds[value].type"] == "DERIVE"
    assert archive.info(f"fts/bus.link.{LINK}.bytes")["ds[value].type"] == "DERIVE"
    assert archive.info(f"fts/bus.link.{LINK}.throughput_mean")["ds[value].type"] == "GAUGE"

    publish(activemq, queue, completions(2))
    assert run_once(config)["fts"].error is None
    got = metrics(config)
    assert got[f"fts/bus.link.{LINK}.ok"] == 6  # restored from the checkpoint, acked ones not seen again
    assert got["fts/bus.messages"] == 10


def _slurper(config: Path) -> Slurper:
    slurper = build_slurper(load(config).slurpers[0])
    slurper.start()
    return slurper


def _ok(readings: object) -> float | None:
    return {r.metric: r.value for r in readings}[f"bus.link.{LINK}.ok"]  # type: ignore[attr-defined]


def test_committed_but_unacked_messages_count_once(
    fts_config: Callable[..., Path], activemq: ActiveMQ, queue: str
) -> None:
    config = fts_config()
    publish(activemq, queue, completions(3))
    # run 1: its values are never archived (say the archive failed): nothing committed, nothing acked
    first = _slurper(config)
    try:
        ctx = CollectContext(now=T0, timeout=20)
        assert _ok(first.collect(ctx)) == 3
    finally:
        first.close()
    # run 2: redelivered, counted from the old checkpoint; committed, then the process dies before acking
    second = _slurper(config)
    try:
        ctx = CollectContext(now=T0 + 60, timeout=20)
        assert _ok(second.collect(ctx)) == 3
        committed = ctx.new_state
    finally:
        second.close()
    # run 3: the broker redelivers all three; they are in the checkpoint, so they count zero times
    publish(activemq, queue, completions(1))
    third = _slurper(config)
    try:
        ctx = CollectContext(now=T0 + 120, timeout=20, state=committed or {})
        assert _ok(third.collect(ctx)) == 4
        third.on_archived(ctx)
        after = ctx.new_state
    finally:
        third.close()
    # run 4: everything was acked in run 3: nothing comes back
    fourth = _slurper(config)
    try:
        ctx = CollectContext(now=T0 + 180, timeout=20, state=after or {})
        readings = fourth.collect(ctx)
        assert _ok(readings) == 4
        assert {r.metric: r.value for r in readings}["bus.messages"] == 4
    finally:
        fourth.close()


def test_daemon_reconnects_after_broker_restart(
    fts_config: Callable[..., Path], activemq: ActiveMQ, queue: str, metrics: Metrics
) -> None:
    config = fts_config(interval=1)
    service = Service(load(config))
    service.start()
    try:
        publish(activemq, queue, completions(5, 2))
        wait_for("the first 7 completions", lambda: metrics(config).get(f"fts/bus.link.{LINK}.ok") == 5)
        activemq.stop()
        wait_for(
            "the run to fail while the broker is down", lambda: metrics(config).get("rexmon/fts.errors") == 1
        )
        activemq.start()
        publish(activemq, queue, completions(4, 1, start=T0 + 100))
        wait_for(
            "the consumer to reconnect and count", lambda: metrics(config).get(f"fts/bus.link.{LINK}.ok") == 9
        )
        wait_for("a clean run", lambda: metrics(config).get("rexmon/fts.errors") == 0)
    finally:
        service.stop()
    got = metrics(config)
    assert got[f"fts/bus.link.{LINK}.ok"] == 9
    assert got[f"fts/bus.link.{LINK}.error"] == 3
    assert got["fts/bus.messages"] == 12
    assert got["fts/bus.connected"] == 1


def test_unreachable_broker_is_a_clear_error(
    write_config: Callable[..., Path], runner: CliRunner, metrics: Metrics
) -> None:
    from tests.fixtures.rrdcached import free_port

    config = write_config(f"""
        [[slurper]]
        id = "fts"
        type = "fts"
        timeout = 3
        [slurper.stomp]
        host = "127.0.0.1"
        port = {free_port()}
        destinations = ["/queue/nowhere"]

        [[slurper]]
        id = "load"
        type = "munin"
        plugin = "/usr/share/munin/plugins/load"
        """)
    results = run_once(config)
    assert "FTS STOMP consumer: cannot connect to 127.0.0.1:" in str(results["fts"].error)
    got = metrics(config)
    assert got["rexmon/fts.errors"] == 1
    assert not [m for m in got if m.startswith("fts/")]
    assert got["rexmon/load.errors"] == 0
