"""RRD lifecycle: files retuned to a changed interval or bounds, the retention plan, check/migrate/prune."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import rrdtool

from rrd.archive import Archive, SeriesSpec, Update
from rrd.retention import DEFAULT, RetentionError, parse_retention
from tests.fixtures.rrdcached import RRDCached, start_rrdcached

T0 = 1_700_000_000 // 3600 * 3600


@pytest.fixture(params=["direct", "rrdcached"])
def address(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The archive written directly, then through a real rrdcached on a unix socket."""
    if request.param == "direct":
        yield ""
        return
    daemon: RRDCached = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    yield daemon.address
    daemon.stop()


def test_a_lengthened_interval_keeps_storing_known_values(
    tmp_path: Path, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = SeriesSpec("GAUGE", 120, None, None)  # interval 60: heartbeat 2 x 60
    after = SeriesSpec("GAUGE", 600, 0, 1000)  # interval 300: heartbeat 600, and bounds now known
    archive = Archive(tmp_path / "rrd", 60, address)
    try:
        for i in range(1, 11):
            assert not archive.write([Update("s/x", T0 + 60 * i, float(i), before)]).errors
    finally:
        archive.close()
    archive = Archive(tmp_path / "rrd", 60, address)  # the collector restarted with the new interval
    try:
        with caplog.at_level(logging.INFO, logger="rrd"):
            for k in range(1, 7):
                assert not archive.write([Update("s/x", T0 + 600 + 300 * k, 100.0 + k, after)]).errors
        retuned = [r.getMessage() for r in caplog.records if "retuned" in r.getMessage()]
        assert len(retuned) == 1 and "--heartbeat value:600" in retuned[0], retuned  # once per file
        info = archive.info("s/x")
        assert (info["ds[value].minimal_heartbeat"], info["ds[value].min"], info["ds[value].max"]) == (
            600,
            0,
            1000,
        )
        series = archive.fetch("s/x", T0 + 600, T0 + 600 + 300 * 6)
        # every minute row after the change is known: each 300 s gap is within the new heartbeat
        rows = [v for t, v in series.points() if T0 + 600 < t <= T0 + 600 + 300 * 6]
        assert series.step == 60 and len(rows) == 30 and None not in rows, rows
        assert dict(series.points())[T0 + 600 + 300 * 6] == 106.0
    finally:
        archive.close()


@pytest.mark.parametrize(
    ("text", "tiers"),
    [
        ("1m:2d, 5m:2w, 1h:62d, 1d:2y", ((60, 172800), (300, 1209600), (3600, 5356800), (86400, 63072000))),
        ("5m:30d,1h:1y", ((300, 2592000), (3600, 31536000))),
        ("30s:1d", ((30, 86400),)),
    ],
)
def test_retention_text(text: str, tiers: tuple[tuple[int, int], ...]) -> None:
    assert parse_retention(text).tiers == tiers


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "retention is empty"),
        ("1m", "tier 1 ('1m'): write <resolution>:<span>"),
        ("1m:30s", "tier 1 ('1m:30s'): the span must be longer than the resolution"),
        ("1h:2w, 5m:2d", "tier 2 ('5m:2d'): resolutions must grow"),
        ("1q:2d", "tier 1 ('1q:2d'): '1q' is not a duration"),
    ],
)
def test_bad_retention_names_the_tier(text: str, error: str) -> None:
    with pytest.raises(RetentionError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_retention(text)


def test_default_retention_is_the_plan_files_always_had(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "rrd", 60)
    archive.write([Update("s/x", T0, 1.0, SeriesSpec())])
    rras = [(v["cf"], v["pdp_per_row"], v["rows"]) for v in _rras(archive.path("s/x"))]
    assert rras == [(cf, steps, rows) for cf in ("AVERAGE", "MIN", "MAX") for steps, rows in
                    ((1, 2880), (5, 4032), (60, 1488), (1440, 730))]  # fmt: skip
    assert str(DEFAULT) == "1m:2d, 5m:2w, 1h:62d, 1d:2y"


def test_a_slurpers_own_retention_shapes_its_new_files(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "rrd", 60)
    spec = SeriesSpec("GAUGE", 120, retention=parse_retention("1m:1d, 1h:30d"))
    archive.write([Update("s/x", T0, 1.0, spec), Update("s/y", T0, 1.0, SeriesSpec())])
    assert [(v["pdp_per_row"], v["rows"]) for v in _rras(archive.path("s/x"))][:2] == [(1, 1440), (60, 720)]
    assert len(_rras(archive.path("s/y"))) == 12


def _rras(path: Path) -> list[dict[str, object]]:
    info = rrdtool.info(str(path))
    out = []
    i = 0
    while f"rra[{i}].cf" in info:
        out.append({k: info[f"rra[{i}].{k}"] for k in ("cf", "pdp_per_row", "rows")})
        i += 1
    return out


def test_a_batch_of_new_metrics_is_created_at_once_and_files_made_meanwhile_are_kept(
    tmp_path: Path, address: str
) -> None:
    """New files are made several at a time (copied from one file on this host); a file another
    writer made first is used as it is, never overwritten."""
    ids = [f"s{i % 3}/m{i}" for i in range(60)]
    gauge, counter = SeriesSpec("GAUGE", 120, 0, None), SeriesSpec("COUNTER", 120, 0, None)
    other = Archive(tmp_path / "rrd", 60)  # another writer got to s0/m0 first, with its own value
    assert not other.write([Update("s0/m0", T0 - 60, 42.0, gauge)]).errors
    archive = Archive(tmp_path / "rrd", 60, address)
    try:
        res = archive.write([Update(m, T0, float(i), counter if i % 2 else gauge) for i, m in enumerate(ids)])
        assert not res.errors and res.created == 59 and res.written == 60
        res = archive.write(
            [Update(m, T0 + 60, float(i + 1), counter if i % 2 else gauge) for i, m in enumerate(ids)]
        )
        assert not res.errors and res.created == 0
        last = archive.last_many(ids)
        assert last == {m: (T0 + 60, float(i + 1)) for i, m in enumerate(ids)}
        assert archive.info("s1/m1")["ds[value].type"] == "COUNTER"
        assert (
            archive.info("s0/m3")["ds[value].type"] == "COUNTER"
            and archive.info("s1/m4")["ds[value].type"] == "GAUGE"
        )
        assert dict(archive.fetch("s0/m0", T0 - 120, T0).points())[T0 - 60] == 42.0  # not overwritten
        leftovers = [
            p for p in (tmp_path / "rrd").rglob("*") if p.is_file() and p.suffix not in (".rrd", ".wal")
        ]
        assert not leftovers  # no template or half-copied file left behind
    finally:
        archive.close()
