"""Graphite's carbon-cache as a benchmark peer: started on loopback with a generated config, unthrottled.

carbon-cache (Debian ``graphite-carbon``) takes the plaintext protocol (``<name> <value> <time>``) and
writes whisper files. It is configured like rexmon's archive: one file per metric with the same
retention (1 min for 2 days, 5 min for 2 weeks, 1 h for 62 days, 1 day for 2 years, one aggregation
where an RRD file keeps AVERAGE, MIN and MAX), MAX_CREATES_PER_MINUTE and MAX_UPDATES_PER_SECOND
unlimited. Whether a value is on disk is read from the whisper file itself (its format is small: a
header, archive descriptors, then (time, value) points).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.rrdcached import free_port

RETENTIONS = "60s:2d,5m:14d,1h:62d,1d:730d"
_META = struct.Struct("!2LfL")  # aggregation type, max retention, x-files factor, archive count
_ARCHIVE = struct.Struct("!3L")  # offset, seconds per point, points
_POINT = struct.Struct("!Ld")


@dataclass
class Carbon:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def whisper_dir(self) -> Path:
        return self.root / "whisper"

    def cpu_seconds(self) -> float:
        """User + system CPU of the carbon-cache process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), 10)

    def path(self, name: str) -> Path:
        return self.whisper_dir / (name.replace(".", "/") + ".wsp")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def available() -> bool:
    return shutil.which("carbon-cache") is not None


def start_carbon(root: Path) -> Carbon:
    """carbon-cache in the foreground on free loopback ports, its files under ``root``."""
    exe = shutil.which("carbon-cache")
    if exe is None:
        raise RuntimeError("carbon-cache is not installed (Debian package graphite-carbon: make test-setup)")
    conf = root / "conf"
    for d in (conf, root / "whisper", root / "log", root / "run"):
        d.mkdir(parents=True, exist_ok=True)
    port, pickle, query = free_port(), free_port(), free_port()
    (conf / "carbon.conf").write_text(
        "[cache]\n"
        f"STORAGE_DIR = {root}/\nLOCAL_DATA_DIR = {root}/whisper/\nCONF_DIR = {conf}/\n"
        f"LOG_DIR = {root}/log/\nPID_DIR = {root}/run/\nDATABASE = whisper\nUSER =\n"
        "MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n"
        f"LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {port}\n"
        f"PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle}\n"
        f"CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {query}\n"
        "ENABLE_UDP_LISTENER = False\nUSE_FLOW_CONTROL = True\nCACHE_WRITE_STRATEGY = sorted\n"
        "WHISPER_AUTOFLUSH = False\nWHISPER_FALLOCATE_CREATE = True\nLOG_UPDATES = False\n"
        "LOG_CREATES = False\nCARBON_METRIC_INTERVAL = 0\n",
        encoding="utf-8",
    )
    (conf / "storage-schemas.conf").write_text(
        f"[default]\npattern = .*\nretentions = {RETENTIONS}\n", encoding="utf-8"
    )
    (conf / "storage-aggregation.conf").write_text(
        "[default]\npattern = .*\nxFilesFactor = 0.5\naggregationMethod = average\n", encoding="utf-8"
    )
    proc = subprocess.Popen(
        [exe, f"--config={conf / 'carbon.conf'}", "--debug", "start"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=root,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"carbon-cache exited with {proc.returncode}; see {root / 'log'}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return Carbon(root, port, proc)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("carbon-cache did not start listening")


def has_point(path: Path, t: int) -> bool:
    """Whether the whisper file at ``path`` holds a point for time ``t`` in its finest archive."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_META.size + _ARCHIVE.size)
            if len(head) < _META.size + _ARCHIVE.size:
                return False
            offset, step, points = _ARCHIVE.unpack_from(head, _META.size)
            fh.seek(offset)
            base_t = _POINT.unpack(fh.read(_POINT.size))[0]
            if base_t == 0:
                return False
            slot = ((t - t % step) - base_t) // step % points
            fh.seek(offset + slot * _POINT.size)
            return bool(_POINT.unpack(fh.read(_POINT.size))[0] == t - t % step)
    except (OSError, struct.error):
        return False
