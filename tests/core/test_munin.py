"""The munin slurper: parsers on real plugin output, and real Munin plugins through `rexmon run --once`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import rrdtool

from rexmon.cli import cli
from slurpers.api import PayloadError
from slurpers.munin import parse_config, parse_values

DATA = Path(__file__).parent.parent / "data" / "munin"
PLUGINS = Path("/usr/share/munin/plugins")


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_load_config_and_values_from_real_plugin_output() -> None:
    graphs = parse_config(read("load.config"), "load")
    assert list(graphs) == ["load"]
    g = graphs["load"]
    assert g.title == "Load average" and g.vlabel == "load"
    assert g.fields["load"].label == "load" and g.fields["load"].type == "GAUGE"
    values = parse_values(read("load.fetch"), "load")
    assert len(values) == 1 and values[0][:2] == ("load", "load")
    assert values[0][2] == float(read("load.fetch").split()[1])


def test_cpu_config_declares_derive_and_min() -> None:
    fields = parse_config(read("cpu.config"), "cpu")["cpu"].fields
    assert fields["user"].type == "DERIVE" and fields["user"].min == 0


def test_df_warning_critical_translated_to_nagios_ranges() -> None:
    fields = parse_config(read("df.config"), "df")["df"].fields
    assert fields["_dev_vda"].warning == "~:92"
    assert fields["_dev_vda"].critical == "~:98"


def test_multigraph_sections_epoch_values_and_unknown() -> None:
    graphs = parse_config(read("multigraph.config"), "diskstats")
    assert set(graphs) == {"diskstats", "diskstats_latency", "diskstats_latency.vda", "diskstats_iops"}
    assert graphs["diskstats_iops"].fields["vda_rdio"].type == "DERIVE"
    assert graphs["diskstats_latency"].fields["vda_avgwait"].warning == "0:3"
    assert graphs["diskstats_latency"].fields["vda_avgwait"].critical == "~:10"
    values = parse_values(read("multigraph.fetch"), "diskstats")
    assert ("diskstats_latency.vda", "avgrdwait", None, None) in values
    assert ("diskstats_iops", "vda_wrio", 9811002.0, 1700000000.0) in values
    assert len(values) == 5


def test_traps_comments_crlf_exponent_u_and_missing_newline() -> None:
    values = parse_values(read("traps.fetch"), "traps")
    assert values == [
        ("traps", "users", 1500.0, None),
        ("traps", "idle", None, None),
        ("traps", "queued", 42.0, 1700000123.0),
    ]
    fields = parse_config(read("traps.config"), "traps")["traps"].fields
    assert fields["users"].warning == "~:1000" and fields["users"].critical == "900:2000"
    assert fields["idle"].min is None and fields["queued"].type == "ABSOLUTE"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad_novalue.fetch", "is not a number or U"),
        ("bad_comma.fetch", "'0,25' of load is not a number"),
        ("bad_traceback.fetch", "expected 'field.value N'"),
        ("bad_number.fetch", "'12abc'"),
    ],
)
def test_malformed_fetch_output_is_a_clear_error(name: str, message: str) -> None:
    with pytest.raises(PayloadError, match="line 1") as err:
        parse_values(read(name), "load")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("name", "message"), [("bad_type.config", "GAUGEY"), ("bad_warning.config", "'ten'")]
)
def test_malformed_config_output_is_a_clear_error(name: str, message: str) -> None:
    with pytest.raises(PayloadError, match="config line 2") as err:
        parse_config(read(name), "load")
    assert message in str(err.value)


def _tee_plugin(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A wrapper named like the plugin that runs the real one and keeps a copy of what it printed."""
    log = tmp_path / f"{name}.out"
    wrapper = tmp_path / "plugins" / name
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = config ]; then exec {PLUGINS / name} config; fi\n'
        f"{PLUGINS / name} | tee {log}\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, log


@pytest.mark.skipif(not (PLUGINS / "load").exists(), reason="munin-plugins-core is installed by make")
def test_real_munin_plugins_archived_values_match_plugin_output(write_config, runner, tmp_path) -> None:
    names = ["load", "memory", "cpu", "df"]
    blocks, logs = [], {}
    for n in names:
        plugin, logs[n] = _tee_plugin(tmp_path, n)
        blocks.append(f'[[slurper]]\nid = "{n}"\ntype = "munin"\ninterval = 60\nplugin = "{plugin}"\n')
    cfg = write_config("\n".join(blocks))
    result = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(cli, ["--config", str(cfg), "metrics", "--json"])
    assert listed.exit_code == 0, listed.output
    archived = {row["id"]: row["value"] for row in json.loads(listed.output)}
    checked = 0
    for n in names:
        for graph, field, value, _ in parse_values(logs[n].read_text(), n):
            assert graph == n
            assert archived[f"{n}/{field}"] == pytest.approx(value, rel=1e-9), (n, field)
            checked += 1
    assert checked >= 4 + 9  # load, cpu's nine counters, memory and df fields
    # the DS type comes from the plugin's own config: cpu fields are DERIVE
    info = rrdtool.info(str(tmp_path / "rrd" / "cpu" / "user.rrd"))
    assert info["ds[value].type"] == "DERIVE"
    # rexmon's own health is archived too
    assert archived["rexmon/load.errors"] == 0
    assert archived["rexmon/cpu.duration"] > 0


def _plugin(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / "plugins" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_hanging_and_broken_plugins_are_isolated(write_config, runner, tmp_path) -> None:
    good = _plugin(
        tmp_path, "good", 'if [ "$1" = config ]; then echo "x.label x"; exit 0; fi\necho "x.value 7"\n'
    )
    hang = _plugin(tmp_path, "hang", 'if [ "$1" = config ]; then echo "x.label x"; exit 0; fi\nsleep 600\n')
    bad = _plugin(
        tmp_path, "bad", 'if [ "$1" = config ]; then echo "x.label x"; exit 0; fi\necho "x.value abc"\n'
    )
    cfg = write_config(
        f'[[slurper]]\nid = "good"\ntype = "munin"\nplugin = "{good}"\n\n'
        f'[[slurper]]\nid = "hang"\ntype = "munin"\ntimeout = 1\nplugin = "{hang}"\n\n'
        f'[[slurper]]\nid = "bad"\ntype = "munin"\nplugin = "{bad}"\n'
    )
    result = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert result.exit_code == 1
    assert "hang: FAILED: " in result.output and "timed out after 1 s" in result.output
    assert "bad: FAILED: " in result.output and "'abc' of x is not a number" in result.output
    rows = json.loads(runner.invoke(cli, ["--config", str(cfg), "metrics", "--json"]).output)
    values = {r["id"]: r["value"] for r in rows}
    assert values["good/x"] == 7
    assert "hang/x" not in values and "bad/x" not in values
    assert values["rexmon/hang.errors"] == 1 and values["rexmon/bad.errors"] == 1
    assert values["rexmon/good.errors"] == 0
    # the hung plugin's process group was killed, not left behind
    assert not any("sleep 600" in _cmdline(p) for p in os.listdir("/proc") if p.isdigit())


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_metric_named_like_a_path_stays_inside_the_archive(write_config, runner, tmp_path) -> None:
    # Munin field names cannot contain '/', but a multigraph name can carry dots: '..'
    evil = _plugin(
        tmp_path,
        "evil",
        'if [ "$1" = config ]; then printf "multigraph ..\\nx.label x\\n"; exit 0; fi\n'
        'printf "multigraph ..\\nx.value 1\\n"\n',
    )
    cfg = write_config(f'[[slurper]]\nid = "evil"\ntype = "munin"\nplugin = "{evil}"\n')
    result = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert result.exit_code == 1
    assert "evil: FAILED: slurper evil produced the metric name '...x', which is not allowed" in result.output
    assert not (tmp_path / "x.rrd").exists()


def test_a_changed_plugin_config_reaches_the_archive_specs(write_config, tmp_path) -> None:
    """The specs follow the plugin's config: unchanged, they are reused; changed (a new max, a new type),
    the next run's updates carry the new ones (Munin re-reads its config every run too)."""
    from rexmon.config import build_slurper, load
    from rexmon.runner import Runner

    conf = tmp_path / "plugin.conf"
    plugin = _plugin(
        tmp_path, "disk", f'if [ "$1" = config ]; then cat {conf}; exit 0; fi\necho "x.value 7"\n'
    )
    conf.write_text("x.label x\nx.max 100\n")
    cfg = load(write_config(f'[[slurper]]\nid = "disk"\ntype = "munin"\nplugin = "{plugin}"\n'))
    slurper = build_slurper(cfg.slurpers[0], cfg.registry)
    runner = Runner(cfg, [slurper], dry_run=True)
    first = runner.run(slurper).updates[0].spec
    generation = slurper.spec_generation
    assert (first.ds_type, first.max) == ("GAUGE", 100.0)
    assert runner.run(slurper).updates[0].spec == first and slurper.spec_generation == generation
    conf.write_text("x.label x\nx.type DERIVE\nx.max 200\n")
    changed = runner.run(slurper).updates[0].spec
    assert (changed.ds_type, changed.max) == ("DERIVE", 200.0)
    assert slurper.spec_generation == generation + 1
