"""Fixtures for operating rexmon: real ``rexmon run`` / ``rexmon web`` processes, Prometheus, SMTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures.prometheus import prometheus_server  # noqa: F401 (a fixture)

REXMON = [str(Path(sys.executable).parent / "rexmon")]  # the virtualenv's entry point
MUNIN_LOAD = Path("/usr/share/munin/plugins/load")


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str) -> tuple[int, dict[str, object]]:
    status, body = get(url)
    return status, json.loads(body)


@dataclass
class Rexmon:
    """One ``rexmon`` process started by a test (its output in ``log``)."""

    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    #: added to the environment
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> Rexmon:
        out = self.log.open("ab")
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen([*REXMON, *self.args], stdout=out, stderr=subprocess.STDOUT, env=env)
        out.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def wait_for(self, url: str, status: int = 200, timeout: float = 60) -> bytes:
        """Wait until ``url`` answers ``status``; fail with the process' log if it never does."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"{self.args} exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                got, body = get(url, timeout=5)
                if got == status:
                    return body
                last = (got, body[:300])
            except OSError as exc:
                last = exc
            time.sleep(0.2)
        pytest.fail(
            f"{url} did not answer {status} within {timeout} s (last: {last}): {self.log.read_text()[-3000:]}"
        )


@dataclass
class Processes:
    tmp_path: Path
    started: list[Rexmon] = field(default_factory=list)

    def __call__(self, config: Path, *args: str) -> Rexmon:
        name = f"{args[0]}-{len(self.started)}"
        p = Rexmon(["--config", str(config), "--log-level", "info", *args], self.tmp_path / f"{name}.log")
        self.started.append(p.start())
        return p


@pytest.fixture
def rexmon_process(tmp_path: Path) -> Iterator[Callable[..., Rexmon]]:
    """rexmon_process(config, "run") -> a running ``rexmon`` process, stopped at the end of the test."""
    procs = Processes(tmp_path)
    yield procs
    for p in procs.started:
        p.stop()


def broken_plugin(directory: Path) -> Path:
    """A Munin plugin that answers ``config`` but fails every fetch (exit 1, a message on stderr)."""
    path = directory / "broken"
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = config ]; then echo "graph_title broken"; echo "x.label x"; exit 0; fi\n'
        'echo "cannot read the sensor" >&2\nexit 1\n'
    )
    path.chmod(0o755)
    return path
