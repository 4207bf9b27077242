"""Reading the archive through rrdcached over TCP, on a host without the RRD files (a collector host).

rrdcached 1.7 answers ``LIST RECURSIVE /``, ``INFO`` and ``FETCH`` for files below its ``-b`` directory,
so ``rexmon metrics`` and the other archive reads work on every host that writes through it. Names are
relative to ``-b``, as for writes; the archive flushes a file's pending updates before it reads it.
"""

from __future__ import annotations

import math
import re

from rrd.names import check_id
from rrd.rrdcached import RRDCachedClient

_FETCH_HEADER = re.compile(r"^(\w+): (.*)$")


class RemoteReadError(Exception):
    """rrdcached could not answer a read; the message names the file and rrdcached's reason."""


def list_ids(client: RRDCachedClient) -> list[str]:
    """Every metric id with a file below rrdcached's base directory, sorted."""
    code, msg, lines = client.command("LIST RECURSIVE /")
    if code < 0:
        raise RemoteReadError(f"rrdcached at {client.address} cannot list its files: {msg}")
    out = []
    for line in lines:
        if line.endswith(".rrd") and line.count("/") == 1:
            try:
                out.append(check_id(line[: -len(".rrd")]))
            except ValueError:
                continue  # a file rexmon did not name (someone else's RRD in the same tree)
    return sorted(out)


def _lines(client: RRDCachedClient, command: str) -> list[str] | None:
    """The lines of rrdcached's answer to a command on one file; None when the file does not exist."""
    code, msg, lines = client.command(command)
    if code < 0:
        if "no such file" in msg.lower():
            return None
        raise RemoteReadError(f"{command}: {msg}")
    return lines


def info(client: RRDCachedClient, name: str) -> dict[str, object] | None:
    """``rrdtool info`` of one file as rrdcached reads it; None when there is no such file."""
    lines = _lines(client, f"INFO {name}")
    if lines is None:
        return None
    out: dict[str, object] = {}
    for line in lines:
        key, _, rest = line.partition(" ")
        kind, _, value = rest.partition(" ")
        if kind == "0":  # a float (rrdcached prints NaN for unknown)
            try:
                num = float(value)
            except ValueError:
                continue
            out[key] = None if math.isnan(num) else num
        elif kind == "1":  # a count
            try:
                out[key] = int(value)
            except ValueError:
                continue
        else:  # a string
            out[key] = value
    return out


def last(client: RRDCachedClient, name: str, ds: str) -> tuple[int, float | None] | None:
    """(time, value) of the last update as ``rrdtool lastupdate`` gives it; None when there is no file."""
    got = info(client, name)
    if got is None:
        return None
    stamp = got.get("last_update")
    raw = got.get(f"ds[{ds}].last_ds")
    if not isinstance(stamp, int):
        raise RemoteReadError(f"INFO {name}: no last_update in rrdcached's answer")
    try:
        value = None if raw in (None, "U") else float(str(raw))
    except ValueError:
        value = None
    return stamp, value


def fetch(
    client: RRDCachedClient, name: str, cf: str, start: int, end: int
) -> tuple[int, int, int, list[float | None]] | None:
    """(start, end, step, values) as ``rrdtool fetch`` gives them (rows labelled by their end)."""
    lines = _lines(client, f"FETCH {name} {cf} {int(start)} {int(end)}")
    if lines is None:
        return None
    head: dict[str, str] = {}
    values: list[float | None] = []
    for line in lines:
        m = _FETCH_HEADER.match(line)
        if m and not m.group(1).isdigit():
            head[m.group(1)] = m.group(2)
            continue
        _, _, cells = line.partition(": ")
        first = cells.split()[0] if cells.split() else "nan"
        try:
            v = float(first)
        except ValueError:
            v = math.nan
        values.append(None if math.isnan(v) else v)
    try:
        t0, t1, step = int(head["Start"]), int(head["End"]), int(head["Step"])
    except (KeyError, ValueError):
        raise RemoteReadError(f"FETCH {name}: unexpected answer from rrdcached ({lines[:3]!r})") from None
    return t0, t1, step, values


__all__ = ["RemoteReadError", "fetch", "info", "last", "list_ids"]
