"""Munin's cdef and negative: parsed from real plugin output, carried into the metric catalogue."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from alarms.catalogue import CatalogueWriter, MetricMeta, read
from alarms.observation import Observation
from downtime.db import make_engine, upgrade
from rexmon.cli import cli
from slurpers.munin import parse_config
from web.rpn import RPNError, evaluate, field_ids, series, to_rrd, tokens

DATA = Path(__file__).parent.parent / "data" / "munin"
NAN = math.nan


def read_data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_if_plugin_config_gives_cdef_and_negative() -> None:
    fields = parse_config(read_data("if_eth0.config"), "if_eth0")["if_eth0"].fields
    assert (fields["down"].cdef, fields["down"].negative) == ("down,8,*", "")
    assert (fields["up"].cdef, fields["up"].negative) == ("up,8,*", "down")
    err = parse_config(read_data("if_err_eth0.config"), "if_err_eth0")["if_err_eth0"].fields
    assert err["trans"].negative == "rcvd" and err["txdrop"].negative == "rxdrop"
    assert err["collisions"].negative == "" and err["rcvd"].cdef == ""


def test_negative_that_is_not_a_field_name_is_a_clear_error() -> None:
    from slurpers.api import PayloadError

    with pytest.raises(PayloadError, match=r"config line 2: negative 'a b' is not a field name"):
        parse_config("up.label x\nup.negative a b\n", "if_x")


@pytest.mark.parametrize(
    ("expr", "env", "expected"),
    [
        ("up,8,*", {"up": 1000.0}, 8000.0),
        ("up,8,*", {"up": None}, None),
        ("a,b,+", {"a": 1.5, "b": 2.0}, 3.5),
        ("a,b,-", {"a": 1.0, "b": 3.0}, -2.0),
        ("a,b,/", {"a": 1.0, "b": 4.0}, 0.25),
        ("a,0,/", {"a": 1.0}, None),
        ("a,b,ADDNAN", {"a": None, "b": 2.0}, 2.0),
        ("a,b,ADDNAN", {"a": None, "b": None}, None),
        ("a,UN,0,a,IF", {"a": None}, 0.0),
        ("a,UN,0,a,IF", {"a": 7.0}, 7.0),
        ("a,b,MAX", {"a": 1.0, "b": 3.0}, 3.0),
        ("a,b,MIN", {"a": 1.0, "b": 3.0}, 1.0),
        ("a,1024,/,1e3,*", {"a": 2048.0}, 2000.0),
        ("-1,a,*", {"a": 2.0}, -2.0),
    ],
)
def test_rpn_evaluates_what_munin_plugins_use(
    expr: str, env: dict[str, float | None], expected: float | None
) -> None:
    assert evaluate(tokens(expr, list(env)), env) == expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("up,8,SIN", "unknown token 'SIN'|unknown field 'SIN'"),
        ("up,other,*", "unknown field 'other'"),
        ("up,8", "leaves 2 values on the stack"),
        ("8,*", "'\\*' needs 2 values, the stack has 1"),
        ("up,8,*:evil", "unknown token"),
        ("", "empty"),
        ("up,8,*,LINE2", "unknown field 'LINE2'"),
    ],
)
def test_rpn_refuses_anything_else_naming_it(expr: str, message: str) -> None:
    with pytest.raises(RPNError, match=message):
        tokens(expr, ["up"])


def test_rpn_series_and_rrd_translation() -> None:
    assert series("up,down,+", {"up": [1.0, None, 3.0], "down": [10.0, 20.0, None]}) == [11.0, None, None]
    assert to_rrd("up,down,-", {"up": "v0", "down": "v1"}) == "v0,v1,-"
    assert field_ids("if_eth0/up", "up,down,+") == {"up": "if_eth0/up", "down": "if_eth0/down"}
    assert field_ids("m/diskstats_iops.sda.rdio", "rdio,8,*") == {"rdio": "m/diskstats_iops.sda.rdio"}


def _plugin(tmp_path: Path, name: str) -> Path:
    """A plugin that prints the captured output of Debian's if_ (config, then values) as it did."""
    path = tmp_path / "plugins" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        f'#!/bin/sh\nif [ "$1" = config ]; then cat {DATA / (name + ".config")}; exit 0; fi\n'
        f"cat {DATA / (name + '.fetch')}\n"
    )
    path.chmod(0o755)
    return path


def test_collector_records_cdef_and_negative_in_the_catalogue(
    write_config, runner: CliRunner, tmp_path
) -> None:
    plugin = _plugin(tmp_path, "if_eth0")
    cfg = write_config(f'[[slurper]]\nid = "if_eth0"\ntype = "munin"\ninterval = 60\nplugin = "{plugin}"\n')
    result = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'rexmon.db'}")
    try:
        with engine.connect() as conn:
            meta = read(conn)
    finally:
        engine.dispose()
    assert (meta["if_eth0/up"].cdef, meta["if_eth0/up"].negative) == ("up,8,*", "down")
    assert (meta["if_eth0/down"].cdef, meta["if_eth0/down"].negative) == ("down,8,*", "")
    assert meta["if_eth0/up"].ds_type == "DERIVE" and meta["if_eth0/up"].graph == "if_eth0"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def test_migration_0007_keeps_0006_rows_and_a_changed_cdef_is_rewritten(db_url: str) -> None:
    url = db_url
    upgrade(url, "0006_metric_meta")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO metric_meta (metric_id, unit) VALUES ('old/x', 'B')"))
        upgrade(url)
        writer = CatalogueWriter(engine)
        for cdef in ("up,8,*", "up,1000,*"):
            with engine.begin() as conn:
                ob = Observation("if/up", 60.0, 1.0, "DERIVE", unit="bits", cdef=cdef, negative="down")
                writer.written(writer.note(conn, [ob], 60.0))
            with engine.connect() as conn:
                meta = read(conn)
            assert meta["if/up"].cdef == cdef and meta["if/up"].negative == "down"
        assert meta["old/x"] == MetricMeta(unit="B")  # the 0006 row: drawn raw
    finally:
        engine.dispose()


def test_negative_inside_a_multigraph_section_names_the_metric_of_that_graph(tmp_path: Path) -> None:
    from slurpers.api import CollectContext
    from slurpers.munin import MuninSettings, MuninSlurper

    config = (
        "multigraph if_bytes\ngraph_title bytes\nrx.label rx\nrx.graph no\nrx.cdef rx,8,*\n"
        "tx.label tx\ntx.negative rx\ntx.cdef tx,8,*\n"
    )
    plugin = tmp_path / "plugins" / "netstat_multi"
    plugin.parent.mkdir()
    (tmp_path / "config.txt").write_text(config)
    (tmp_path / "fetch.txt").write_text("multigraph if_bytes\nrx.value 10\ntx.value 20\n")
    plugin.write_text(
        f'#!/bin/sh\nif [ "$1" = config ]; then cat {tmp_path / "config.txt"}; exit 0; fi\n'
        f"cat {tmp_path / 'fetch.txt'}\n"
    )
    plugin.chmod(0o755)
    slurper = MuninSlurper(
        "net", MuninSettings(plugin=str(plugin), plugstate=str(tmp_path / "state")), interval=60, timeout=10
    )
    readings = slurper.collect(CollectContext(now=0.0, timeout=10.0))
    assert {r.metric for r in readings} == {"if_bytes.rx", "if_bytes.tx"}
    specs = {s.name: s for s in slurper.metrics()}
    assert (specs["if_bytes.tx"].negative, specs["if_bytes.tx"].cdef) == ("if_bytes.rx", "tx,8,*")
    assert field_ids("net/if_bytes.tx", specs["if_bytes.tx"].cdef) == {"tx": "net/if_bytes.tx"}
