"""The last update time written in an RRD file's header, read without librrd and without a lock.

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


def last_update(path: Path) -> int | None:
    """The file's last update (epoch seconds); None when it is missing or not an RRD this host wrote."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(STAT_HEAD)
            if len(head) < STAT_HEAD or head[:4] != b"RRD\0":
                return None
            cookie, ds_cnt, rra_cnt = _COUNTS.unpack_from(head, 16)
            if cookie != FLOAT_COOKIE or not (0 < ds_cnt < 1000 and 0 < rra_cnt < 1000):
                return None
            fh.seek(STAT_HEAD + DEF_SIZE * (ds_cnt + rra_cnt))
            raw = fh.read(_LAST.size)
    except OSError:
        return None
    return int(_LAST.unpack(raw)[0]) if len(raw) == _LAST.size else None
