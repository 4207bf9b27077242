"""Fake batch-system commands and a loopback slurmrestd, both speaking the simulators' real formats.

``python -m rexmon.demo.fakecmd <command> <args...>`` prints what ``condor_status``, ``condor_q``,
``squeue``, ``sinfo``, ``sdiag`` or ``enstore`` would print. The clock and seed come from
``REXMON_FAKE_NOW`` and ``REXMON_FAKE_SEED`` when set (for reproducible demos).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from rexmon.demo import batch_sim as sim
from rexmon.demo.httpd import LoopbackHTTP

log = logging.getLogger(__name__)
COMMANDS = ("condor_status", "condor_q", "squeue", "sinfo", "sdiag", "enstore")
_REST_PATH = re.compile(r"^/slurm/(v\d+\.\d+\.\d+)/(jobs|nodes|partitions|diag)/?$")


def output(command: str, args: Sequence[str], now: float, seed: int) -> str:
    """What ``command args`` prints at ``now``; ValueError for what the fake does not know."""
    simple: dict[str, Callable[[float, int], str]] = {
        "condor_q": sim.condor_jobs,
        "squeue": sim.squeue,
        "sinfo": sim.sinfo,
        "sdiag": sim.sdiag,
    }
    if command in simple:
        return simple[command](now, seed)
    if command == "condor_status":
        return sim.condor_schedds(now, seed) if "-schedd" in args else sim.condor_slots(now, seed)
    if command == "enstore":
        return _enstore(list(args), now, seed)
    raise ValueError(f"unknown command {command!r} (known: {', '.join(COMMANDS)})")


def _enstore(args: list[str], now: float, seed: int) -> str:
    if args[:1] in (["library"], ["lib"]) and "--get-queue" in args:
        return sim.enstore_get_queue(now, seed, args[-1])
    if args[:1] in (["library"], ["lib"]) and "--queue-length" in args:
        return sim.enstore_queue_length(now, seed, args[-1])
    if args[:2] == ["mover", "--status"] and len(args) == 3:
        return sim.enstore_mover_status(now, seed, args[2])
    if args[:2] in (["config", "--show"], ["conf", "--show"]):
        return sim.enstore_config(now, seed)
    raise ValueError(f"enstore: unsupported arguments {' '.join(args)!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the fake commands."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(f"usage: python -m rexmon.demo.fakecmd <{'|'.join(COMMANDS)}> [args...]\n")
        return 2
    now = float(os.environ.get("REXMON_FAKE_NOW") or time.time())
    seed = int(os.environ.get("REXMON_FAKE_SEED") or 1)
    try:
        text = output(os.path.basename(args[0]), args[1:], now, seed)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(text)
    return 0


def install_fake_commands(bin_dir: Path) -> dict[str, Path]:
    """Write executable wrappers named like the real commands into ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    made = {}
    for name in COMMANDS:
        path = bin_dir / name
        path.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -m rexmon.demo.fakecmd {name} "$@"\n', encoding="utf-8"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        made[name] = path
    return made


# -- a loopback slurmrestd ---------------------------------------------------------------------------

#: (path) -> (HTTP status, body)
Responder = Callable[[str], tuple[int, str]]


def simulated_responder(clock: Callable[[], float] = time.time, seed: int = 1) -> Responder:
    """Answers slurmrestd paths from the simulators."""
    by_kind: dict[str, Callable[[float, int], str]] = {
        "jobs": sim.squeue,
        "nodes": sim.slurm_nodes,
        "partitions": sim.slurm_partitions,
        "diag": sim.sdiag,
    }

    def respond(path: str) -> tuple[int, str]:
        if path.rstrip("/") == "/openapi/v3":
            return 200, sim.slurm_openapi()
        m = _REST_PATH.match(path)
        if not m:
            return 404, _error_body(f"Unable to find path {path}")
        return 200, by_kind[m.group(2)](clock(), seed)

    return respond


def _error_body(text: str) -> str:
    return json.dumps(
        {"errors": [{"description": text, "error_number": 9001, "error": text}], "warnings": []}
    )


class FakeSlurmrestd:
    """slurmrestd on 127.0.0.1 with a free port, checking ``X-SLURM-USER-TOKEN``; ``start()``/``stop()``."""

    def __init__(self, token: str, responder: Responder | None = None) -> None:
        self.token = token
        self.responder = responder or simulated_responder()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._http = LoopbackHTTP("fake-slurmrestd")

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> FakeSlurmrestd:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.requests.append((self.path, dict(self.headers.items())))
                if self.headers.get("X-SLURM-USER-TOKEN") != owner.token:
                    status, body = 401, _error_body("Authentication failure")
                else:
                    status, body = owner.responder(self.path)
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("slurmrestd: " + format, *args)

        self._http.serve(Handler)
        return self

    def stop(self) -> None:
        self._http.stop()


if __name__ == "__main__":
    sys.exit(main())
