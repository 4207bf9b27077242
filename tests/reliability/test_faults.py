"""Faults around the collector: sources that are down, slow, broken or garbled; a full disk; a clock
that steps backwards. Each run must say what failed, keep the rest going, archive nothing bogus, recover."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from rexmon.cli import cli
from rexmon.config import load
from rexmon.service import Service
from rrd.archive import Archive, SeriesSpec, Update
from slurpers.api import CollectContext, MetricSpec, Reading, Slurper
from tests.reliability.helpers import SourceServer, munin_plugin, rrdtool_ok, wait_for

DATA = Path(__file__).resolve().parents[1] / "data"
GOOD = '[ "$1" = config ] && { echo "x.label x"; exit 0; }\necho "x.value 42"\n'


def _metrics(runner: CliRunner, cfg: Path) -> dict[str, float | None]:
    listed = runner.invoke(cli, ["--config", str(cfg), "metrics", "--json"])
    assert listed.exit_code == 0, listed.output
    return {row["id"]: row["value"] for row in json.loads(listed.stdout)}


def _munin_config(tmp_path: Path, write_config: Callable[..., Path], bad: Path) -> Path:
    good = munin_plugin(tmp_path / "plugins.d", "good", GOOD)
    return write_config(
        f"""
        [[slurper]]
        id = "good"
        type = "munin"
        plugin = "{good}"

        [[slurper]]
        id = "bad"
        type = "munin"
        timeout = 1
        plugin = "{bad}"
        """
    )


MUNIN_FAULTS = {
    # case: (plugin body after the config answer, what the operator reads)
    "missing": (None, "does not exist or is not executable"),
    "exits 3": (
        'echo "cannot read /proc/loadavg" >&2; exit 3',
        "exited with status 3: cannot read /proc/loadavg",
    ),
    "hangs": ("sleep 30", "timed out after 1 s"),
    "non-UTF-8": (r"printf 'x.value \377\376\n'", "is not a number or U"),
    "truncated": ("printf 'x.val'", "expected 'field.value N'"),
    "python traceback": ('echo "Traceback (most recent call last):"', "expected 'field.value N'"),
    "NaN": ('echo "x.value nan"', "is not a number or U"),
}


@pytest.mark.parametrize("case", list(MUNIN_FAULTS))
def test_munin_plugin_fault_is_reported_isolated_and_recovers(
    case: str, tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """Munin plugin missing / exiting non-zero / hanging past its timeout / printing non-UTF-8, truncated or NaN output: `rexmon run --once` exits 1 naming the plugin and the cause, archives the other slurpers, nothing of the bad one; it recovers once the plugin is fixed."""  # noqa: E501
    body, message = MUNIN_FAULTS[case]
    bad = tmp_path / "plugins.d" / "bad"
    cfg = _munin_config(tmp_path, write_config, bad)
    if body is not None:
        munin_plugin(bad.parent, "bad", '[ "$1" = config ] && { echo "x.label x"; exit 0; }\n' + body + "\n")
    run = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert run.exit_code == 1
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("bad: "))
    assert "FAILED" in line and message in line, line
    ids = _metrics(runner, cfg)
    assert ids["good/x"] == 42
    assert not [m for m in ids if m.startswith("bad/")]
    munin_plugin(bad.parent, "bad", GOOD)
    time.sleep(1.0)  # a new second, so the next value is newer than the last one archived
    again = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert again.exit_code == 0, again.output
    assert _metrics(runner, cfg)["bad/x"] == 42


def test_munin_overflowing_number_is_refused(
    tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """Munin plugin printing 1e999 (overflows a float): refused as a payload error like any non-number."""
    bad = munin_plugin(tmp_path / "plugins.d", "bad", '[ "$1" = config ] && exit 0\necho "x.value 1e999"\n')
    cfg = _munin_config(tmp_path, write_config, bad)
    run = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert "bad: FAILED" in run.stdout


SLURM_ROUTES = {
    "/slurm/v0.0.40/jobs": "squeue.json",
    "/slurm/v0.0.40/nodes": "nodes_rest.json",
    "/slurm/v0.0.40/partitions": "partitions_rest.json",
    "/slurm/v0.0.40/diag": "sdiag.json",
}
HTTP_FAULTS = {
    "down": "Connection refused",
    "500": "returned HTTP 500",
    "slow": "timed out after 1 s",
    "truncated": "slurmrestd",
    "cut": "not JSON",
    "latin1": "not JSON",
}


@pytest.fixture
def slurmrestd(source_server: Callable[[dict[str, bytes]], SourceServer]) -> SourceServer:
    return source_server({p: (DATA / "slurm" / f).read_bytes() for p, f in SLURM_ROUTES.items()})


@pytest.mark.parametrize("mode", list(HTTP_FAULTS))
def test_http_source_fault_is_reported_and_recovers(
    mode: str,
    slurmrestd: SourceServer,
    write_config: Callable[..., Path],
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """slurmrestd (loopback) down / slower than the timeout / HTTP 500 / truncated body / cut JSON / non-UTF-8 bytes: the run fails with a message naming the URL and the cause, archives nothing of it, and the next run after the source heals archives again."""  # noqa: E501
    monkeypatch.setenv("SLURM_JWT", "jwt-secret-token-value")
    url = "http://127.0.0.1:9" if mode == "down" else slurmrestd.url
    cfg = write_config(
        f"""
        [[slurper]]
        id = "slurm"
        type = "slurm"
        timeout = 1
        mode = "rest"
        url = "{url}"
        api_version = "v0.0.40"
        token = {{ env = "SLURM_JWT" }}
        """
    )
    slurmrestd.mode = mode
    run = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert run.exit_code == 1
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("slurm: "))
    assert "FAILED" in line and HTTP_FAULTS[mode] in line, line
    assert "/slurm/v0.0.40/" in line
    assert "jwt-secret-token-value" not in run.output
    assert not [m for m in _metrics(runner, cfg) if m.startswith("slurm/")]
    if mode == "down":
        return
    slurmrestd.mode = "ok"
    again = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert again.exit_code == 0, again.output
    assert [m for m in _metrics(runner, cfg) if m.startswith("slurm/")]


# -- a full disk ------------------------------------------------------------------------------------

FIELDS = 24
#: prints FIELDS values stamped with the epoch in $SOURCE (so each run is a new time)
MANY = f"""\
if [ "$1" = config ]; then
  for i in $(seq 1 {FIELDS}); do echo "f$i.label f$i"; done; exit 0
fi
t=$(cat "$SOURCE")
for i in $(seq 1 {FIELDS}); do echo "f$i.value $t:$i"; done
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only): room for a few RRD files, not for all of them."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_while_writing_rrds(
    tmp_path: Path, small_disk: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """Disk full while creating RRD files (2 MiB tmpfs): exit 1 with one 'cannot create <file>' line per metric, no corrupt or temporary file, files already there keep updating; all files appear once space returns."""  # noqa: E501
    plugin = munin_plugin(tmp_path / "plugins.d", "many", MANY)
    source = tmp_path / "epoch"
    cfg = write_config(
        f"""
        [archive]
        rrd_dir = "{small_disk / "rrd"}"
        step = 60

        [[slurper]]
        id = "disk"
        type = "munin"
        plugin = "{plugin}"
        env = {{ SOURCE = "{source}" }}
        """
    )
    t0 = int(time.time()) // 60 * 60 - 3600
    source.write_text(str(t0), encoding="utf-8")
    run = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert run.exit_code == 1
    failed = [ln for ln in run.stderr.splitlines() if ln.startswith("archive: disk/")]
    assert failed and all("cannot create " + str(small_disk) in ln for ln in failed), run.stderr
    rrd = small_disk / "rrd"
    made = sorted(rrd.rglob("*.rrd"))
    assert 0 < len(made) < FIELDS + 2
    assert all(rrdtool_ok(f)[0] for f in made), [rrdtool_ok(f) for f in made]
    assert not [p for p in rrd.rglob("*") if p.is_file() and p.suffix != ".rrd"]
    # still full: the files that exist take new values (an update does not grow a file)
    source.write_text(str(t0 + 60), encoding="utf-8")
    runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    archive = Archive(rrd, 60)
    disk_files = [m for m in archive.metric_ids() if m.startswith("disk/")]
    assert disk_files and all(archive.last(m) == (t0 + 60, float(m.split("f")[-1])) for m in disk_files)
    subprocess.run(["mount", "-o", "remount,size=32m", str(small_disk)], check=True)
    source.write_text(str(t0 + 120), encoding="utf-8")
    healed = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert healed.exit_code == 0, healed.output
    assert len([m for m in Archive(rrd, 60).metric_ids() if m.startswith("disk/")]) == FIELDS
    assert all(rrdtool_ok(f)[0] for f in rrd.rglob("*.rrd"))


def test_disk_full_error_names_the_cause(small_disk: Path) -> None:
    """Disk full while creating an RRD file: the error says the disk is full (No space left on device)."""
    archive = Archive(small_disk / "rrd", 60)
    spec = SeriesSpec("GAUGE", 120, None, None)
    result = archive.write([Update(f"fill/m{i}", int(time.time()), 1.0, spec) for i in range(40)])
    assert result.errors
    assert all("No space left on device" in msg for _, msg in result.errors), result.errors[0]


# -- a clock stepping backwards ---------------------------------------------------------------------


class SteppingClock:
    """Wall time plus an offset the test moves (an NTP step)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Constant(Slurper):
    """A slurper that reads 1.0 every run, stamped by the service's clock."""

    type_name = "constant"
    Settings = dict

    def __init__(self, sid: str) -> None:
        super().__init__(sid, {}, interval=1, timeout=1)
        self.runs = 0
        self.lock = threading.Lock()

    def metrics(self) -> Sequence[MetricSpec]:
        return [MetricSpec("v")]

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        with self.lock:
            self.runs += 1
        return [Reading("v", 1.0)]


def test_clock_stepping_backwards(tmp_path: Path, write_config: Callable[..., Path]) -> None:
    """System clock stepping back one hour under `rexmon run`: updates older than a file's last are skipped and counted, no error, no crash, no corrupt file; values resume once the clock passes the old time."""  # noqa: E501
    cfg = load(write_config(f'[archive]\nrrd_dir = "{tmp_path / "rrd"}"\nstep = 60\n'))
    clock = SteppingClock()
    slurper = Constant("steady")
    service = Service(cfg, slurpers=[slurper], clock=clock, flush_interval=0.2)
    service.start()
    try:
        wait_for(lambda: service.totals.written >= 6, 30, "values before the step")
        before = Archive(cfg.rrd_dir, 60).last("steady/v")
        clock.offset = -3600.0
        wait_for(lambda: service.totals.skipped_old >= 6, 30, "updates skipped while the clock is behind")
        clock.offset = 30.0
        written = service.totals.written
        wait_for(lambda: service.totals.written >= written + 6, 30, "values after the clock recovered")
    finally:
        service.stop()
    assert service.totals.errors == []
    assert before is not None
    after = Archive(cfg.rrd_dir, 60).last("steady/v")
    assert after is not None and after[0] > before[0] + 20 and after[1] == 1.0
    assert all(rrdtool_ok(f)[0] for f in cfg.rrd_dir.rglob("*.rrd"))
