"""Processes and servers the demo starts and stops: rrdcached, the web site, a check for a STOMP broker."""

from __future__ import annotations

import logging
import shutil
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
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise DaemonError(f"rrdcached exited with status {proc.returncode}: {err.strip()[:300]}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock))
            return RRDCached(f"unix:{sock}", proc)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise DaemonError(f"rrdcached did not listen on {sock} within 15 s")


class WebServer:
    """The Flask app served by waitress in a daemon thread."""

    def __init__(self, app: Any, host: str, port: int, threads: int = 8) -> None:
        from waitress.server import create_server

        try:
            self.server = create_server(app, host=host, port=port, threads=threads, ident="rexmon")
        except OSError as exc:
            raise DaemonError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self.port = int(self.server.effective_port)
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
