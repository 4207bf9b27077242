"""Ingestion: 10,000 metrics per round through rexmon's archive (rrdcached BATCH) against peers.

Peers measured in the same run:
- Graphite's carbon-cache (Debian ``graphite-carbon``, unthrottled: MAX_CREATES_PER_MINUTE and
  MAX_UPDATES_PER_SECOND = inf, the same retention, started on loopback with a generated config): the
  first round of 10,000 new metrics until every file holds its value, values accepted and persisted
  per second, CPU per million values (its process; rexmon's is this process plus rrdcached);
- raw rrdcached BATCH: pre-formatted UPDATE lines written straight to the socket (the ceiling);
- one ``rrdtool update`` process per value (how many home-grown collectors write), on a sample.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.carbon import Carbon, available, has_point, start_carbon
from bench.common import cpu_seconds, print_table, scratch, standalone, summary
from rrd.archive import Archive, SeriesSpec, Update
from tests.fixtures.rrdcached import RRDCached, start_rrdcached

SPEC = SeriesSpec("GAUGE", 120, 0, None)
#: how long a peer may take to put a round on disk before the benchmark gives up
PERSIST_TIMEOUT_S = 300.0


def _ids(n: int) -> list[str]:
    return [f"s{i // 100:03d}/metric{i % 100:02d}" for i in range(n)]


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _raw_batch(address: str, lines: list[str]) -> None:
    """The peer: what rrdcached itself costs for the same BATCH, with no rexmon code at all."""
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(address[5:])
    sock.sendall(b"BATCH\n" + "\n".join(lines).encode() + b"\n.\n")
    buf = b""
    while buf.count(b"\n") < 2:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    sock.close()
    second = buf.split(b"\n")[1]
    if not second.startswith(b"0 "):
        raise RuntimeError(f"raw BATCH reported errors: {second[:200]!r}")


# -- rexmon ------------------------------------------------------------------------------------------
class Rexmon:
    """rexmon's archive on a fresh rrdcached (unix socket) under ``root``."""

    def __init__(self, root: Path) -> None:
        self.daemon: RRDCached = start_rrdcached(root / "rrd", root / "daemon", tcp=False)
        self.archive = Archive(root / "rrd", 60, self.daemon.address, journal_dir=root / "journal")

    def cpu(self) -> float:
        return cpu_seconds() + _proc_cpu(self.daemon.proc.pid)

    def write(self, ids: list[str], t: int, r: int) -> None:
        res = self.archive.write([Update(m, t, float(i + r), SPEC) for i, m in enumerate(ids)])
        assert res.written == len(ids) and not res.errors, (res.written, res.errors[:3])

    def persist(self) -> None:
        """Every value written so far in its file (FLUSH, then read back: Archive.sync)."""
        assert self.archive.sync()

    def close(self) -> None:
        self.archive.close()
        self.daemon.stop()


# -- carbon-cache ------------------------------------------------------------------------------------
class CarbonPeer:
    """carbon-cache under ``root``; metric ``s000/metric00`` is ``s000.metric00``."""

    def __init__(self, root: Path) -> None:
        self.carbon: Carbon = start_carbon(root)
        self.sock = self.carbon.connect()
        self.sent: tuple[list[str], int] = ([], 0)

    def cpu(self) -> float:
        return cpu_seconds() + self.carbon.cpu_seconds()

    def write(self, ids: list[str], t: int, r: int) -> None:
        self.sock.sendall("".join(f"{m.replace('/', '.')} {i + r} {t}\n" for i, m in enumerate(ids)).encode())
        self.sent = (ids, t)

    def persist(self) -> None:
        """Wait until every file holds the last round's value (carbon writes a metric's points at once)."""
        ids, t = self.sent
        pending = [self.carbon.path(m.replace("/", ".")) for m in ids]
        deadline = time.monotonic() + PERSIST_TIMEOUT_S
        while pending:
            pending = [p for p in pending if not has_point(p, t)]
            if pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"carbon-cache: {len(pending)} files still without their value")
                time.sleep(0.02)

    def close(self) -> None:
        self.sock.close()
        self.carbon.stop()


Peer = Callable[[Path], Any]


def _first_round(make: Peer, ids: list[str], t: int) -> tuple[float, float]:
    """(seconds until every new metric's first value is on disk, CPU seconds) on a fresh archive."""
    with scratch("rexmon-bench-first-") as tmp:
        peer = make(tmp)
        try:
            cpu0, start = peer.cpu(), time.perf_counter()
            peer.write(ids, t, 0)
            peer.persist()
            return time.perf_counter() - start, peer.cpu() - cpu0
        finally:
            peer.close()


def _steady(make: Peer, ids: list[str], t0: int, rounds: int) -> dict[str, Any]:
    """Rounds of one value per existing metric: accepted values/s per round, persisted values/s over
    all rounds (until the last one is on disk), CPU seconds per million values."""
    with scratch("rexmon-bench-steady-") as tmp:
        peer = make(tmp)
        try:
            peer.write(ids, t0, 0)
            peer.persist()
            accepted = []
            cpu0, start = peer.cpu(), time.perf_counter()
            for r in range(1, rounds + 1):
                began = time.perf_counter()
                peer.write(ids, t0 + 60 * r, r)
                accepted.append(len(ids) / (time.perf_counter() - began))
            peer.persist()
            elapsed, cpu = time.perf_counter() - start, peer.cpu() - cpu0
        finally:
            peer.close()
    values = len(ids) * rounds
    return {
        "accepted_values_per_s": summary(accepted),
        "persisted_values_per_s": values / elapsed,
        "cpu_s_per_million_values": cpu / values * 1e6,
    }


def run(quick: bool = False, metrics: int = 10_000, rounds: int = 15, repeats: int = 3) -> dict[str, Any]:
    if quick:
        metrics, rounds, repeats = 2_000, 5, 1
    ids = _ids(metrics)
    t0 = (int(time.time()) // 60 - 10 * rounds) * 60
    out: dict[str, Any] = {"metrics_per_round": metrics, "rounds": rounds}
    out.update(_batch_vs_raw(ids, rounds, t0))
    if not available():
        raise RuntimeError("carbon-cache is not installed (graphite-carbon; make test-setup)")
    firsts: dict[str, list[float]] = {"rexmon": [], "carbon": []}
    cpus: dict[str, list[float]] = {"rexmon": [], "carbon": []}
    for _ in range(repeats):  # alternate, so both see the same machine
        for name, make in (("rexmon", Rexmon), ("carbon", CarbonPeer)):
            seconds, cpu = _first_round(make, ids, t0)
            firsts[name].append(seconds)
            cpus[name].append(cpu)
    rx_first, cc_first = summary(firsts["rexmon"]), summary(firsts["carbon"])
    rx, cc = _steady(Rexmon, ids, t0, rounds), _steady(CarbonPeer, ids, t0, rounds)
    out.update(
        {
            "first_round_on_disk_s": {"rexmon": rx_first, "carbon_cache": cc_first},
            "first_round_cpu_s": {"rexmon": summary(cpus["rexmon"]), "carbon_cache": summary(cpus["carbon"])},
            "ratio_first_round_rexmon_over_carbon": rx_first["median"] / cc_first["median"],
            "steady": {"rexmon": rx, "carbon_cache": cc},
            "ratio_persisted_rexmon_over_carbon": rx["persisted_values_per_s"] / cc["persisted_values_per_s"],
            "ratio_cpu_rexmon_over_carbon": rx["cpu_s_per_million_values"] / cc["cpu_s_per_million_values"],
        }
    )
    _print(out, metrics, rounds, repeats)
    return out


def _print(out: dict[str, Any], metrics: int, rounds: int, repeats: int) -> None:
    rx, raw = out["rexmon_values_per_s"], out["raw_rrdcached_batch_values_per_s"]
    print_table(
        f"ingestion, {metrics:,} metrics per round, {rounds} rounds (median [min-max])",
        [
            ("rexmon archive -> rrdcached BATCH", rx["median"],
             f"values/s [{rx['min']:,.0f}-{rx['max']:,.0f}]"),
            ("raw rrdcached BATCH (peer)", raw["median"], f"values/s [{raw['min']:,.0f}-{raw['max']:,.0f}]"),
            ("one `rrdtool update` per value (peer)", out["rrdtool_update_per_value_values_per_s"],
             "values/s (300-value sample)"),
            ("raw rrdcached / rexmon", out["ratio_raw_over_rexmon"], "x (target: <= 2)"),
            ("rexmon / rrdtool update per value", out["ratio_rexmon_over_rrdtool_update"], "x"),
        ],
    )  # fmt: skip
    first, steady = out["first_round_on_disk_s"], out["steady"]
    rows: list[tuple[str, Any, str]] = []
    for name in ("rexmon", "carbon_cache"):
        f = first[name]
        rows.append((f"{name}: first round, {metrics:,} new metrics on disk", f["median"],
                     f"s [{f['min']:.2f}-{f['max']:.2f}] over {repeats}"))  # fmt: skip
    rows.append(
        (
            "rexmon / carbon-cache, first round",
            out["ratio_first_round_rexmon_over_carbon"],
            "x (target: <= 1)",
        )
    )
    for name in ("rexmon", "carbon_cache"):
        s = steady[name]
        a = s["accepted_values_per_s"]
        rows += [
            (f"{name}: accepted", a["median"], f"values/s [{a['min']:,.0f}-{a['max']:,.0f}]"),
            (f"{name}: persisted", s["persisted_values_per_s"], f"values/s ({rounds} rounds until on disk)"),
            (f"{name}: CPU", s["cpu_s_per_million_values"], "s per million values"),
        ]
    rows += [
        ("rexmon / carbon-cache, persisted values/s", out["ratio_persisted_rexmon_over_carbon"], "x"),
        ("rexmon / carbon-cache, CPU per value", out["ratio_cpu_rexmon_over_carbon"], "x"),
    ]
    print_table(f"against carbon-cache, {metrics:,} metrics, same retention (median [min-max])", rows)


def _batch_vs_raw(ids: list[str], rounds: int, t0: int) -> dict[str, Any]:
    """rexmon's BATCH against raw BATCH lines on the same rrdcached and files, and rrdtool update."""
    metrics = len(ids)
    with scratch("rexmon-bench-ingest-") as tmp:
        daemon = start_rrdcached(tmp / "rrd", tmp / "daemon", tcp=False)
        try:
            archive = Archive(tmp / "rrd", 60, daemon.address)
            first = archive.write([Update(m, t0, 1.0, SPEC) for m in ids])
            assert not first.errors, first.errors[:3]
            rexmon_rates, raw_rates = [], []
            names = [str(archive.path(m)) for m in ids]
            for r in range(rounds):
                t = t0 + 60 * (2 * r + 1)
                batch = [Update(m, t, float(i + r), SPEC) for i, m in enumerate(ids)]
                start = time.perf_counter()
                res = archive.write(batch)
                rexmon_rates.append(metrics / (time.perf_counter() - start))
                assert res.written == metrics and not res.errors, (res.written, res.errors[:3])
                lines = [f"UPDATE {n} {t + 60}:{i + r}" for i, n in enumerate(names)]
                start = time.perf_counter()
                _raw_batch(daemon.address, lines)
                raw_rates.append(metrics / (time.perf_counter() - start))
            archive.close()
            per_process = _rrdtool_update_rate(archive, ids[:300], t0 + 60 * (2 * rounds + 1))
        finally:
            daemon.stop()
    rx, raw = summary(rexmon_rates), summary(raw_rates)
    return {
        "rexmon_values_per_s": rx,
        "raw_rrdcached_batch_values_per_s": raw,
        "rrdtool_update_per_value_values_per_s": per_process,
        "ratio_raw_over_rexmon": raw["median"] / rx["median"],
        "ratio_rexmon_over_rrdtool_update": rx["median"] / per_process,
    }


def _rrdtool_update_rate(archive: Archive, ids: list[str], t: int) -> float:
    paths = [str(archive.path(m)) for m in ids]
    start = time.perf_counter()
    for i, p in enumerate(paths):
        subprocess.run(["rrdtool", "update", p, f"{t}:{i}"], check=True)
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    standalone(run, __doc__)


if __name__ == "__main__":
    main()
