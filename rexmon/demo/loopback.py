"""The demo's small loopback web peer: the Enstore SAAG status page and a notification receiver.

apprise's ``json://127.0.0.1:<port>/notify`` target POSTs each notification as JSON; the receiver
appends one line per notification to ``notifications.log`` so the demo's alarms can be read in a file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from rexmon.demo import batch_sim as sim
from rexmon.demo.httpd import LoopbackHTTP

log = logging.getLogger(__name__)
SAAG_PATH = "/enstore/enstore_status_only.html"
NOTIFY_PATH = "/notify"


class LoopbackPeer:
    """HTTP on 127.0.0.1 (free port): GET the SAAG page, POST apprise JSON notifications."""

    def __init__(self, log_file: Path, clock: Callable[[], float] = time.time, seed: int = 1) -> None:
        self.log_file = log_file
        self.clock = clock
        self.seed = seed
        self._lock = threading.Lock()
        self._http = LoopbackHTTP("demo-loopback")

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123."""
        return self._http.url

    @property
    def notify_url(self) -> str:
        """The apprise URL that reaches the receiver."""
        return self.url.replace("http://", "json://", 1) + NOTIFY_PATH

    @property
    def saag_url(self) -> str:
        """The URL of the simulated enstore_status_only page."""
        return self.url + SAAG_PATH

    def record(self, body: bytes) -> None:
        """Append one notification to the log file."""
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            doc = {"raw": body.decode("utf-8", "replace")}
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        title = str(doc.get("title", "")).strip()
        message = " | ".join(str(doc.get("message", "")).split("\n"))
        line = f"{stamp} [{doc.get('type', 'info')}] {title}: {message}\n"
        with self._lock, self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(line)

    def start(self) -> LoopbackPeer:
        """Listen and serve in a daemon thread."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] != SAAG_PATH:
                    self._reply(404, "not found\n", "text/plain")
                    return
                text = sim.enstore_status_only(owner.clock(), owner.seed)
                self._reply(200, f"<html><body><pre>\n{text}</pre></body></html>\n", "text/html")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path.split("?")[0] != NOTIFY_PATH:
                    self._reply(404, "not found\n", "text/plain")
                    return
                owner.record(body)
                self._reply(200, "{}", "application/json")

            def _reply(self, status: int, text: str, ctype: str) -> None:
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("loopback: " + format, *args)

        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        self._http.serve(Handler)
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._http.stop()
