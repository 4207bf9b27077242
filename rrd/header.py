"""The last update time (and value) written in an RRD file's header, read without librrd or a lock.

librrd's readers take a read lock that makes a concurrent rrdcached write fail; the journal check
(:mod:`rrd.verify`) reads thousands of headers per sync, so on the archive host it reads the 8 bytes
itself. The layout (rrd_format.h, version 0003 on 64-bit Linux): a 128-byte static header with the
DS and RRA counts, 120 bytes per DS definition and per RRA definition, then the live header whose first
field is the last update time.
"""

from __future__ import annotations

import struct
from pathlib import Path

_COUNTS = struct.Struct("=dQQ")  # float cookie, ds_cnt, rra_cnt (at offset 16)
_LAST = struct.Struct("=q")
FLOAT_COOKIE = 8.642135e130
STAT_HEAD, DEF_SIZE = 128, 120
#: the live header (last update, microseconds), then the first DS's last value as text (char[30])
LIVE_HEAD, LAST_DS = 16, 30


def last_update(path: Path) -> int | None:
    """The file's last update (epoch seconds); None when it is missing or not an RRD this host wrote."""
    got = _live(path, _LAST.size)
    return None if got is None else int(_LAST.unpack_from(got)[0])


def last(path: Path) -> tuple[int, float | None] | None:
    """(last update, last value given to the first DS) as ``rrdtool lastupdate`` shows them; None when
    the file is missing or not readable this way (the caller then asks librrd or rrdcached)."""
    got = _live(path, LIVE_HEAD + LAST_DS)
    if got is None:
        return None
    text = got[LIVE_HEAD:].split(b"\0", 1)[0].decode("ascii", "replace")
    try:
        value = None if text in ("U", "") else float(text)
    except ValueError:
        return None
    return int(_LAST.unpack_from(got)[0]), value


def _live(path: Path, size: int) -> bytes | None:
    """``size`` bytes from the start of the live header (after the DS and RRA definitions)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(STAT_HEAD)
            if len(head) < STAT_HEAD or head[:4] != b"RRD\0":
                return None
            cookie, ds_cnt, rra_cnt = _COUNTS.unpack_from(head, 16)
            if cookie != FLOAT_COOKIE or not (0 < ds_cnt < 1000 and 0 < rra_cnt < 1000):
                return None
            fh.seek(STAT_HEAD + DEF_SIZE * (ds_cnt + rra_cnt))
            raw = fh.read(size)
    except OSError:
        return None
    return raw if len(raw) == size else None
