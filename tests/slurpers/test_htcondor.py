"""HTCondor slurper: pure parsers on real-format payloads, bindings/cli agreement, end to end via rexmon."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rexmon.cli import cli
from slurpers.api import PayloadError, Reading
from slurpers.htcondor import (
    HTCondorSettings,
    HTCondorSlurper,
    ad_number,
    classads_to_dicts,
    job_readings,
    parse_ads,
    schedd_readings,
    slot_readings,
)
from tests.slurpers.conftest import DATA

D = DATA / "htcondor"


def values(readings: list[Reading]) -> dict[str, float | None]:
    return {r.metric: r.value for r in readings}


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),  # no matching ads: condor_* print nothing at all, not []
        ("\n", 0),
        ('[\n{\n  "Name": "a"\n}\n]\n', 1),
        ('[\n{\n  "Name": "a"\n}\n]\n[\n{\n  "Name": "b"\n},\n{\n  "Name": "c"\n}\n]\n', 3),
    ],
)
def test_parse_ads_accepts_empty_and_concatenated_output(text: str, count: int) -> None:
    assert len(parse_ads(text, "condor_q")) == count


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ((D / "garbage.txt").read_text(), "condor_status: not JSON at line 1"),
        ('{"Name": "a"}', "expected a JSON array of ads, got dict"),
        ("[1, 2]", "expected a JSON array of ads"),
        ('[\n{\n  "Name": "a"\n', "not JSON"),
    ],
)
def test_parse_ads_rejects_garbage_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_ads(text, "condor_status")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7", 7.0),
        ("2.9E-05", 2.9e-05),
        ("3.7327E+04", 37327.0),
        ("null", None),  # undefined
        ('"\\/Expr(real(\\"NaN\\"))\\/"', None),
        ('"\\/Expr(error)\\/"', None),
        ('"\\/Expr(((ResidentSetSize + 1023) / 1024))\\/"', None),
        ("true", 1.0),
        ('"12"', 12.0),
    ],
)
def test_ad_number_handles_exponents_null_and_expressions(raw: str, expected: float | None) -> None:
    ad = json.loads('{"X": ' + raw + "}")
    assert ad_number(ad, "X", "ad") == expected


def test_ad_number_names_the_attribute_of_a_non_number() -> None:
    with pytest.raises(PayloadError, match="slot a: attribute Cpus = 'many' is not a number"):
        ad_number({"Cpus": "many"}, "Cpus", "slot a")


def test_schedd_readings() -> None:
    got = values(schedd_readings(parse_ads((D / "schedds.json").read_text(), "x")))
    assert got["schedd.schedd01.example.org.running"] == 1523
    assert got["schedd.schedd01.example.org.idle"] == 8410
    assert got["schedd.schedd01.example.org.held"] == 37
    assert got["schedd.schedd01.example.org.duty_cycle"] == pytest.approx(0.002986998743074842)
    assert got["schedd.schedd02.example.org.held"] is None  # null = undefined -> unknown, not 0
    assert got["schedd.schedd02.example.org.duty_cycle"] == pytest.approx(2.9e-05)


def test_slot_readings_count_partitionable_and_dynamic_cores_once() -> None:
    got = values(slot_readings(parse_ads((D / "slots.json").read_text(), "x")))
    # 64-core wn042: 8 left on the partitionable slot + 8 + 48 in dynamic slots; wn043: 2 static slots
    assert got["cpus.total"] == 66
    assert got["cpus.claimed.busy"] == 56
    assert got["cpus.unclaimed.idle"] == 8
    assert got["cpus.claimed"] == 57
    assert got["slots.claimed.busy"] == 2
    assert got["slots.claimed.retiring"] == 1
    assert got["slots.owner.idle"] == 1
    assert got["slots.partitionable"] == 1
    assert got["slots.total"] == 4
    assert got["slots.unclaimed"] == 0
    assert got["memory.total"] == 17000 + 16000 + 224000 + 2048 + 2048


def test_an_expression_in_cpus_makes_the_total_unknown_not_short() -> None:
    ads = [
        {"Name": "s1@a", "State": "Claimed", "Activity": "Busy", "Cpus": 4, "Memory": 10},
        {"Name": "s2@a", "State": "Claimed", "Activity": "Busy", "Cpus": "/Expr(1 + 1)/", "Memory": 10},
    ]
    got = values(slot_readings(ads))
    assert got["cpus.total"] is None
    assert got["memory.total"] == 20
    assert got["slots.claimed.busy"] == 2


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        (
            ["AcctGroup"],
            {
                "jobs.group_cms.running": 2,
                "jobs.group_cms.idle": 1,
                "jobs.group_cms.transferring_output": 1,
                "jobs.group_atlas.held": 1,
                "jobs.group_atlas.idle": 1,
                "jobs.undefined.idle": 1,
                "jobs.undefined.completed": 1,
            },
        ),
        (
            ["Owner"],
            {"jobs.gemc.running": 2, "jobs.gemc.idle": 1, "jobs.alice.held": 1, "jobs.bob.completed": 1},
        ),
        (["AcctGroup", "Owner"], {"jobs.group_cms.gemc.running": 2, "jobs.undefined.bob.idle": 1}),
    ],
)
def test_job_readings_by_group(group_by: list[str], expected: dict[str, int]) -> None:
    got = values(job_readings(parse_ads((D / "jobs.json").read_text(), "x"), group_by))
    for metric, n in expected.items():
        assert got[metric] == n, metric
    assert got["jobs.group_atlas.running" if group_by == ["AcctGroup"] else next(iter(expected))] is not None


def test_global_output_in_several_arrays_counts_the_same_as_one() -> None:
    one = job_readings(parse_ads((D / "jobs.json").read_text(), "x"), ["AcctGroup"])
    split = job_readings(parse_ads((D / "jobs_global.json").read_text(), "x"), ["AcctGroup"])
    assert values(one) == values(split)


def test_verbatim_condor_q_ad() -> None:
    got = values(job_readings(parse_ads((D / "jobs_verbatim.json").read_text(), "x"), ["Owner"]))
    assert got["jobs.gemc.running"] == 1
    assert got["jobs.gemc.idle"] == 0


def test_unknown_job_status_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match=r"job 1\.0: JobStatus 9 is not one of 1..7"):
        job_readings(parse_ads((D / "bad_status.json").read_text(), "x"), ["Owner"])


@pytest.mark.parametrize("name", ["schedds.json", "slots.json", "jobs.json", "jobs_verbatim.json"])
def test_bindings_mode_gives_the_same_readings_as_cli_mode(name: str) -> None:
    classad2 = pytest.importorskip("classad2")
    from_cli = parse_ads((D / name).read_text(), name)
    # the same ads as the collector would hand the bindings: expressions as ExprTree, undefined, reals
    wire = [json.dumps(ad).replace('"/Expr(', '"\\/Expr(').replace(')/"', ')\\/"') for ad in from_cli]
    classads = [classad2.parseOne(text, classad2.ParserType.JSON) for text in wire]
    assert (
        any(isinstance(v, classad2.ExprTree) for ad in classads for v in ad.values())
        or name == "schedds.json"
    )
    from_bindings = classads_to_dicts(classads)
    for aggregate in (schedd_readings, slot_readings, lambda ads: job_readings(ads, ["AcctGroup", "Owner"])):
        try:
            expected = values(aggregate(from_cli))
        except PayloadError:
            continue  # e.g. job ads have no Name: not an aggregation that applies to this file
        assert values(aggregate(from_bindings)) == expected


def test_glob_specs_cover_every_metric_and_fill_graphs() -> None:
    slurper = HTCondorSlurper("pool", HTCondorSettings(), interval=60, timeout=10)
    readings = [
        *schedd_readings(parse_ads((D / "schedds.json").read_text(), "x")),
        *slot_readings(parse_ads((D / "slots.json").read_text(), "x")),
        *job_readings(parse_ads((D / "jobs.json").read_text(), "x"), ["AcctGroup"]),
    ]
    for r in readings:
        assert any(spec.matches(r.metric) for spec in slurper.metrics()), r.metric
    spec = slurper.spec_for("schedd.schedd01.example.org.held")
    assert (spec.graph, spec.unit, spec.min, spec.ds_type) == (
        "schedd.schedd01.example.org",
        "jobs",
        0,
        "GAUGE",
    )
    assert slurper.spec_for("jobs.group_cms.idle").graph == "jobs.group_cms"


# -- end to end through rexmon ----------------------------------------------------------------------


def _config(fakes, sid: str = "pool", extra: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"""
    [[slurper]]
    id = "{sid}"
    type = "htcondor"
    timeout = 5
    pool = "cm.example.org:9618"
    condor_status = "{fakes.bin / "condor_status"}"
    condor_q = "{fakes.bin / "condor_q"}"
    group_by = ["AcctGroup"]
    {extra}
    """


def test_end_to_end_two_schedds_use_global(fakes, write_config, rexmon_once) -> None:  # type: ignore[no-untyped-def]
    fakes.command("condor_status", {"-schedd": D / "schedds.json", "": D / "slots.json"})
    fakes.command("condor_q", D / "jobs_global.json")
    run, metrics = rexmon_once(write_config(_config(fakes, extra='constraint = "JobUniverse == 5"')))
    assert run.exit_code == 0, run.output
    assert "pool: " in run.output and "value(s)" in run.output
    assert metrics["pool/schedd.schedd01.example.org.running"] == 1523
    assert metrics["pool/schedd.schedd02.example.org.held"] is None
    assert metrics["pool/schedd.schedd02.example.org.duty_cycle"] == pytest.approx(2.9e-05)
    assert metrics["pool/cpus.total"] == 66
    assert metrics["pool/slots.claimed.busy"] == 2
    assert metrics["pool/jobs.group_cms.running"] == 2
    assert metrics["pool/jobs.undefined.completed"] == 1
    assert metrics["rexmon/pool.errors"] == 0
    (q_args,) = fakes.calls("condor_q")
    assert q_args[:3] == ["-pool", "cm.example.org:9618", "-allusers"]
    assert "-global" in q_args and q_args[-2:] == ["-constraint", "JobUniverse == 5"]
    assert fakes.calls("condor_status")[0][:4] == ["-pool", "cm.example.org:9618", "-schedd", "-json"]


def test_end_to_end_one_schedd_is_asked_by_name(fakes, write_config, rexmon_once) -> None:  # type: ignore[no-untyped-def]
    fakes.command("condor_status", {"-schedd": D / "schedd_one.json", "": D / "empty.json"})
    fakes.command("condor_q", D / "empty.json")
    run, metrics = rexmon_once(write_config(_config(fakes)))
    assert run.exit_code == 0, run.output
    (q_args,) = fakes.calls("condor_q")
    assert "-global" not in q_args and q_args[-2:] == ["-name", "schedd01.example.org"]
    assert metrics["pool/slots.total"] == 0  # empty output = no slot ads, not an error
    assert metrics["pool/cpus.total"] == 0
    assert not any(m.startswith("pool/jobs.") for m in metrics)


def test_end_to_end_no_schedds_means_no_condor_q(fakes, write_config, rexmon_once) -> None:  # type: ignore[no-untyped-def]
    fakes.command("condor_status", {"-schedd": D / "empty.json", "": D / "slots.json"})
    fakes.command("condor_q", D / "jobs.json")
    run, metrics = rexmon_once(write_config(_config(fakes)))
    assert run.exit_code == 0, run.output
    assert fakes.calls("condor_q") == []
    assert metrics["pool/cpus.total"] == 66


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "cannot run"),
        ("exit1", "exited with status 1: Error: Failed to connect to collector"),
        ("garbage", "condor_status -schedd: not JSON at line 1"),
        ("slow", "timed out after 1 s"),
    ],
)
def test_a_failing_source_is_a_clear_error_and_others_still_run(  # type: ignore[no-untyped-def]
    setup: str, message: str, fakes, write_config, rexmon_once, tmp_path: Path
) -> None:
    bad = tmp_path / "badbin"
    bad.mkdir()
    from tests.slurpers.conftest import Fakes

    bad_fakes = Fakes(bad)
    if setup == "exit1":
        bad_fakes.command("condor_status", code=1, stderr="Error: Failed to connect to collector\n")
    elif setup == "garbage":
        bad_fakes.command("condor_status", D / "garbage.txt")
    elif setup == "slow":
        bad_fakes.command("condor_status", D / "schedds.json", sleep=30)
    bad_fakes.command("condor_q", D / "jobs.json")
    fakes.command("condor_status", {"-schedd": D / "schedds.json", "": D / "slots.json"})
    fakes.command("condor_q", D / "jobs.json")
    text = _config(fakes, "good") + _config(bad_fakes, "bad").replace("timeout = 5", "timeout = 1")
    run, metrics = rexmon_once(write_config(text))
    assert run.exit_code == 1
    assert "bad: FAILED:" in run.output and message in run.output
    assert metrics["rexmon/bad.errors"] == 1
    assert not [m for m in metrics if m.startswith("bad/")]
    assert metrics["rexmon/good.errors"] == 0
    assert metrics["good/schedd.schedd01.example.org.running"] == 1523


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('mode = "rpc"', "[[slurper]] 'p': mode: Input should be 'cli' or 'bindings'"),
        ('schedd = "x"', "[[slurper]] 'p': schedd: unknown key"),
        ("group_by = []", "group_by must list job attribute names"),
        ('group_by = ["Acct Group"]', "group_by must list job attribute names"),
    ],
)
def test_check_names_bad_keys(keys: str, message: str, write_config, runner) -> None:  # type: ignore[no-untyped-def]
    from rexmon.cli import cli

    path = write_config(f'[[slurper]]\nid = "p"\ntype = "htcondor"\n{keys}\n')
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad_overflow.json", "condor_status: 1e999 at line 6 column 11 is not a finite number"),
        ("bad_inf_string.json", "slot slot1@a: attribute Cpus = 'inf' is not a finite number"),
    ],
)
def test_non_finite_numbers_are_payload_errors(name: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        slot_readings(parse_ads((D / name).read_text(), "condor_status"))


@pytest.mark.parametrize(
    "text",
    [
        '[{"Name": "a", "Cpus": NaN}]',
        '[{"Name": "a", "Cpus": -Infinity}]',
        '[{"Name": "a", "Cpus": Infinity}]',
    ],
)
def test_nan_and_infinity_literals_are_refused(text: str) -> None:
    with pytest.raises(
        PayloadError, match=r"condor_status: -?\w+ at line 1 column 24 is not a finite number"
    ):
        parse_ads(text, "condor_status")


def test_end_to_end_a_group_whose_jobs_are_gone_reads_zero_not_stale(  # type: ignore[no-untyped-def]
    fakes, write_config, rexmon_once, runner
) -> None:
    """condor_q lists no line for a group with no jobs left: its counts are 0, not their last value."""
    fakes.command("condor_status", {"-schedd": D / "schedd_one.json", "": D / "slots.json"})
    fakes.command("condor_q", D / "jobs.json")
    config = write_config(_config(fakes))
    run, metrics = rexmon_once(config)
    assert run.exit_code == 0, run.output
    assert metrics["pool/jobs.group_cms.running"] == 2 and metrics["pool/jobs.group_atlas.idle"] == 1
    time.sleep(1.1)  # the next update must be later than the first (RRD times are whole seconds)
    fakes.command("condor_q", D / "empty.json")
    dry = runner.invoke(cli, ["--config", str(config), "slurp", "pool", "--dry-run"])
    assert dry.exit_code == 0 and "pool/jobs.group_cms.running\t0\t" in dry.output, dry.output
    run, metrics = rexmon_once(config)
    assert run.exit_code == 0, run.output
    groups = {m: v for m, v in metrics.items() if m.startswith("pool/jobs.")}
    assert groups and all(v == 0 for v in groups.values()), groups
    assert metrics["pool/schedd.schedd01.example.org.running"] is not None  # schedds are not filled
