"""The Slurm slurper on replies from a real Slurm 24.11 cluster.

``tests/data/slurm/2411/`` holds slurmrestd replies (data_parser v0.0.42) that Slurm-web's crawler recorded
from a real slurmctld and slurmrestd: 24.11.5 for ``/nodes``, ``/partitions``, two ``/job/{id}`` and the 511
of a refused token, and a later 24.11.7 ``/nodes`` of the same cluster with a MIXED node;
``tests/data/slurm/README.md`` says where each file comes from. The job files are ``GET /job/{id}``
replies: the same ``{"jobs": [...]}`` document as ``/jobs``, with one job. Every expected figure below is
counted by hand from the file, as the comments show.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rexmon.demo.fakecmd import FakeSlurmrestd
from slurpers import slurm_parse as sp
from slurpers.api import Reading, SlurperError
from tests.slurpers.conftest import DATA

D = DATA / "slurm" / "2411"
NODES = "rest_nodes_v0.0.42.json"
NODES_MIXED = "rest_nodes_v0.0.42_24.11.7.json"
PARTITIONS = "rest_partitions_v0.0.42.json"
REFUSED = "rest_jobs_invalid_token_http511_v0.0.42.json"


def values(readings: list[Reading]) -> dict[str, float | None]:
    return {r.metric: r.value for r in readings}


def doc(name: str) -> dict[str, Any]:
    return sp.load((D / name).read_text(encoding="utf-8"), name)


@pytest.mark.parametrize(
    ("name", "release"),
    [
        (NODES, "24.11.5"),
        (PARTITIONS, "24.11.5"),
        ("rest_job_pending_v0.0.42.json", "24.11.5"),
        ("rest_job_running_v0.0.42.json", "24.11.5"),
        (REFUSED, "24.11.5"),
        (NODES_MIXED, "24.11.7"),
    ],
)
def test_each_payload_says_its_release(name: str, release: str) -> None:
    """The files are what the README says: Slurm wrote its own release into every reply."""
    meta = json.loads((D / name).read_text(encoding="utf-8"))["meta"]
    assert meta["slurm"]["release"] == release
    assert meta["slurm"]["cluster"] == "hpc"
    assert meta["plugin"]["data_parser"] == "data_parser/v0.0.42"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            # cn1 IDLE 0/64, cn2 IDLE 0/64, cn3 DOWN 0/64 ("CPU dead"), cn4 IDLE+DRAIN 0/64 ("ECC memory
            # error"), ia1 IDLE+COMPLETING 0/32, ia2 IDLE 0/32 (allocated/CPUs):
            # allocated 0; other = the CPUs of DOWN cn3 and DRAIN cn4 = 64+64 = 128;
            # idle = cn1 + cn2 + ia1 + ia2 = 64+64+32+32 = 192 (COMPLETING is neither DOWN nor DRAIN);
            # total 4*64 + 2*32 = 320
            NODES,
            {
                "nodes.idle": 5,  # cn1, cn2, cn4 (its base state is IDLE), ia1, ia2
                "nodes.down": 1,
                "nodes.mixed": 0,
                "nodes.allocated": 0,
                "nodes.total": 6,
                "nodes.flag.drain": 1,
                "nodes.flag.completing": 1,  # ia1
                "nodes.drained": 1,  # cn4 runs nothing
                "nodes.draining": 0,
                "cpus.allocated": 0,
                "cpus.idle": 192,
                "cpus.other": 128,
                "cpus.total": 320,
            },
        ),
        (
            # later, on 24.11.7: cn1 DOWN 0/64 ("CPU dead"), cn2 MIXED 42/64, cn3 IDLE 0/64,
            # cn4 IDLE+DRAIN 0/64 ("ECC memory error"), ia1 and ia2 IDLE 0/32:
            # allocated 42; other = cn1 + cn4 = 64+64 = 128; idle = cn2's 22 + 64 + 32 + 32 = 150;
            # total 320
            NODES_MIXED,
            {
                "nodes.idle": 4,  # cn3, cn4, ia1, ia2
                "nodes.down": 1,
                "nodes.mixed": 1,
                "nodes.allocated": 0,
                "nodes.total": 6,
                "nodes.flag.drain": 1,
                "nodes.flag.completing": 0,
                "nodes.drained": 1,
                "nodes.draining": 0,
                "cpus.allocated": 42,
                "cpus.idle": 150,
                "cpus.other": 128,
                "cpus.total": 320,
            },
        ),
    ],
)
def test_nodes_and_cpus_as_sinfo_counts_them(name: str, expected: dict[str, float]) -> None:
    tally = sp.node_tally(doc(name))
    got = values(tally.readings())
    assert {k: got[k] for k in expected} == expected
    assert tally.partitions == {"standard", "ia"}


def test_partitions() -> None:
    # two partitions, "standard" (cn[1-4], 256 CPUs) and "ia" (ia[1-2], 64 CPUs), both UP
    assert sp.partition_names(doc(PARTITIONS)) == ["ia", "standard"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            # job 6370 of account "biology" in partition "standard", PENDING for BeginTime
            "rest_job_pending_v0.0.42.json",
            {
                "jobs.pending": 1,
                "jobs.running": 0,
                "partition.standard.pending": 1,
                "partition.ia.pending": 0,
                "account.biology.pending": 1,
                "pending.BeginTime": 1,
            },
        ),
        (
            # job 6368 of "biology" RUNNING on cn3 in "standard"; state_reason "None" is no pending reason
            "rest_job_running_v0.0.42.json",
            {
                "jobs.pending": 0,
                "jobs.running": 1,
                "partition.standard.running": 1,
                "partition.ia.running": 0,
                "account.biology.running": 1,
            },
        ),
    ],
)
def test_jobs_by_state_partition_account_and_reason(name: str, expected: dict[str, float]) -> None:
    """Partitions come from the same cluster's /partitions, so the empty "ia" partition reads 0."""
    got = values(sp.job_readings(doc(name), sp.partition_names(doc(PARTITIONS)), per_account=True))
    assert {k: got[k] for k in expected} == expected
    pending = {k: v for k, v in got.items() if k.startswith("pending.")}
    assert pending == ({"pending.BeginTime": 1} if expected["jobs.pending"] else {})


def test_a_refused_token_is_quoted_by_slurms_errors() -> None:
    """slurmrestd's HTTP 511 to a token it refuses: the reason is in errors[], after the "meta" block."""
    body = (D / REFUSED).read_text(encoding="utf-8")
    assert sp.http_error_text(body) == "Unable to query jobs (Protocol authentication error)"
    with pytest.raises(SlurperError, match=r"Unable to query jobs \(Protocol authentication error\)"):
        sp.load(body, "GET /jobs")


# -- through rexmon, against a loopback slurmrestd answering with the recorded 511 -----------------------
@pytest.fixture
def refusing_slurmrestd() -> Iterator[FakeSlurmrestd]:
    body = (D / REFUSED).read_text(encoding="utf-8")
    server = FakeSlurmrestd("invalid-jwt", lambda path: (511, body)).start()
    yield server
    server.stop()


def test_rest_mode_reports_the_511_of_a_refused_token(
    refusing_slurmrestd: FakeSlurmrestd,
    write_config: Callable[..., Path],
    rexmon_once: Callable[[Path], tuple[Any, dict[str, float | None]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REXMON_TEST_SLURM_JWT", "invalid-jwt")
    config = write_config(
        '[[slurper]]\nid = "rest"\ntype = "slurm"\nmode = "rest"\ntimeout = 5\n'
        f'url = "{refusing_slurmrestd.url}"\ntoken = {{ env = "REXMON_TEST_SLURM_JWT" }}\n'
        'user = "slurm"\napi_version = "v0.0.42"\n'
    )
    run, metrics = rexmon_once(config)
    assert run.exit_code == 1
    assert "/slurm/v0.0.42/jobs returned HTTP 511: Unable to query jobs (Protocol authentication error)" in (
        run.output
    )
    assert metrics["rexmon/rest.errors"] == 1
    assert not [m for m in metrics if m.startswith("rest/")]
