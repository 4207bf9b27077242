"""ftsmon and Netbeam end to end against the loopback simulator: backfill, restarts, bad sources."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rexmon.config import load
from rexmon.demo.transfer_sim import FTS_LINKS, INTERFACES, Fault, TransferSim, ftsmon_items, netbeam_value
from rrd.archive import Archive
from tests.fixtures.rrdcached import free_port
from tests.transfer.conftest import Metrics, run_once

NOW = 1716400800.0  # a whole minute
LAG = 15 * 60
MIB = 1024 * 1024


@pytest.fixture
def sim() -> Iterator[TransferSim]:
    server = TransferSim(clock=lambda: NOW, netbeam_step=60).start()
    yield server
    server.stop()


def netbeam_config(
    sim: TransferSim, series: str = '["traffic"]', extra: str = "", timeout: int = 20, backfill: str = "2d"
) -> str:
    interfaces = ", ".join(f'"{i}"' for i in INTERFACES)
    return f"""
        [[slurper]]
        id = "nb"
        type = "netbeam"
        timeout = {timeout}
        base_url = "{sim.netbeam_url}"
        interfaces = [{interfaces}]
        series = {series}
        backfill = "{backfill}"
        chunk = "6h"
        lag = "15m"
        {extra}
        """


def windows(sim: TransferSim) -> dict[tuple[str, str], list[tuple[int, int]]]:
    out: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for req in sim.requests:
        resource, _, series = req.path.removeprefix("/api/network/esnet/prod/").rpartition("/")
        out[(resource, series)].append((int(req.query["begin"]), int(req.query["end"])))
    return out


def test_netbeam_backfill_in_chunks_across_restarts(
    sim: TransferSim, write_config: Callable[..., Path], metrics: Metrics
) -> None:
    config = write_config(netbeam_config(sim, '["traffic", "errors"]', "max_windows = 3"))
    for _ in range(4):  # a new Service each time: a restarted collector, with only the checkpoint
        assert run_once(config, NOW)["nb"].error is None
    begin, end = int((NOW - LAG - 2 * 86400) * 1000), int((NOW - LAG) * 1000)
    got = windows(sim)
    assert set(got) == {(i, s) for i in INTERFACES for s in ("traffic", "errors")}
    for key, spans in got.items():
        assert len(spans) == 8, key  # 2 days in 6 h windows, 3 per run: no window asked twice
        assert spans[0][0] == begin and spans[-1][1] == end
        assert all(b - a <= 6 * 3600 * 1000 for a, b in spans)
        assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1)), "gap or overlap"
    # the resource is used as given: %2F stays %2F, never %252F
    assert any("xe-0%2F1%2F0" in r.path for r in sim.requests)

    cfg = load(config)
    archive = Archive(cfg.rrd_dir, cfg.archive.step)
    for resource, name in [
        (INTERFACES[0], "albq-asw1.interfaces.ae10"),
        (INTERFACES[1], "chic-cr55.interfaces.xe-0_1_0"),
    ]:
        for column in ("in", "out"):
            series = archive.fetch(f"nb/{name}.traffic.{column}", begin // 1000 - 60, end // 1000)
            # Series.points() labels each row by the end of its interval, like `rrdtool fetch`
            stored = {t: v for t, v in series.points() if v is not None}
            served = {
                t: netbeam_value(resource, "traffic", column, t)
                for t in range(begin // 1000, end // 1000, 60)
            }
            assert stored == pytest.approx(served), (name, column)
    assert metrics(config)["rexmon/nb.errors"] == 0


def test_netbeam_no_data_is_no_update_and_nulls_are_skipped(
    sim: TransferSim, write_config: Callable[..., Path], metrics: Metrics
) -> None:
    sim.netbeam_nulls = 7
    sim.faults.append(Fault("/api/network/esnet/prod/devices/chic-cr55", status=404))
    config = write_config(netbeam_config(sim, backfill="1h"))
    result = run_once(config, NOW)["nb"]
    assert result.error is None
    got = metrics(config)
    assert not [m for m in got if m.startswith("nb/chic-cr55")]  # 404: nothing, not zeros
    nulls = [u for u in result.updates if u.metric_id.endswith(".out") and int(u.time // 60) % 7 == 0]
    assert nulls == []
    assert len([u for u in result.updates if u.metric_id.endswith(".in")]) == 60


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault("/api", body="<html><title>502 Bad Gateway</title></html>"),
            "netbeam devices/albq-asw1/interfaces/ae10/traffic: not JSON",
        ),
        (Fault("/api", status=500, body="Internal Server Error"), "returned HTTP 500: Internal Server Error"),
        (Fault("/api", delay=3.0), "timed out"),
    ],
)
def test_netbeam_bad_source_archives_nothing_and_keeps_checkpoint(
    sim: TransferSim, write_config: Callable[..., Path], metrics: Metrics, fault: Fault, message: str
) -> None:
    config = write_config(netbeam_config(sim, backfill="1h", timeout=2 if fault.delay else 20))
    assert run_once(config, NOW)["nb"].error is None
    before = {m: v for m, v in metrics(config).items() if m.startswith("nb/")}
    sim.faults.append(fault)
    sim.clock = lambda: NOW + 600
    assert message in str(run_once(config, NOW + 600)["nb"].error)
    got = metrics(config)
    assert got["rexmon/nb.errors"] == 1
    assert {m: v for m, v in got.items() if m.startswith("nb/")} == before  # nothing bogus archived
    sim.faults.clear()
    sim.requests.clear()
    sim.clock = lambda: NOW + 1200
    assert run_once(config, NOW + 1200)["nb"].error is None
    # the window that failed is fetched again from the committed checkpoint: no gap
    assert sim.requests[0].query["begin"] == str(int((NOW - LAG) * 1000))
    assert metrics(config)["rexmon/nb.errors"] == 0


def fts_config(url: str, timeout: int = 20) -> str:
    return f"""
        [[slurper]]
        id = "fts"
        type = "fts"
        timeout = {timeout}
        ftsmon_url = "{url}"
        time_window = "1h"
        """


def test_ftsmon_links_vo_totals_and_throughput(
    sim: TransferSim, write_config: Callable[..., Path], metrics: Metrics
) -> None:
    config = write_config(fts_config(sim.ftsmon_url))
    assert run_once(config, NOW)["fts"].error is None
    got = metrics(config)
    items = ftsmon_items(NOW)
    for src, dst, vo, _ in FTS_LINKS:
        item = next(i for i in items if (i["source_se"], i["dest_se"]) == (src, dst))
        base = f"fts/ftsmon.link.{src.replace('://', '_')}__{dst.replace('://', '_')}.{vo}"
        for key in ("submitted", "active", "finished", "failed"):
            assert got[f"{base}.{key}"] == item.get(key, 0), (base, key)
        assert got[f"{base}.throughput"] == pytest.approx(item["current"] * MIB)
    failing = "fts/ftsmon.link.davs_eosatlas.cern.ch__srm_srm.failing.example.org.atlas.success_rate"
    assert got[failing] < 50
    atlas = [i for i in items if i["vo_name"] == "atlas"]
    assert got["fts/ftsmon.vo.atlas.throughput"] == pytest.approx(sum(i["current"] for i in atlas) * MIB)
    assert got["fts/ftsmon.vo.atlas.finished"] == sum(i.get("finished", 0) for i in atlas)
    assert got["fts/ftsmon.stats.lasthour.total"] > 0
    overview = next(r for r in sim.requests if r.path.endswith("/overview"))
    assert overview.query == {"page": "all", "time_window": "1"}


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (None, "cannot reach ftsmon at http://127.0.0.1:"),
        (
            Fault("/fts3/ftsmon/overview", body="<!DOCTYPE html><html>login</html>"),
            "ftsmon overview: not JSON",
        ),
        (
            Fault("/fts3/ftsmon/stats", body='{"lasthour": {"active": "lots"}}'),
            "lasthour.active: expected a number",
        ),
        (Fault("/fts3/ftsmon/overview", status=403, body="Forbidden"), "returned HTTP 403: Forbidden"),
        (Fault("/fts3/ftsmon/overview", delay=3.0), "timed out after 1 s"),
    ],
)
def test_ftsmon_bad_source_is_isolated(
    sim: TransferSim, write_config: Callable[..., Path], metrics: Metrics, fault: Fault | None, message: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}/fts3/ftsmon" if fault is None else sim.ftsmon_url
    if fault is not None:
        sim.faults.append(fault)
    config = write_config(fts_config(url, timeout=1) + netbeam_config(sim, backfill="1h"))
    results = run_once(config, NOW)
    assert message in str(results["fts"].error)
    got = metrics(config)
    assert got["rexmon/fts.errors"] == 1
    assert not [m for m in got if m.startswith("fts/")]
    assert got["rexmon/nb.errors"] == 0
    assert any(m.startswith("nb/albq-asw1") for m in got)
