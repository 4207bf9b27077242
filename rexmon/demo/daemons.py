"""Processes and servers the demo starts and stops: rrdcached, the web site, a check for a STOMP broker."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class DaemonError(RuntimeError):
    """A daemon the demo needs could not be started; the message says which and why."""


@dataclass
class RRDCached:
    """A running rrdcached on a unix socket."""

    address: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGTERM (rrdcached flushes every file with -F), then wait."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def start_rrdcached(rrd_dir: Path, work: Path) -> RRDCached:
    """rrdcached -b rrd_dir -B -R on ``work``/rrdcached.sock, journal in ``work``/journal."""
    exe = shutil.which("rrdcached") or "/usr/bin/rrdcached"
    if not Path(exe).exists():
        raise DaemonError("rrdcached is not installed (apt-get install rrdcached, or run `make setup`)")
    rrd_dir.mkdir(parents=True, exist_ok=True)
    base = rrd_dir.resolve()  # rrdcached refuses a -b that goes through symlinks
    journal = work / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    sock = work / "rrdcached.sock"
    _stop_leftover(work / "rrdcached.pid")
    sock.unlink(missing_ok=True)
    argv = [
        exe,
        "-g",
        "-F",
        "-l",
        f"unix:{sock}",
        "-b",
        str(base),
        "-B",
        "-R",
        "-j",
        str(journal),
        "-p",
        str(work / "rrdcached.pid"),
        "-w",
        "300",
        "-z",
        "120",
        "-f",
        "3600",
        "-t",
        "4",
    ]
    # a new session: Ctrl-C in the terminal reaches the demo, which stops rrdcached after the collector
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with proc.stderr or open(os.devnull, "rb") as stderr:
                err = stderr.read().decode(errors="replace")
            raise DaemonError(f"rrdcached exited with status {proc.returncode}: {err.strip()[:300]}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock))
            return RRDCached(f"unix:{sock}", proc)
        except OSError:
            time.sleep(0.05)
    RRDCached(f"unix:{sock}", proc).stop()
    raise DaemonError(f"rrdcached did not listen on {sock} within 15 s")


def _stop_leftover(pid_file: Path, wait: float = 30.0) -> None:
    """Stop the rrdcached an earlier demo in the same directory left running (that demo was killed or
    crashed: its rrdcached runs in a session of its own), so this demo can start its own on the same
    pid file and socket. Only a process whose command line names this very pid file is stopped."""
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return  # no pid file, or its process is gone: rrdcached removes a stale pid file itself
    if not cmdline or Path(cmdline[0].decode(errors="replace")).name != "rrdcached":
        return
    if str(pid_file).encode() not in cmdline:
        return
    log.warning("stopping rrdcached (pid %d) left running by an earlier demo in %s", pid, pid_file.parent)
    os.kill(pid, signal.SIGTERM)  # with -F it writes every pending update first
    deadline = time.monotonic() + wait
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _running(pid):
        raise DaemonError(f"rrdcached (pid {pid}) left by an earlier demo did not stop within {wait:.0f} s")


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting for its parent has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class WebServer:
    """The Flask app served by waitress in a daemon thread."""

    def __init__(self, app: Any, host: str, port: int, threads: int = 8) -> None:
        from waitress.server import BaseWSGIServer, create_server

        try:
            server = create_server(app, host=host, port=port, threads=threads, ident="rexmon")
        except OSError as exc:
            raise DaemonError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        # one host and one port always give a single-socket server (a MultiSocketServer needs several)
        assert isinstance(server, BaseWSGIServer)
        self.server = server
        self.host = host
        self.port = int(server.getsockname()[1])
        self.thread = threading.Thread(target=self.server.run, name="rexmon-web", daemon=True)

    @property
    def url(self) -> str:
        """The site's address, e.g. http://127.0.0.1:8080/."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> WebServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.close()
        self.server.task_dispatcher.shutdown()
        self.thread.join(10)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout):
            return True
    except OSError:
        return False
