"""Slurm slurper: pure parsers on every release's layout, end to end through the CLI and slurmrestd."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rexmon.demo.fakecmd import FakeSlurmrestd
from slurpers import slurm_parse as sp
from slurpers.api import PayloadError, Reading, SlurperError
from tests.slurpers.conftest import DATA, Fakes

D = DATA / "slurm"


def values(readings: list[Reading]) -> dict[str, float | None]:
    return {r.metric: r.value for r in readings}


def doc(name: str) -> dict:  # type: ignore[type-arg]
    return sp.load((D / name).read_text(), name)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5", 5.0),
        ('{"set": true, "infinite": false, "number": 9000}', 9000.0),
        ('{"set": false, "infinite": false, "number": 0}', None),  # unset, even though number is 0
        ('{"infinite": true, "number": 0, "set": false}', None),  # unlimited
        ('{"set": true, "infinite": true, "number": 0}', None),
        ("null", None),  # 24.11+: absent objects are null
        ("2.5E+3", 2500.0),
    ],
)
def test_number_unwraps_envelopes(raw: str, expected: float | None) -> None:
    assert sp.number(json.loads(raw), "x") == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('"12"', "expected a number"),
        ("true", "expected a number"),
        ('{"number": 1}', "expected a number envelope"),
    ],
)
def test_number_rejects_non_numbers(raw: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        sp.number(json.loads(raw), "cpus")


@pytest.mark.parametrize(
    ("state", "known", "base", "flags"),
    [
        (["RUNNING"], sp.JOB_STATES, "RUNNING", set()),
        ("RUNNING", sp.JOB_STATES, "RUNNING", set()),  # up to 23.02: a plain string
        (["PENDING", "REQUEUED"], sp.JOB_STATES, "PENDING", {"REQUEUED"}),
        (["COMPLETING", "RUNNING"], sp.JOB_STATES, "RUNNING", {"COMPLETING"}),
        ("mixed", sp.NODE_STATES, "MIXED", set()),  # 21.08: lower case
        ("IDLE+DRAIN", sp.NODE_STATES, "IDLE", {"DRAIN"}),
        (["IDLE", "DRAIN "], sp.NODE_STATES, "IDLE", {"DRAIN"}),  # stray whitespace
        (["DOWN", "DRAIN", "NOT_RESPONDING"], sp.NODE_STATES, "DOWN", {"DRAIN", "NOT_RESPONDING"}),
    ],
)
def test_split_state(state: object, known: tuple[str, ...], base: str, flags: set[str]) -> None:
    assert sp.split_state(state, known, "x") == (base, frozenset(flags))


@pytest.mark.parametrize("state", [None, 5, [], [""], [1]])
def test_split_state_rejects_garbage(state: object) -> None:
    with pytest.raises(PayloadError, match="node n1"):
        sp.split_state(state, sp.NODE_STATES, "node n1")


SAME_CLUSTER = {
    "nodes.mixed": 1,
    "nodes.allocated": 1,
    "nodes.idle": 3,
    "nodes.down": 1,
    "nodes.total": 6,
    "nodes.flag.drain": 2,
    "nodes.flag.not_responding": 1,
    "nodes.drained": 1,
    "nodes.draining": 1,
    "cpus.allocated": 72,
    "cpus.idle": 152,
    "cpus.other": 128,
    "cpus.total": 352,
}


@pytest.mark.parametrize(
    ("name", "expected", "partitions"),
    [
        # synthetic (tests/data/slurm/README.md): one invented cluster written in both layouts, so the two
        # must agree; real 24.11 /nodes replies are counted in test_slurm_2411.py
        # 23.02+ layout, -N: cn001 is listed in two partitions and counted once
        ("sinfo_2411.json", SAME_CLUSTER, {"batch", "gpu"}),
        # slurmrestd /nodes: the same cluster, flat node objects with state arrays
        ("nodes_rest.json", SAME_CLUSTER, {"batch", "gpu"}),
        # 21.08: top-level "nodes", lower-case state, flags in state_flags (with a trailing space)
        (
            "sinfo_2108.json",
            {
                "nodes.mixed": 1,
                "nodes.idle": 1,
                "nodes.allocated": 1,
                "nodes.down": 1,
                "nodes.flag.drain": 1,
                "nodes.drained": 1,
                "nodes.flag.not_responding": 1,
                "cpus.allocated": 68,
                "cpus.idle": 60,
                "cpus.other": 96,
                "cpus.total": 224,
            },
            {"hw", "sw"},
        ),
        (
            "sinfo_2302_verbatim.json",
            {"nodes.allocated": 1, "nodes.total": 1, "cpus.allocated": 1, "cpus.idle": 0, "cpus.total": 1},
            {"debug"},
        ),
    ],
)
def test_node_tally_layouts(name: str, expected: dict[str, int], partitions: set[str]) -> None:
    tally = sp.node_tally(doc(name))
    got = values(tally.readings())
    assert {k: got[k] for k in expected} == expected
    assert tally.partitions == partitions


def test_node_tally_names_an_unknown_layout() -> None:
    with pytest.raises(PayloadError, match="neither 'sinfo' .* nor 'nodes'"):
        sp.node_tally({"meta": {}, "errors": []})


@pytest.mark.parametrize(
    ("name", "per_account", "expected"),
    [
        (
            "squeue.json",
            True,
            {
                "jobs.running": 2,
                "jobs.pending": 3,
                "jobs.completed": 1,
                "jobs.failed": 0,
                "partition.batch.running": 2,
                "partition.batch.pending": 2,
                "partition.batch.completed": 1,
                "partition.gpu.pending": 2,
                "partition.gpu.running": 0,
                "partition.idle.running": 0,
                "pending.Priority": 2,
                "pending.Resources": 1,
                "account.cms.running": 2,
                "account.atlas.pending": 3,
            },
        ),
        (
            "squeue_mixed.json",
            False,
            {"partition.hw.running": 1, "partition.hw.pending": 1, "pending.ReqNodeNotAvail": 1},
        ),
        (
            "squeue_2311_verbatim.json",
            False,
            {"partition.cs.running": 1, "jobs.running": 1, "jobs.pending": 0},
        ),
    ],
)
def test_job_readings(name: str, per_account: bool, expected: dict[str, int]) -> None:
    got = values(sp.job_readings(doc(name), ["batch", "gpu", "idle"], per_account))
    assert {k: got[k] for k in expected} == expected
    assert any(k.startswith("account.") for k in got) is per_account


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "sdiag_2405_verbatim.json",
            {
                "sdiag.server_thread_count": 2,
                "sdiag.schedule_cycle_last": 110,
                "sdiag.jobs_submitted": 1,
                "sdiag.bf_queue_len": 0,
            },
        ),
        (
            "sdiag.json",
            {
                "sdiag.schedule_cycle_last": 2500,
                "sdiag.jobs_submitted": 10452,
                "sdiag.bf_cycle_last": 51234,
                "sdiag.bf_queue_len": None,
            },
        ),
    ],
)
def test_sdiag_readings(name: str, expected: dict[str, float | None]) -> None:
    got = values(sp.sdiag_readings(doc(name)))
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ((D / "squeue_error.json").read_text(), SlurperError, "Unable to contact slurm controller"),
        ("", PayloadError, "empty output"),
        ("slurm_load_jobs error: Socket timed out", PayloadError, "not JSON at line 1"),
        ("[]", PayloadError, "expected a JSON object"),
    ],
)
def test_load_reports_slurm_errors_and_garbage(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        sp.load(text, "squeue --json")


def test_newest_api_from_openapi() -> None:
    assert sp.newest_api(json.loads((D / "openapi.json").read_text())) == "v0.0.42"
    with pytest.raises(PayloadError, match="no /slurm/v0.0.x/jobs path"):
        sp.newest_api({"paths": {"/slurmdb/v0.0.42/jobs/": {}}})


def test_slash_escapes_are_plain_json() -> None:
    # a real slurmrestd 22.05.8 /nodes reply, captured as Slurm wrote it (tests/data/slurm/2205/README.md)
    assert "N\\/A" in (D / "2205" / "rest_nodes.json").read_text(encoding="utf-8")
    assert doc("2205/rest_nodes.json")["nodes"][0]["gres_drained"] == "N/A"


# -- end to end through rexmon ----------------------------------------------------------------------


def _cli_fakes(fakes: Fakes, squeue: Path = D / "squeue.json") -> None:
    fakes.command("squeue", squeue)
    fakes.command("sinfo", D / "sinfo_2411.json")
    fakes.command("sdiag", D / "sdiag.json")


def _cli_config(bin_dir: Path, sid: str, timeout: int = 5) -> str:
    return f"""
    [[slurper]]
    id = "{sid}"
    type = "slurm"
    timeout = {timeout}
    squeue = "{bin_dir / "squeue"}"
    sinfo = "{bin_dir / "sinfo"}"
    sdiag = "{bin_dir / "sdiag"}"
    per_account = true
    """


def test_end_to_end_cli(fakes, write_config, rexmon_once) -> None:  # type: ignore[no-untyped-def]
    _cli_fakes(fakes)
    run, metrics = rexmon_once(write_config(_cli_config(fakes.bin, "hpc")))
    assert run.exit_code == 0, run.output
    assert metrics["hpc/partition.batch.pending"] == 2
    assert metrics["hpc/partition.gpu.pending"] == 2
    assert metrics["hpc/account.atlas.pending"] == 3
    assert metrics["hpc/pending.Priority"] == 2
    assert metrics["hpc/cpus.other"] == 128
    assert metrics["hpc/nodes.flag.drain"] == 2
    assert metrics["hpc/nodes.draining"] == 1
    assert metrics["hpc/sdiag.jobs_submitted"] == 10452  # DERIVE: the raw counter is what was fed
    assert metrics["hpc/sdiag.bf_queue_len"] is None
    assert fakes.calls("sinfo") == [["-N", "--json"]]
    assert fakes.calls("squeue") == [["--json"]]


def _serve(files: dict[str, str]):  # type: ignore[no-untyped-def]
    def respond(path: str) -> tuple[int, str]:
        kind = path.rstrip("/").rsplit("/", 1)[-1]
        if path.rstrip("/") == "/openapi/v3":
            return 200, (D / "openapi.json").read_text()
        if files.get(kind) == "500":
            return 500, "boom"
        if kind in files:
            return 200, (D / files[kind]).read_text()
        return 404, '{"errors": [{"description": "Unable to find path"}]}'

    return respond


REST_FILES = {
    "jobs": "squeue.json",
    "nodes": "nodes_rest.json",
    "partitions": "partitions_rest.json",
    "diag": "sdiag.json",
}


@pytest.fixture
def slurmrestd() -> Iterator[FakeSlurmrestd]:
    server = FakeSlurmrestd("s3cret-jwt", _serve(REST_FILES)).start()
    yield server
    server.stop()


def _rest_config(url: str, sid: str = "rest", extra: str = "") -> str:
    return f"""
    [[slurper]]
    id = "{sid}"
    type = "slurm"
    mode = "rest"
    timeout = 5
    url = "{url}"
    token = {{ env = "REXMON_TEST_SLURM_JWT" }}
    user = "monitor"
    {extra}
    """


def test_end_to_end_rest_discovers_the_api_version(  # type: ignore[no-untyped-def]
    slurmrestd, write_config, rexmon_once, monkeypatch
) -> None:
    monkeypatch.setenv("REXMON_TEST_SLURM_JWT", "s3cret-jwt")
    run, metrics = rexmon_once(write_config(_rest_config(slurmrestd.url)))
    assert run.exit_code == 0, run.output
    assert [p for p, _ in slurmrestd.requests] == [
        "/openapi/v3",
        "/slurm/v0.0.42/jobs",
        "/slurm/v0.0.42/nodes",
        "/slurm/v0.0.42/partitions",
        "/slurm/v0.0.42/diag",
    ]
    assert all(h["X-SLURM-USER-NAME"] == "monitor" for _, h in slurmrestd.requests)
    assert metrics["rest/partition.idle.pending"] == 0  # an empty partition from /partitions
    assert metrics["rest/partition.batch.running"] == 2
    assert metrics["rest/cpus.total"] == 352
    assert metrics["rest/nodes.drained"] == 1
    assert metrics["rest/sdiag.jobs_failed"] == 3


def test_rest_pinned_version_skips_discovery(slurmrestd, write_config, rexmon_once, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REXMON_TEST_SLURM_JWT", "s3cret-jwt")
    run, _ = rexmon_once(write_config(_rest_config(slurmrestd.url, extra='api_version = "v0.0.40"')))
    assert run.exit_code == 0, run.output
    assert slurmrestd.requests[0][0] == "/slurm/v0.0.40/jobs"


def _dead_url() -> str:
    server = FakeSlurmrestd("x").start()
    url = server.url
    server.stop()
    return url


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("http500", "returned HTTP 500: boom"),
        ("refused", "cannot reach slurmrestd at http://127.0.0.1:"),
        ("token", "returned HTTP 401: "),
        ("garbage", "slurmrestd GET /slurm/v0.0.42/nodes: not JSON"),
        ("slurm_error", "Slurm reported an error: Unable to contact slurm controller"),
    ],
)
def test_rest_failures_are_clear_and_isolated(  # type: ignore[no-untyped-def]
    case: str, message: str, slurmrestd, fakes, write_config, rexmon_once, monkeypatch
) -> None:
    monkeypatch.setenv("REXMON_TEST_SLURM_JWT", "wrong" if case == "token" else "s3cret-jwt")
    files = dict(REST_FILES)
    if case == "http500":
        files["diag"] = "500"
    if case == "garbage":
        files["nodes"] = "../htcondor/garbage.txt"
    if case == "slurm_error":
        files["jobs"] = "squeue_error.json"
    bad = FakeSlurmrestd("s3cret-jwt", _serve(files)).start()
    try:
        url = _dead_url() if case == "refused" else bad.url
        _cli_fakes(fakes)
        run, metrics = rexmon_once(write_config(_rest_config(url, "bad") + _cli_config(fakes.bin, "good")))
    finally:
        bad.stop()
    assert run.exit_code == 1
    assert "bad: FAILED:" in run.output and message in run.output
    assert metrics["rexmon/bad.errors"] == 1
    assert not [m for m in metrics if m.startswith("bad/")]
    assert metrics["good/jobs.running"] == 2


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "cannot run"),
        ("exit1", "exited with status 1: squeue: error: Invalid user for SlurmUser slurm"),
        ("garbage", "squeue --json: not JSON"),
        ("slow", "timed out after 1 s"),
        ("errors", "squeue --json: Slurm reported an error: Unable to contact slurm controller"),
    ],
)
def test_cli_failures_are_clear_and_isolated(  # type: ignore[no-untyped-def]
    case: str, message: str, fakes, write_config, rexmon_once, tmp_path: Path
) -> None:
    bad = Fakes(tmp_path / "bad")
    _cli_fakes(bad)
    if case == "exit1":
        bad.command("squeue", code=1, stderr="squeue: error: Invalid user for SlurmUser slurm\n")
    elif case == "garbage":
        bad.command("squeue", DATA / "htcondor" / "garbage.txt")
    elif case == "slow":
        bad.command("squeue", D / "squeue.json", sleep=30)
    elif case == "errors":
        bad.command("squeue", D / "squeue_error.json")
    elif case == "missing":
        (bad.bin / "squeue").unlink()
    _cli_fakes(fakes)
    run, metrics = rexmon_once(
        write_config(_cli_config(bad.bin, "bad", timeout=1) + _cli_config(fakes.bin, "good"))
    )
    assert run.exit_code == 1
    assert "bad: FAILED:" in run.output and message in run.output
    assert metrics["rexmon/bad.errors"] == 1
    assert not [m for m in metrics if m.startswith("bad/")]
    assert metrics["good/partition.batch.running"] == 2


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('mode = "rest"', 'mode = "rest" needs url'),
        ('mode = "rest"\nurl = "http://ctl:6820"', "needs token"),
        ('api_version = "0.0.42"', "must look like v0.0.42"),
        ('token = "abc"\nuser = 5', "user: Input should be a valid string"),
    ],
)
def test_check_names_bad_keys(keys: str, message: str, write_config, runner) -> None:  # type: ignore[no-untyped-def]
    from rexmon.cli import cli

    path = write_config(f'[[slurper]]\nid = "s"\ntype = "slurm"\n{keys}\n')
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("name", "step", "message"),
    [
        # a wrong JSON type is a PayloadError naming the field, never a KeyError/AttributeError
        ("squeue_errors_object.json", "load", "'errors' must be a list, got dict"),
        ("sinfo_nodes_list.json", "tally", r"sinfo entry 0: 'nodes' must be an object, got list"),
        # 1e999 overflows a float: refused at the JSON layer, with its position
        ("sdiag_overflow.json", "load", "1e999 at line 1 column 45 is not a finite number"),
    ],
)
def test_wrong_types_and_non_finite_numbers_are_payload_errors(name: str, step: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        doc = sp.load((D / name).read_text(), "sinfo --json")
        if step == "tally":
            sp.node_tally(doc)
