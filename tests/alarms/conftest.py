"""Alarm fixtures: a SQLite database in tmp_path and a loopback HTTP receiver for apprise's json://."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def _downtime_db_stand_in() -> None:
    """Until downtime/db.py lands, give the store a Base and create_all (removed once it exists)."""
    if importlib.util.find_spec("downtime.db") is not None:
        return
    from sqlalchemy import create_engine
    from sqlalchemy.orm import DeclarativeBase

    class Base(DeclarativeBase):
        pass

    mod = types.ModuleType("downtime.db")
    mod.Base = Base  # type: ignore[attr-defined]
    mod.make_engine = create_engine  # type: ignore[attr-defined]
    mod.upgrade = lambda engine: Base.metadata.create_all(engine)  # type: ignore[attr-defined]
    sys.modules["downtime.db"] = mod


_downtime_db_stand_in()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Any]:
    """A migrated SQLite database in tmp_path."""
    from alarms.pipeline import database

    engine = database(f"sqlite:///{tmp_path / 'rexmon.db'}")
    yield engine
    engine.dispose()


class HTTPReceiver:
    """Records JSON bodies POSTed by apprise's json://; ``mode`` 'ok', 'fail' (HTTP 500) or 'hang'."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.mode = "ok"
        self.hung = threading.Event()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.mode == "hang":
                    receiver.hung.set()
                    receiver._release.wait(60)
                    return
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(data))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_receiver() -> Iterator[HTTPReceiver]:
    """A loopback HTTP endpoint for apprise json:// URLs."""
    r = HTTPReceiver()
    yield r
    r.close()
