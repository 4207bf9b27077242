"""Real processes and peers for the reliability tests: ``rexmon run`` as a subprocess, a ledger writer,
Munin plugin scripts and a loopback HTTP source that can misbehave on demand."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.reliability.ledger import value_at

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until ``predicate`` holds; fail naming ``what`` (a bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what} after {timeout:g} s")


#: the real CLI; until downtime/db.py lands, with the alarms suite's stand-in for it (a no-op after)
LAUNCH = (
    "import importlib.util\n"
    "if importlib.util.find_spec('downtime.db') is None:\n"
    "    import tests.alarms.conftest\n"
    "from rexmon.cli import main\n"
    "main()\n"
)


def ensure_downtime_db() -> None:
    """In-process: the same stand-in for downtime/db.py until it lands."""
    import importlib.util

    if importlib.util.find_spec("downtime.db") is None:
        import tests.alarms.conftest  # noqa: F401


class Collector:
    """``rexmon run`` in its own session, killed for real."""

    def __init__(self, config: Path, plugins: Path, log: Path) -> None:
        self.config = config
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(REPO)])}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-c", LAUNCH, "--config", str(self.config), "--log-level", "info", "run"]
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=self.env,
                stdout=fh,
                stderr=fh,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)
        return int(self.proc.returncode)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class LedgerWriter:
    """Appends "epoch value" lines, ``spacing`` synthetic seconds apart, ``rate`` lines a tick, at most
    ``limit`` lines (so the series stays inside the archive's finest RRA)."""

    def __init__(
        self,
        path: Path,
        first: int,
        *,
        spacing: int = 60,
        rate: int = 5,
        tick: float = 0.1,
        limit: int = 2400,
    ) -> None:
        self.path = path
        self.first = first
        self.next = first
        self.spacing = spacing
        self.rate = rate
        self.tick = tick
        self.limit = limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)

    def start(self) -> LedgerWriter:
        self.path.touch()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            with self.path.open("a", encoding="utf-8") as fh:
                for _ in range(self.rate):
                    if (self.next - self.first) // self.spacing >= self.limit:
                        return
                    fh.write(f"{self.next} {value_at(self.next)}\n")
                    self.next += self.spacing

    def stop(self) -> int:
        """Stop writing; the epoch of the last line written."""
        self._stop.set()
        self._thread.join(10)
        return self.next - self.spacing


def checkpoint(state_dir: Path, slurper_id: str) -> int:
    """The ledger slurper's committed checkpoint (0 before the first commit)."""
    try:
        return int(json.loads((state_dir / f"{slurper_id}.json").read_text(encoding="utf-8"))["through"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def rrdtool_ok(path: Path, daemon: str = "") -> tuple[bool, str]:
    """Does ``rrdtool info`` accept the file and ``rrdtool dump`` produce XML that parses?"""
    extra = ["--daemon", daemon] if daemon else []
    info = subprocess.run(["rrdtool", "info", *extra, str(path)], capture_output=True, text=True, timeout=60)
    if info.returncode != 0 or "ds[value].type" not in info.stdout:
        return False, f"info: {info.stderr.strip()}"
    dump = subprocess.run(["rrdtool", "dump", *extra, str(path)], capture_output=True, timeout=60)
    if dump.returncode != 0:
        return False, f"dump: {dump.stderr.decode(errors='replace').strip()}"
    try:
        root = ET.fromstring(dump.stdout)
    except ET.ParseError as exc:
        return False, f"dump is not XML: {exc}"
    return root.tag == "rrd", "ok"


def munin_plugin(directory: Path, name: str, body: str) -> Path:
    """A Munin plugin script: ``body`` is shell run for both ``config`` and fetch ($1 tells which)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


#: a scripted plugin printing epoch:value pairs read from a file, like a plugin with dirtyconfig
EPOCH_PLUGIN = """\
if [ "$1" = config ]; then
  echo "graph_title epoch values"; echo "x.label x"; echo "x.type GAUGE"; exit 0
fi
echo "x.value $(date +%s):$(cat "$SOURCE" 2>/dev/null || echo U)"
"""


class Source(BaseHTTPRequestHandler):
    """Answers every GET according to the server's ``mode`` and ``routes`` (path prefix -> body)."""

    server: SourceServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        srv = self.server
        srv.hits.append(self.path)
        mode = srv.mode
        if mode == "slow":
            time.sleep(srv.delay)
        body = next((b for p, b in srv.routes.items() if self.path.startswith(p)), b"{}")
        if mode == "500":
            self._send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        elif mode == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif mode == "cut":
            self._send(200, body[: len(body) // 2], "application/json")
        elif mode == "latin1":
            self._send(200, b"\xff\xfe\xc3(" + body[:40] + b"\x80\x81", "application/json")
        else:
            self._send(200, body, "application/json")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): that is the point of the "slow" mode

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class SourceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), Source)
        self.routes = routes
        self.mode = "ok"
        self.delay = 3.0
        self.hits: list[str] = []
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
