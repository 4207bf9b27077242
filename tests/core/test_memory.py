"""The collector's C heap (rexmon/memory.py): few malloc arenas, and the free pages of a past peak given
back. Each case runs in a fresh interpreter, since glibc's arenas are per process and made at first use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rexmon import memory
from tests.reliability.helpers import REPO

#: eight threads allocate at once (glibc makes an arena for each that finds the others busy), then one
#: thread keeps every 16th of 100,000 blocks of 2 KiB: 200 MB used once, 12 MB still held, spread out
PROBE = """
import ctypes, sys, threading
from rexmon import memory
mode = sys.argv[1]
if mode == "cap":
    memory.cap_arenas()
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
start = threading.Barrier(8)
def busy():
    start.wait()
    for _ in range(20):
        blocks = [bytes(1000) for _ in range(2000)]
        del blocks
threads = [threading.Thread(target=busy) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
kept = []
def peak():
    blocks = [bytes(2048) for _ in range(100_000)]
    kept.extend(blocks[::16])
worker = threading.Thread(target=peak)
worker.start()
worker.join()
before = rss_mb()
memory.trim() if mode in ("cap", "trim") else None
after = rss_mb()
libc = memory._glibc()
libc.open_memstream.restype = ctypes.c_void_p
buf, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = ctypes.c_void_p(libc.open_memstream(ctypes.byref(buf), ctypes.byref(size)))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(before, after, buf.value.decode().count("<heap nr="))
"""


def probe(mode: str) -> tuple[int, int, int]:
    """(RSS MB after the peak, RSS MB after the trim, malloc arenas) of a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    before, after, arenas = (int(x) for x in out.stdout.split())
    return before, after, arenas


def test_cap_arenas_keeps_the_threads_to_two_malloc_arenas() -> None:
    assert probe("none")[2] > 2  # glibc's own way: an arena per thread that found the others busy
    assert probe("cap")[2] <= 2


def test_trim_gives_back_the_pages_a_past_peak_left_free() -> None:
    before, after, _ = probe("none")
    assert after >= before - 5  # freed, yet still counted: glibc keeps it for reuse
    before, after, _ = probe("trim")
    assert before > 150 and after < before - 100, (before, after)  # 200 MB peak, 12 MB still held


def test_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc read MALLOC_ARENA_MAX when the process started (the systemd unit sets it): it stays."""
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.cap_arenas() == 4
