"""The drawing processes of a web server that stops without shutting its pool down (SIGTERM, SIGKILL)
end with it: before, each stop of `rexmon web` left its drawing processes and their resource tracker
running for good."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import REPO

#: a process that draws one graph (which starts the pool), prints its children's pids and waits
SERVER = """
import multiprocessing, sys, time
from pathlib import Path
from rrd.archive import Archive, SeriesSpec, Update
from rrd.graph import GraphRenderer
from rrd.graphargs import GraphSpec

if __name__ == "__main__":
    now = int(time.time()) // 60 * 60
    archive = Archive(Path(sys.argv[1]), 60)
    spec = SeriesSpec("GAUGE", 120, 0, None)
    archive.write([Update("load/load", now - 600 + 60 * i, float(i), spec) for i in range(10)])
    GraphRenderer(archive).render(GraphSpec(("load/load",), now - 600, now), use_cache=False)
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").is_dir() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_drawing_processes_end_with_the_server(tmp_path: Path, sig: signal.Signals) -> None:
    script = tmp_path / "server.py"  # spawn re-imports the main module: it must be a file
    script.write_text(SERVER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "rrd")], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        drawers = [int(p) for p in server.stdout.readline().split()]
        assert drawers and all(_alive(p) for p in drawers), drawers
        server.send_signal(sig)
        server.wait(30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in drawers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in drawers if _alive(p)], "drawing processes outlived the server"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        if server.stdout is not None:
            server.stdout.close()
