"""The demo as a user meets it: a full site in a real Chromium, notifications, downtimes, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rexmon.demo.democonfig import BREACHING
from rexmon.demo.run import Demo, DemoOptions
from rexmon.demo.screenshots import capture

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo orchestration in-process on a free port, with a week of history."""
    site = Demo(DemoOptions(tmp_path_factory.mktemp("demo"), "127.0.0.1:0", workers=2))
    site.start()
    yield site
    site.stop()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read().decode())


def test_overview_shows_the_breaching_metric_and_graph_loads(chromium: Any, demo: Demo) -> None:
    shots = capture(chromium, demo.url, demo.dir / "screenshots")
    assert shots.breaching_icon in ("WARNING", "CRITICAL")
    assert shots.image_width > 0
    assert shots.overview.stat().st_size > 0 and shots.graph.stat().st_size > 0
    assert shots.group is not None and shots.group.stat().st_size > 0
    assert shots.phone is not None and shots.phone.stat().st_size > 0
    assert not shots.phone_scrolls, "the metric page scrolls sideways at 400 px"
    assert len(shots.y_ticks) >= 2 and all(t.strip() for t in shots.y_ticks), shots.y_ticks


def test_graphs_are_full_at_once(demo: Demo) -> None:
    slurper, metric = BREACHING.split("/")
    series = get_json(f"{demo.url}api/metrics/{slurper}/{metric}/series?period=week&resolution=300")
    values = [v for v in series["values"] if v is not None]
    assert len(values) > 1500  # a week at five minutes is 2016 points
    assert max(values) > 2 * min(values)  # the daily cycle is there


def test_every_simulated_slurper_has_metrics(demo: Demo) -> None:
    slurpers = {m["id"].split("/")[0] for m in _metric_list(demo)}
    assert {"condor", "slurm", "slurm-rest", "tape", "cpu", "load", "memory"} <= slurpers


def test_pending_reasons_of_the_history_are_written_by_the_first_live_run(demo: Demo) -> None:
    """The week's pending.<reason> names that squeue no longer lists read 0, not stale: after each Slurm
    slurper's first live run, every pending.* series of it was written by that run."""
    assert demo.history_end is not None
    for slurper in ("slurm", "slurm-rest"):
        deadline = time.monotonic() + 120
        while True:
            rows = {m["id"]: m for m in _metric_list(demo) if m["id"].startswith(f"{slurper}/")}
            run = rows.get(f"{slurper}/jobs.pending")
            if run is not None and run["time"] > demo.history_end:
                break
            assert time.monotonic() < deadline, f"{slurper} ran no live round"
            time.sleep(2)
        pending = {mid: m for mid, m in rows.items() if mid.startswith(f"{slurper}/pending.")}
        assert pending, f"the history wrote no {slurper}/pending.* series"
        assert all(m["time"] == run["time"] for m in pending.values()), pending
        assert all(m["icon"] != "stale" for m in pending.values()), pending


def _metric_list(demo: Demo) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = get_json(f"{demo.url}api/metrics")
    return rows


def test_the_alarm_is_notified_to_the_log(demo: Demo) -> None:
    log = demo.dir / "notifications.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and BREACHING not in log.read_text(encoding="utf-8"):
        time.sleep(1)
    text = log.read_text(encoding="utf-8")
    assert BREACHING in text and re.search(r"WARNING|CRITICAL", text)


def test_past_and_current_downtimes_are_listed(chromium: Any, demo: Demo) -> None:
    page = chromium.new_page()
    try:
        page.goto(demo.url + "downtimes")  # the active tab is the default
        active = page.locator("main").inner_text()
        page.screenshot(path=str(demo.dir / "screenshots" / "downtimes.png"), full_page=True)
        page.goto(demo.url + "downtimes?which=past")
        past = page.locator("main").inner_text()
    finally:
        page.close()
    assert "cn003 drained for a memory test" in active
    assert "LTO8 library firmware upgrade" not in active
    assert "LTO8 library firmware upgrade" in past


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """`rexmon demo` prints the URL and login; SIGINT stops it and the rrdcached it started."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rexmon = str(Path(sys.executable).parent / "rexmon")
    argv = [rexmon, "demo", "--listen", "127.0.0.1:0", "--dir", str(tmp_path), "--no-history"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    lines = []
    url = password = ""
    for line in proc.stdout:
        lines.append(line)
        if m := re.search(r"site:\s+(http://\S+)", line):
            url = m.group(1)
        if m := re.search(r"login:\s+demo / (\S+)", line):
            password = m.group(1)
        if "Press Ctrl-C" in line:
            break
    assert url and password, "".join(lines)
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
    pid = int((tmp_path / "rrdcached" / "rrdcached.pid").read_text().strip())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
