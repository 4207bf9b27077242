"""The demo's rrdcached: an earlier demo that was killed or crashed leaves its rrdcached running."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from rexmon.demo.daemons import DaemonError, start_rrdcached


def test_rrdcached_left_by_a_killed_demo_is_stopped_and_replaced(tmp_path: Path) -> None:
    old = start_rrdcached(tmp_path / "rrd", tmp_path / "rrdcached")  # its demo "dies": never stopped
    new = None
    try:
        new = start_rrdcached(tmp_path / "rrd", tmp_path / "rrdcached")
        old.proc.wait(10)  # reaped here only because this test started it
        assert old.proc.returncode is not None
        assert new.proc.poll() is None and new.proc.pid != old.proc.pid
        pid = int((tmp_path / "rrdcached" / "rrdcached.pid").read_text().strip())
        assert pid == new.proc.pid
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(new.address[5:])
            s.sendall(b"PING\n")
            assert s.recv(100).startswith(b"0 PONG")
    finally:
        for d in (new, old):
            if d is not None:
                d.stop()


def test_a_pid_file_naming_another_program_is_left_alone(tmp_path: Path) -> None:
    """Only an rrdcached started on this very pid file is stopped (here the pid is pytest's own: a
    SIGTERM would end the run); anything else is rrdcached's own error, passed on."""
    work = tmp_path / "rrdcached"
    work.mkdir()
    (work / "rrdcached.pid").write_text(f"{os.getpid()}\n")
    with pytest.raises(DaemonError, match="Another rrdcached daemon is running"):
        start_rrdcached(tmp_path / "rrd", work)


def test_a_stale_pid_file_is_no_obstacle(tmp_path: Path) -> None:
    work = tmp_path / "rrdcached"
    work.mkdir()
    (work / "rrdcached.pid").write_text("4194303\n")  # no such process
    d = start_rrdcached(tmp_path / "rrd", work)
    try:
        assert d.proc.poll() is None
    finally:
        d.stop()
