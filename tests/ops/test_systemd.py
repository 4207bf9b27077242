"""etc/systemd/: the units pass ``systemd-analyze verify``, are hardened; the collector speaks sd_notify."""

from __future__ import annotations

import configparser
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ops.conftest import MUNIN_LOAD, REXMON, Rexmon

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "etc" / "systemd").glob("*.service"))
INSTALLED = "/opt/rexmon/bin/rexmon"  # where docs/deployment.md installs rexmon


def verify(directory: Path, *names: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is missing: `make test` installs systemd (Makefile APT_TEST)")
    return subprocess.run(
        [exe, "verify", *(f"./{n}" for n in names)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The unit files with ExecStart pointing at this virtualenv's rexmon (verify checks that it exists)."""
    for unit in UNITS:
        text = unit.read_text().replace(INSTALLED, REXMON[0])
        (tmp_path / unit.name).write_text(text)
    return tmp_path


def test_the_unit_files_pass_systemd_analyze_verify(units: Path) -> None:
    assert [u.name for u in UNITS] == ["rexmon-rrdcached.service", "rexmon-run.service", "rexmon-web.service"]
    result = verify(units, *(u.name for u in UNITS))
    # verify also loads the machine's other units and may warn about them (Debian's carbon-cache does)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "rexmon" in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def test_verify_would_catch_a_wrong_key(units: Path) -> None:
    """The check above means something: a misspelt key is reported."""
    bad = units / "rexmon-run.service"
    bad.write_text(bad.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    result = verify(units, bad.name)
    assert "Unknown key 'WatchdogSecs'" in result.stderr


def _service(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return dict(parser["Service"])


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_every_unit_is_hardened(unit: Path) -> None:
    svc = _service(unit)
    assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["ProtectHome"] == "yes" and svc["PrivateTmp"] == "yes"
    assert "/var/lib/rexmon" in svc["ReadWritePaths"].split()
    assert svc["User"] == "rexmon"


def test_the_collector_unit_is_type_notify_with_a_watchdog() -> None:
    svc = _service(ROOT / "etc" / "systemd" / "rexmon-run.service")
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main"
    assert int(svc["WatchdogSec"]) >= 10
    assert svc["ExecStart"].startswith(INSTALLED) and svc["ExecStart"].endswith(" run")
    # SIGTERM to the collector alone (tests/scaleout stops it so): not to every plugin caught mid-run
    assert svc["KillMode"] == "mixed"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A unix datagram socket in the place of systemd's $NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def _received(sock: socket.socket, seconds: float, after: str) -> list[tuple[float, str]]:
    """What arrives within ``seconds`` from the first message ``after`` (waited for up to 60 s: a
    collector starting on a busy machine takes a while to import its libraries)."""
    out: list[tuple[float, str]] = []
    end = time.monotonic() + 60
    while time.monotonic() < end and not out:
        with contextlib.suppress(TimeoutError):
            message = sock.recv(4096).decode()
            out = [(time.monotonic(), message)] if message == after else []
    end = time.monotonic() + seconds
    while out and time.monotonic() < end:
        with contextlib.suppress(TimeoutError):  # nothing within 0.2 s: look again
            out.append((time.monotonic(), sock.recv(4096).decode()))
    return out


def _collector(
    write_config: Callable[..., Path], tmp_path: Path, archive: str, sock: socket.socket
) -> Rexmon:
    cfg = write_config(
        f"""
        {archive}
        [[slurper]]
        id = "load"
        type = "munin"
        interval = 1
        plugin = "{MUNIN_LOAD}"
        """
    )
    proc = Rexmon(["--config", str(cfg), "run"], tmp_path / "run.log")
    proc.env = {"NOTIFY_SOCKET": str(sock.getsockname())}
    return proc.start()


def test_the_collector_says_ready_then_pings_the_watchdog_after_every_writer_round(
    write_config: Callable[..., Path], tmp_path: Path, notify_socket: socket.socket
) -> None:
    run = _collector(write_config, tmp_path, "", notify_socket)
    try:
        got = _received(notify_socket, 6.0, after="READY=1")
    finally:
        run.stop()
    states = [s for _, s in got]
    assert states and states[0] == "READY=1", states
    pings = [t for t, s in got if s == "WATCHDOG=1"]
    assert len(pings) >= 3
    assert max(b - a for a, b in zip(pings, pings[1:], strict=False)) < 3.0


def test_a_stuck_writer_stops_the_watchdog_pings(
    write_config: Callable[..., Path], tmp_path: Path, notify_socket: socket.socket
) -> None:
    """An rrdcached that accepts and never answers holds the writer: systemd would restart the collector."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        port = hole.getsockname()[1]
        archive = f'[archive]\nrrd_dir = "{tmp_path / "rrd"}"\nrrdcached = "127.0.0.1:{port}"\n'
        run = _collector(write_config, tmp_path, archive, notify_socket)
        try:
            got = _received(notify_socket, 8.0, after="READY=1")
            alive = run.proc is not None and run.proc.poll() is None
        finally:
            run.stop()
    assert [s for _, s in got] == ["READY=1"]
    assert alive  # the process runs, only its writer is stuck: exactly what WatchdogSec catches
