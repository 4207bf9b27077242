"""The Slurm slurper on replies from real Slurm 25.05 and 25.11 clusters.

``tests/data/slurm/2505/`` and ``2511/`` hold slurmrestd replies that Slurm-web's crawler recorded from a
real slurmctld and slurmrestd (25.05.4 with data_parser v0.0.42, 25.11.0 with v0.0.44) and one
``scontrol show node --json`` from a Charmed HPC 25.11.0 cluster; ``tests/data/slurm/README.md`` says
where each file comes from. The job files are ``GET /job/{id}`` replies: the same ``{"jobs": [...]}``
document as ``/jobs``, with one job. Every expected figure below is counted by hand from the file, as
the comments show.
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

D = DATA / "slurm"


def values(readings: list[Reading]) -> dict[str, float | None]:
    return {r.metric: r.value for r in readings}


def doc(name: str) -> dict[str, Any]:
    return sp.load((D / name).read_text(encoding="utf-8"), name)


@pytest.mark.parametrize(
    ("name", "release", "parser"),
    [
        ("2505/rest_nodes_v0.0.42.json", "25.05.4", "data_parser/v0.0.42"),
        ("2505/rest_partitions_v0.0.42.json", "25.05.4", "data_parser/v0.0.42"),
        ("2505/rest_job_pending_v0.0.42.json", "25.05.4", "data_parser/v0.0.42"),
        ("2505/rest_job_running_v0.0.42.json", "25.05.4", "data_parser/v0.0.42"),
        ("2505/rest_jobs_expired_token_http511_v0.0.42.json", "25.05.4", "data_parser/v0.0.42"),
        ("2511/rest_nodes_v0.0.44.json", "25.11.0", "data_parser/v0.0.44"),
        ("2511/rest_partitions_v0.0.44.json", "25.11.0", "data_parser/v0.0.44"),
        ("2511/rest_job_pending_v0.0.44.json", "25.11.0", "data_parser/v0.0.44"),
        ("2511/rest_job_running_v0.0.44.json", "25.11.0", "data_parser/v0.0.44"),
        ("2511/rest_jobs_expired_token_http511_v0.0.44.json", "25.11.0", "data_parser/v0.0.44"),
        ("2511/scontrol_show_node.json", "25.11.0", "data_parser/v0.0.44"),
    ],
)
def test_each_payload_says_its_release(name: str, release: str, parser: str) -> None:
    """The files are what the README says: Slurm wrote its own release into every reply."""
    meta = json.loads((D / name).read_text(encoding="utf-8"))["meta"]
    assert meta["slurm"]["release"] == release
    assert meta["plugin"]["data_parser"] == parser


@pytest.mark.parametrize(
    ("name", "expected", "partitions"),
    [
        (
            # cn1 ALLOCATED 64/64, cn2 MIXED 22/64, cn3 DOWN 0/64, cn4 IDLE+DRAIN 0/64,
            # gpu1 and gpu2 IDLE 0/32 (allocated/CPUs):
            # allocated 64+22 = 86; other = the unallocated CPUs of DOWN cn3 and DRAIN cn4 = 64+64 = 128;
            # idle = cn2's 42 + 32 + 32 = 106; total 4*64 + 2*32 = 320
            "2505/rest_nodes_v0.0.42.json",
            {
                "nodes.allocated": 1,
                "nodes.mixed": 1,
                "nodes.down": 1,
                "nodes.idle": 3,  # cn4 (its base state is IDLE), gpu1, gpu2
                "nodes.total": 6,
                "nodes.flag.drain": 1,
                "nodes.drained": 1,  # cn4 runs nothing
                "nodes.draining": 0,
                "cpus.allocated": 86,
                "cpus.idle": 106,
                "cpus.other": 128,
                "cpus.total": 320,
            },
            {"normal", "gpu"},
        ),
        (
            # cn1 IDLE+DRAIN 0/64, cn2 DOWN 0/64, cn3 ALLOCATED 64/64, cn4 MIXED 46/64, gpu1-gpu4 IDLE 0/32:
            # allocated 64+46 = 110; other = cn1 + cn2 = 128; idle = cn4's 18 + 4*32 = 146;
            # total 4*64 + 4*32 = 384
            "2511/rest_nodes_v0.0.44.json",
            {
                "nodes.allocated": 1,
                "nodes.mixed": 1,
                "nodes.down": 1,
                "nodes.idle": 5,  # cn1, gpu1-gpu4
                "nodes.total": 8,
                "nodes.flag.drain": 1,
                "nodes.drained": 1,
                "nodes.draining": 0,
                "cpus.allocated": 110,
                "cpus.idle": 146,
                "cpus.other": 128,
                "cpus.total": 384,
            },
            {"normal", "gpu"},
        ),
        (
            # one dynamic node, DOWN+DYNAMIC_NORM, 0 of 8 CPUs allocated: DOWN makes its 8 CPUs "other"
            "2511/scontrol_show_node.json",
            {
                "nodes.down": 1,
                "nodes.idle": 0,
                "nodes.total": 1,
                "nodes.flag.drain": 0,
                "cpus.allocated": 0,
                "cpus.idle": 0,
                "cpus.other": 8,
                "cpus.total": 8,
            },
            {"compute"},
        ),
    ],
)
def test_nodes_and_cpus_as_sinfo_counts_them(
    name: str, expected: dict[str, float], partitions: set[str]
) -> None:
    tally = sp.node_tally(doc(name))
    got = values(tally.readings())
    assert {k: got[k] for k in expected} == expected
    assert tally.partitions == partitions


P2505 = "2505/rest_partitions_v0.0.42.json"
P2511 = "2511/rest_partitions_v0.0.44.json"


@pytest.mark.parametrize("name", [P2505, P2511])
def test_partitions(name: str) -> None:
    # two partitions, "normal" (cn[1-4]) and "gpu" (gpu[1-2]), both UP
    assert sp.partition_names(doc(name)) == ["gpu", "normal"]


@pytest.mark.parametrize(
    ("name", "partitions", "expected"),
    [
        (
            # job 4774 of account "optic" in partition "normal", PENDING for BeginTime (--begin now+1hour)
            "2505/rest_job_pending_v0.0.42.json",
            P2505,
            {
                "jobs.pending": 1,
                "jobs.running": 0,
                "partition.normal.pending": 1,
                "partition.gpu.pending": 0,
                "account.optic.pending": 1,
                "pending.BeginTime": 1,
            },
        ),
        (
            # job 4769 of "optic" RUNNING on cn4 in "normal"; state_reason "None" is no pending reason
            "2505/rest_job_running_v0.0.42.json",
            P2505,
            {
                "jobs.pending": 0,
                "jobs.running": 1,
                "partition.normal.running": 1,
                "partition.gpu.running": 0,
                "account.optic.running": 1,
            },
        ),
        (
            # job 5750 of "biology" in "normal", PENDING for BeginTime
            "2511/rest_job_pending_v0.0.44.json",
            P2511,
            {
                "jobs.pending": 1,
                "jobs.running": 0,
                "partition.normal.pending": 1,
                "account.biology.pending": 1,
                "pending.BeginTime": 1,
            },
        ),
        (
            # job 5748 of "biology" RUNNING on cn1 in "normal"
            "2511/rest_job_running_v0.0.44.json",
            P2511,
            {
                "jobs.pending": 0,
                "jobs.running": 1,
                "partition.normal.running": 1,
                "account.biology.running": 1,
            },
        ),
    ],
)
def test_jobs_by_state_partition_account_and_reason(
    name: str, partitions: str, expected: dict[str, float]
) -> None:
    """Partitions come from the same cluster's /partitions, so the empty "gpu" partition reads 0."""
    got = values(sp.job_readings(doc(name), sp.partition_names(doc(partitions)), per_account=True))
    assert {k: got[k] for k in expected} == expected
    pending = {k: v for k, v in got.items() if k.startswith("pending.")}
    assert pending == ({"pending.BeginTime": 1} if expected["jobs.pending"] else {})


@pytest.mark.parametrize(
    "name",
    [
        "2505/rest_jobs_expired_token_http511_v0.0.42.json",
        "2511/rest_jobs_expired_token_http511_v0.0.44.json",
    ],
)
def test_a_refused_token_is_quoted_by_slurms_errors(name: str) -> None:
    """slurmrestd's HTTP 511 to an expired JWT: the reason is in errors[], after the "meta" block."""
    body = (D / name).read_text(encoding="utf-8")
    assert sp.http_error_text(body) == "Unable to query jobs (Protocol authentication error)"
    with pytest.raises(SlurperError, match=r"Unable to query jobs \(Protocol authentication error\)"):
        sp.load(body, "GET /jobs")


# -- through rexmon, against a loopback slurmrestd answering with the recorded 511 -----------------------
@pytest.fixture(params=[("v0.0.42", "2505"), ("v0.0.44", "2511")], ids=["25.05", "25.11"])
def refusing_slurmrestd(request: pytest.FixtureRequest) -> Iterator[tuple[FakeSlurmrestd, str]]:
    api, release = request.param
    body = (D / release / f"rest_jobs_expired_token_http511_{api}.json").read_text(encoding="utf-8")
    server = FakeSlurmrestd("expired-jwt", lambda path: (511, body)).start()
    yield server, api
    server.stop()


def test_rest_mode_reports_the_511_of_an_expired_token(
    refusing_slurmrestd: tuple[FakeSlurmrestd, str],
    write_config: Callable[..., Path],
    rexmon_once: Callable[[Path], tuple[Any, dict[str, float | None]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, api = refusing_slurmrestd
    monkeypatch.setenv("REXMON_TEST_SLURM_JWT", "expired-jwt")
    config = write_config(
        '[[slurper]]\nid = "rest"\ntype = "slurm"\nmode = "rest"\ntimeout = 5\n'
        f'url = "{server.url}"\ntoken = {{ env = "REXMON_TEST_SLURM_JWT" }}\nuser = "slurm"\n'
        f'api_version = "{api}"\n'
    )
    run, metrics = rexmon_once(config)
    assert run.exit_code == 1
    assert f"/slurm/{api}/jobs returned HTTP 511: Unable to query jobs (Protocol authentication error)" in (
        run.output
    )
    assert metrics["rexmon/rest.errors"] == 1
    assert not [m for m in metrics if m.startswith("rest/")]
