"""The Slurm slurper against a real Slurm 22.05 cluster (Debian 12) and payloads captured from real releases.

``tests/data/slurm/2205/`` was captured from the cluster that ``tests/fixtures/slurm.py`` starts (see its
README); the tests below parse those files and, through the ``slurm_cluster`` fixture, run ``rexmon run
--once`` against the live cluster in both modes.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest

from slurpers import slurm_parse as sp
from slurpers.api import Reading, SlurperError, run_command
from tests.fixtures.slurm import SlurmCluster
from tests.slurpers.conftest import DATA

D = DATA / "slurm" / "2205"


def values(readings: list[Reading]) -> dict[str, float | None]:
    return {r.metric: r.value for r in readings}


def doc(name: str) -> dict[str, object]:
    return sp.load((D / name).read_text(encoding="utf-8"), name)


def sinfo_cpus(name: str) -> dict[str, float]:
    """sinfo's own CPUS(A/I/O/T) column, captured with the JSON: the figures to agree with."""
    line = (D / name).read_text(encoding="utf-8").splitlines()[1].split()
    alloc, idle, other, total = (float(x) for x in line[2].split("/"))
    return {"cpus.allocated": alloc, "cpus.idle": idle, "cpus.other": other, "cpus.total": total}


def test_2205_jobs_running_pending_and_held_on_two_partitions() -> None:
    got = values(sp.job_readings(doc("squeue.json"), ["batch", "debug"], per_account=False))
    assert got["jobs.running"] == 2 and got["jobs.pending"] == 4
    assert got["partition.batch.running"] == 1 and got["partition.debug.running"] == 1
    assert got["partition.batch.pending"] == 2 and got["partition.debug.pending"] == 2
    assert got["pending.Resources"] == 2
    assert got["pending.BeginTime"] == 1
    assert got["pending.JobHeldUser"] == 1


@pytest.mark.parametrize("name", ["sinfo_N_draining.json", "rest_nodes_draining.json"])
def test_cpus_of_a_draining_node_are_counted_as_sinfo_counts_them(name: str) -> None:
    """22.05, a node with 3 of 4 CPUs allocated drained while its jobs run: sinfo says 3/0/1/4."""
    got = values(sp.node_tally(doc(name)).readings())
    assert {k: got[k] for k in ("cpus.allocated", "cpus.idle", "cpus.other", "cpus.total")} == sinfo_cpus(
        "sinfo_draining.txt"
    )
    assert got["nodes.draining"] == 1 and got["nodes.drained"] == 0


@pytest.mark.parametrize(
    ("state", "flags", "idle", "other"),
    [
        # derived from the real 22.05 node (3 of 4 CPUs allocated) by changing only its state
        ("future", [], 1, 0),  # sinfo: FUTURE is neither DOWN nor DRAIN, so idle
        ("unknown", [], 1, 0),
        ("idle", ["CLOUD", "POWERED_DOWN"], 1, 0),  # a powered-down cloud node is idle, not other
        ("mixed", ["NOT_RESPONDING"], 1, 0),
        ("down", [], 0, 1),
        ("down", ["NOT_RESPONDING"], 0, 1),
        ("idle", ["DRAIN"], 0, 1),
        ("mixed", ["DRAIN"], 0, 1),
    ],
)
def test_cpu_kinds_follow_sinfo(state: str, flags: list[str], idle: int, other: int) -> None:
    node = json.loads((D / "sinfo_N.json").read_text(encoding="utf-8"))
    node["nodes"][0].update(state=state, state_flags=flags)
    got = values(sp.node_tally(node).readings())
    assert (got["cpus.allocated"], got["cpus.idle"], got["cpus.other"], got["cpus.total"]) == (
        3,
        idle,
        other,
        4,
    )


def test_an_sinfo_entry_without_nodes_total_counts_its_listed_nodes() -> None:
    """An entry without ``nodes.total`` (reported of Slurm 25.05's ``sinfo --json``) counts the node names
    it lists. Real 25.05.8 and 25.11.7 output (``2505/loopback``, ``2511/loopback``) always carries the
    key, so the report is not reproduced; this guard takes the synthetic 23.02+ layout of
    ``sinfo_2411.json`` with the key removed."""
    entries = json.loads((DATA / "slurm" / "sinfo_2411.json").read_text(encoding="utf-8"))
    for entry in entries["sinfo"]:
        entry["nodes"].pop("total")
    got = values(sp.node_tally(entries).readings())
    listed = {n for e in entries["sinfo"] for n in e["nodes"]["nodes"]}
    assert got["nodes.total"] == len(listed) > 0


def test_a_non_200_reply_is_quoted_by_its_errors() -> None:
    """22.05's reply to a token slurmctld refuses: HTTP 500 whose body starts with 200 bytes of "meta"."""
    body = (D / "rest_jobs_bad_token_http500.json").read_text(encoding="utf-8")
    assert sp.http_error_text(body) == "Failed while looking for jobs (Unspecified error)"
    # later releases answer 511 with the error's name (slurmrestd's errors[] entries have the same keys)
    assert (
        sp.http_error_text('{"errors": [{"error": "Protocol authentication error", "error_number": 1007}]}')
        == "Protocol authentication error"
    )
    assert sp.http_error_text((D / "rest_jobs_no_user_http401.txt").read_text()) == "Authentication failure"


def test_release_and_token_user() -> None:
    assert sp.release((D / "sdiag_version.txt").read_text()) == (22, 5, 8)
    assert sp.release("slurm 23.02.7\n") == (23, 2, 7)
    assert sp.release('{"statistics": {}}') is None
    claims = base64.urlsafe_b64encode(b'{"exp":1,"iat":0,"sun":"monitor"}').rstrip(b"=").decode()
    assert sp.token_user(f"eyJhbGciOiJIUzI1NiJ9.{claims}.c2ln") == "monitor"
    assert sp.token_user("s3cret-jwt") == ""
    assert sp.token_user("a.!!!.c") == ""


# -- the live cluster ----------------------------------------------------------------------------------
def _expect_cluster(metrics: dict[str, float | None], sid: str) -> None:
    assert metrics[f"{sid}/jobs.running"] == 2
    assert metrics[f"{sid}/partition.batch.running"] == 1
    assert metrics[f"{sid}/partition.debug.running"] == 1
    assert metrics[f"{sid}/jobs.pending"] == 4
    assert metrics[f"{sid}/pending.JobHeldUser"] == 1
    assert metrics[f"{sid}/pending.BeginTime"] == 1
    assert metrics[f"{sid}/nodes.total"] == 1
    assert metrics[f"{sid}/cpus.allocated"] == 3
    assert metrics[f"{sid}/cpus.total"] == 4


def test_cli_mode_on_slurm_2205_archives_jobs_nodes_and_cpus_without_sdiag(  # type: ignore[no-untyped-def]
    slurm_cluster: SlurmCluster, write_config, rexmon_once, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    config = write_config('[[slurper]]\nid = "hpc"\ntype = "slurm"\ntimeout = 30\n')
    with caplog.at_level(logging.WARNING, logger="slurpers.slurm"):
        run, metrics = rexmon_once(config)
    assert run.exit_code == 0, run.output
    _expect_cluster(metrics, "hpc")
    assert not [m for m in metrics if m.startswith("hpc/sdiag.")]
    said = [r.getMessage() for r in caplog.records if "no --json" in r.getMessage()]
    assert len(said) == 1 and "Slurm 22.05.8" in said[0]


def test_rest_mode_on_slurm_2205_with_no_user_sends_the_tokens_user(  # type: ignore[no-untyped-def]
    slurm_cluster: SlurmCluster, write_config, rexmon_once, monkeypatch
) -> None:
    monkeypatch.setenv("REXMON_TEST_SLURM_JWT", slurm_cluster.token())
    config = write_config(
        '[[slurper]]\nid = "rest"\ntype = "slurm"\nmode = "rest"\ntimeout = 30\n'
        f'url = "{slurm_cluster.rest_url}"\n'
        'token = { env = "REXMON_TEST_SLURM_JWT" }\nuser = ""\n'
    )
    run, metrics = rexmon_once(config)
    assert run.exit_code == 0, run.output
    _expect_cluster(metrics, "rest")
    assert metrics["rest/sdiag.jobs_submitted"] is not None  # /diag works where sdiag --json does not
    assert metrics["rest/sdiag.server_thread_count"] is not None


def test_rest_mode_quotes_slurms_reason_for_a_refused_token(  # type: ignore[no-untyped-def]
    slurm_cluster: SlurmCluster, write_config, rexmon_once, monkeypatch
) -> None:
    monkeypatch.setenv("REXMON_TEST_SLURM_JWT", "not-a-jwt")
    config = write_config(
        '[[slurper]]\nid = "rest"\ntype = "slurm"\nmode = "rest"\ntimeout = 30\n'
        f'url = "{slurm_cluster.rest_url}"\n'
        'token = { env = "REXMON_TEST_SLURM_JWT" }\nuser = "root"\napi_version = "v0.0.38"\n'
    )
    run, _ = rexmon_once(config)
    assert run.exit_code == 1
    assert "returned HTTP 500: Failed while looking for jobs (Unspecified error)" in run.output


def test_payloads_on_disk_match_the_live_cluster(slurm_cluster: SlurmCluster) -> None:
    """The captured 22.05 files are what this cluster prints: the same layout and the same counts."""
    live = json.loads(slurm_cluster.run("squeue", "--json").stdout)
    stored = json.loads((D / "squeue.json").read_text(encoding="utf-8"))
    assert live["meta"]["Slurm"] == stored["meta"]["Slurm"]
    assert sorted(live["jobs"][0]) == sorted(stored["jobs"][0])
    failed = slurm_cluster.run("sdiag", "--json", check=False)
    assert failed.returncode != 0 and failed.stderr == (D / "sdiag_json.stderr").read_text()


def test_a_failed_command_is_quoted_by_its_first_lines() -> None:
    """22.05's ``sdiag --json``: the cause is on the first line, the last only says ``Try "sdiag --help"``."""
    stderr = D / "sdiag_json.stderr"
    with pytest.raises(SlurperError) as err:
        run_command(["sh", "-c", f'cat "{stderr}" >&2; exit 1'], timeout=10)
    assert "exited with status 1: sdiag: unrecognized option '--json' / Try" in str(err.value)
