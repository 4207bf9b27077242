"""Helpers for transfer tests: read the archive as a user does (``rexmon metrics --json``), wait for it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rexmon.cli import cli
from rexmon.config import load
from rexmon.service import RunResult, Service

Metrics = Callable[[Path], dict[str, float | None]]


@pytest.fixture
def metrics(runner: CliRunner) -> Metrics:
    """metrics(config) -> {metric id: last value} from ``rexmon metrics --json``."""

    def _read(config: Path) -> dict[str, float | None]:
        res = runner.invoke(cli, ["--config", str(config), "metrics", "--json"])
        assert res.exit_code == 0, res.output
        return {row["id"]: row["value"] for row in json.loads(res.output)}

    return _read


def wait_for(what: str, check: Callable[[], bool], limit: float = 90.0) -> None:
    """Poll ``check`` until true; fail naming ``what`` (a deadline for a broken build, not a timing check)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"gave up waiting for {what}")


def run_once(config: Path, now: float | None = None) -> dict[str, RunResult]:
    """One pass of the collector (what ``rexmon run --once`` does, without the alarm side), at ``now``."""
    service = Service(load(config)) if now is None else Service(load(config), clock=lambda: now)
    return {r.slurper_id: r for r in service.run_once()}
