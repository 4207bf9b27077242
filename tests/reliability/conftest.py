"""Reliability suite: the slow gate (REXMON_SOAK=1), the report collector, and shared fixtures.

With ``REXMON_RELIABILITY_REPORT=path`` every test of this directory is recorded (its one-line docstring,
parameters and outcome) into a JSON file; ``python -m tests.reliability.report`` renders
docs/reliability.md from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.rrdcached import RRDCached, start_rrdcached
from tests.reliability.helpers import Collector, SourceServer, ensure_downtime_db
from tests.reliability.ledger import write_dist_info

ensure_downtime_db()
HERE = Path(__file__).resolve().parent
_RECORDS: list[dict[str, Any]] = []


def _ours(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow (soak) tests run only with REXMON_SOAK=1 (``make soak``)."""
    if os.environ.get("REXMON_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="soak test: run with `make soak` (REXMON_SOAK=1)")
    for item in items:
        if _ours(item) and item.get_closest_marker("slow"):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Record each test of this directory: docstring, parameters, outcome, xfail reason."""
    report = yield
    if not os.environ.get("REXMON_RELIABILITY_REPORT") or not _ours(item):
        return report
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        func = getattr(item, "function", None)
        doc = ((func.__doc__ if func else "") or "").strip().splitlines()
        callspec = getattr(item, "callspec", None)
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        else:
            outcome = report.outcome
        _RECORDS.append(
            {
                "nodeid": item.nodeid,
                "module": item.module.__name__.rsplit(".", 1)[-1] if item.module else "",
                "module_doc": ((item.module.__doc__ or "").strip().splitlines() or [""])[0]
                if item.module
                else "",
                "name": item.name,
                "doc": doc[0] if doc else item.name,
                "params": callspec.id if callspec else "",
                "outcome": outcome,
                "reason": getattr(report, "wasxfail", "")
                or (
                    str(report.longrepr[-1]) if report.skipped and isinstance(report.longrepr, tuple) else ""
                ),
            }
        )
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("REXMON_RELIABILITY_REPORT")
    if path and _RECORDS:
        Path(path).write_text(json.dumps(_RECORDS, indent=1), encoding="utf-8")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ledger slurper installed as a plugin (entry point), for this process and subprocesses."""
    root = write_dist_info(tmp_path / "plugins")
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def rrdcached(tmp_path: Path) -> Iterator[Callable[[], RRDCached]]:
    """(Re)start rrdcached on a unix socket with a journal; the same journal and socket every time."""
    started: list[RRDCached] = []

    def _start() -> RRDCached:
        d = start_rrdcached(tmp_path / "rrd", tmp_path / "rrdcached", tcp=False)
        started.append(d)
        return d

    yield _start
    for d in started:
        d.stop(kill=True)


@pytest.fixture
def collectors() -> Iterator[list[Collector]]:
    """Collectors started by a test; any still running at the end are killed with their group."""
    made: list[Collector] = []
    yield made
    for c in made:
        c.cleanup()


@pytest.fixture
def source_server() -> Iterator[Callable[[dict[str, bytes]], SourceServer]]:
    made: list[SourceServer] = []

    def _make(routes: dict[str, bytes]) -> SourceServer:
        srv = SourceServer(routes)
        made.append(srv)
        return srv

    yield _make
    for s in made:
        s.close()
