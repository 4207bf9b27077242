"""The batch simulators: deterministic, real formats (the slurpers' parsers accept them), plausible cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from rexmon.demo import batch_sim as sim
from rexmon.demo.fakecmd import FakeSlurmrestd, install_fake_commands, simulated_responder
from slurpers import enstore, htcondor
from slurpers import slurm_parse as sp
from slurpers.api import Reading

DAY0 = 1716336000.0  # 2024-05-22 00:00 UTC


def values(readings: list[Reading]) -> dict[str, float | None]:
    return {r.metric: r.value for r in readings}


def test_same_time_and_seed_give_the_same_text() -> None:
    assert sim.squeue(DAY0 + 100, 7) == sim.squeue(DAY0 + 100, 7)
    assert sim.condor_jobs(DAY0 + 100, 7) != sim.condor_jobs(DAY0 + 100, 8)


def test_condor_jobs_follow_the_daily_cycle() -> None:
    def running(hour: float) -> float | None:
        ads = htcondor.parse_ads(sim.condor_schedds(DAY0 + hour * 3600), "schedd")
        got = values(htcondor.schedd_readings(ads))
        return sum(v or 0 for k, v in got.items() if k.endswith(".running"))

    assert running(15) > 1.5 * running(3)
    slots = values(htcondor.slot_readings(htcondor.parse_ads(sim.condor_slots(DAY0), "slots")))
    assert slots["cpus.total"] == sim.WORKERS * sim.CORES


def test_a_slurm_node_drains_and_the_tape_backlog_builds_by_day() -> None:
    early = values(sp.node_tally(sp.load(sim.sinfo(DAY0 + 3600), "sinfo")).readings())
    later = values(sp.node_tally(sp.load(sim.sinfo(DAY0 + 5 * 3600), "sinfo")).readings())
    assert early["nodes.flag.drain"] == later["nodes.flag.drain"] == 1
    assert later["cpus.other"] > early["cpus.other"]
    assert sp.sdiag_readings(sp.load(sim.sdiag(DAY0 + 60), "sdiag"))
    lm = "LTO8.library_manager"
    evening = enstore.parse_get_queue(sim.enstore_get_queue(DAY0 + 17 * 3600, 1, lm), lm)
    morning = enstore.parse_get_queue(sim.enstore_get_queue(DAY0 + 5 * 3600, 1, lm), lm)
    assert evening["pending_reads"] > morning["pending_reads"] + 100


@pytest.mark.parametrize("hour", [0, 6, 12, 18, 23.9])
def test_every_simulated_payload_parses(hour: float) -> None:
    now = DAY0 + hour * 3600
    for text in (sim.condor_schedds(now), sim.condor_slots(now), sim.condor_jobs(now)):
        htcondor.parse_ads(text, "condor")
    for text in (
        sim.squeue(now),
        sim.sinfo(now),
        sim.slurm_nodes(now),
        sim.sdiag(now),
        sim.slurm_partitions(now),
    ):
        assert sp.load(text, "slurm")
    for mover in sim.MOVERS:
        assert enstore.parse_mover_status(sim.enstore_mover_status(now, 1, mover), mover)["state"]
    assert enstore.parse_status_only(sim.enstore_status_only(now)) in (0, 2)


def test_fake_commands_and_slurmrestd_feed_rexmon(  # type: ignore[no-untyped-def]
    tmp_path: Path, write_config, rexmon_once, monkeypatch
) -> None:
    now = DAY0 + 14 * 3600
    monkeypatch.setenv("REXMON_FAKE_NOW", str(now))
    monkeypatch.setenv("REXMON_TEST_SLURM_JWT", "jwt")
    cmds = install_fake_commands(tmp_path / "fakebin")
    assert sorted(cmds) == ["condor_q", "condor_status", "enstore", "sdiag", "sinfo", "squeue"]
    server = FakeSlurmrestd("jwt", simulated_responder(clock=lambda: now)).start()
    try:
        config = write_config(f"""
        [[slurper]]
        id = "condor"
        type = "htcondor"
        condor_status = "{cmds["condor_status"]}"
        condor_q = "{cmds["condor_q"]}"
        group_by = ["AcctGroup"]

        [[slurper]]
        id = "slurm"
        type = "slurm"
        squeue = "{cmds["squeue"]}"
        sinfo = "{cmds["sinfo"]}"
        sdiag = "{cmds["sdiag"]}"

        [[slurper]]
        id = "slurmrest"
        type = "slurm"
        mode = "rest"
        url = "{server.url}"
        token = {{ env = "REXMON_TEST_SLURM_JWT" }}

        [[slurper]]
        id = "tape"
        type = "enstore"
        enstore = "{cmds["enstore"]}"
        library_managers = ["LTO8"]
        movers = "all"
        """)
        run, metrics = rexmon_once(config)
    finally:
        server.stop()
    assert run.exit_code == 0, run.output
    schedds = values(htcondor.schedd_readings(htcondor.parse_ads(sim.condor_schedds(now), "s")))
    assert (
        metrics["condor/schedd.schedd01.example.org.running"]
        == schedds["schedd.schedd01.example.org.running"]
    )
    tally = values(sp.node_tally(sp.load(sim.sinfo(now), "sinfo")).readings())
    assert metrics["slurm/cpus.allocated"] == tally["cpus.allocated"]
    assert metrics["slurmrest/cpus.allocated"] == tally["cpus.allocated"]  # the two access paths agree
    assert metrics["slurm/jobs.running"] == metrics["slurmrest/jobs.running"]
    assert metrics["tape/movers.total"] == len(sim.MOVERS)
    assert metrics["tape/lm.LTO8.pending_reads"] is not None
