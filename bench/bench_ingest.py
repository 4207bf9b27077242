"""Ingestion: 10,000 metrics per round through rexmon's archive (rrdcached BATCH) against peers.

Peers measured in the same run, on the same rrdcached and the same files:
- raw rrdcached BATCH: pre-formatted UPDATE lines written straight to the socket (the ceiling);
- one ``rrdtool update`` process per value (how many home-grown collectors write), on a sample.
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

from bench.common import print_table, scratch, standalone, summary
from rrd.archive import Archive, SeriesSpec, Update
from tests.fixtures.rrdcached import start_rrdcached

SPEC = SeriesSpec("GAUGE", 120, 0, None)


def _ids(n: int) -> list[str]:
    return [f"s{i // 100:03d}/metric{i % 100:02d}" for i in range(n)]


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


def run(quick: bool = False, metrics: int = 10_000, rounds: int = 15) -> dict[str, Any]:
    if quick:
        metrics, rounds = 2_000, 5
    ids = _ids(metrics)
    with scratch("rexmon-bench-ingest-") as tmp:
        daemon = start_rrdcached(tmp / "rrd", tmp / "daemon", tcp=False)
        try:
            archive = Archive(tmp / "rrd", 60, daemon.address)
            t0 = (int(time.time()) // 60 - 10 * rounds) * 60
            start = time.perf_counter()
            first = archive.write([Update(m, t0, 1.0, SPEC) for m in ids])
            create_s = time.perf_counter() - start
            assert not first.errors, first.errors[:3]
            rexmon_rates, raw_rates = [], []
            for r in range(rounds):
                t = t0 + 60 * (2 * r + 1)
                batch = [Update(m, t, float(i + r), SPEC) for i, m in enumerate(ids)]
                start = time.perf_counter()
                res = archive.write(batch)
                rexmon_rates.append(metrics / (time.perf_counter() - start))
                assert res.written == metrics and not res.errors, (res.written, res.errors[:3])
                names = [str(archive.path(m)) for m in ids]
                lines = [f"UPDATE {n} {t + 60}:{i + r}" for i, n in enumerate(names)]
                start = time.perf_counter()
                _raw_batch(daemon.address, lines)
                raw_rates.append(metrics / (time.perf_counter() - start))
            archive.flush()
            archive.close()
            per_process = _rrdtool_update_rate(archive, ids[:300], t0 + 60 * (2 * rounds + 1))
        finally:
            daemon.stop()
    rx, raw = summary(rexmon_rates), summary(raw_rates)
    out = {
        "metrics_per_round": metrics,
        "rounds": rounds,
        "create_seconds_first_round": create_s,
        "rexmon_values_per_s": rx,
        "raw_rrdcached_batch_values_per_s": raw,
        "rrdtool_update_per_value_values_per_s": per_process,
        "ratio_raw_over_rexmon": raw["median"] / rx["median"],
        "ratio_rexmon_over_rrdtool_update": rx["median"] / per_process,
    }
    print_table(
        f"ingestion, {metrics:,} metrics per round, {rounds} rounds (median [min-max])",
        [
            (
                "rexmon archive -> rrdcached BATCH",
                rx["median"],
                f"values/s [{rx['min']:,.0f}-{rx['max']:,.0f}]",
            ),
            ("raw rrdcached BATCH (peer)", raw["median"], f"values/s [{raw['min']:,.0f}-{raw['max']:,.0f}]"),
            ("one `rrdtool update` per value (peer)", per_process, "values/s (300-value sample)"),
            ("raw rrdcached / rexmon", out["ratio_raw_over_rexmon"], "x (target: <= 2)"),
            ("rexmon / rrdtool update per value", out["ratio_rexmon_over_rrdtool_update"], "x"),
            ("first round incl. creating the files", create_s, "s"),
        ],
    )
    return out


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
