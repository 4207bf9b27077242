"""Emptying rexmon's update journal only for what rrdcached really wrote to the files.

rrdcached answers ``FLUSH`` with success even when its write failed (a reader held the file's lock, the
directory is read-only or full) and then drops the values; its ``LAST`` answers from its cache, not the
file. So after the flush each file's last update is read back from the file (its header read directly
on the archive host, else rrdcached's ``INFO``; neither takes a lock that could collide with
rrdcached's writes) and compared with the newest time sent.
Files that fall short are made to forget their cached state (``FORGET``), sent their journaled lines
again and flushed again; what still falls short stays in the journal for the next sync.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rrd.header import last_update
from rrd.journal import UpdateJournal
from rrd.rrdcached import RRDCachedClient

log = logging.getLogger(__name__)
#: how many times a sync sends a file's journaled lines again before keeping them for the next sync
RESENDS = 2
#: INFO commands per pipelined write
CHUNK = 500


@dataclass
class Segment:
    """A sealed part of the journal and, per rrdcached file name, the newest update time sent in it."""

    journal: UpdateJournal
    expected: dict[str, int]
    #: lines sent again because rrdcached had not written them
    resent: int = 0


@dataclass(frozen=True)
class Shortfall:
    """Files whose last update on disk does not cover what was sent: (name, on disk, sent)."""

    files: list[tuple[str, int | None, int]]
    lines_kept: int


def expected_times(lines: Iterable[str]) -> dict[str, int]:
    """Per file name, the newest update time in journal lines ("UPDATE <name> <time>:<value>")."""
    out: dict[str, int] = {}
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) != 3:
            continue
        try:
            t = int(parts[2].partition(":")[0])
        except ValueError:
            continue
        if t > out.get(parts[1], 0):
            out[parts[1]] = t
    return out


def disk_lasts(client: RRDCachedClient, names: Sequence[str], local: bool = False) -> dict[str, int | None]:
    """Each file's last update as written in the file; None when there is no file.

    ``local``: the names are paths on this host, whose headers are read directly (no lock, no librrd);
    otherwise rrdcached reads them (INFO).
    """
    if local:
        return {name: last_update(Path(name)) for name in names}
    out: dict[str, int | None] = {}
    for i in range(0, len(names), CHUNK):
        part = list(names[i : i + CHUNK])
        for name, (code, _msg, lines) in zip(part, client.pipeline([f"INFO {n}" for n in part]), strict=True):
            out[name] = None
            if code < 0:
                continue
            for line in lines:
                if line.startswith("last_update "):
                    out[name] = int(line.rsplit(" ", 1)[-1])
                    break
    return out


def check(
    client: RRDCachedClient, segment: Segment, block: Callable[[Iterable[str]], None], local: bool = False
) -> Shortfall | None:
    """Flush the segment's files and make sure they hold what was sent; None when they all do.

    ``block(names)`` is called before files are sent their lines again: from then on the writer must
    journal those files' new updates without sending them, or a newer value would reach the file first
    and make the older ones look written (the writer sends them with the next sync's check).

    A file that falls short is sent its lines again (at most RESENDS times); what is still missing is
    all that stays in the segment. Files that no longer exist (pruned, or never created) are let go.
    Raises RRDCachedError when rrdcached does not answer (the segment is then kept whole).
    """
    expected = segment.expected
    client.flush_many(sorted(expected))
    lasts = disk_lasts(client, sorted(expected), local)
    short = _short(expected, lasts)
    for _ in range(RESENDS):
        if not short:
            break
        block(short)
        lines = _missing(segment.journal.lines(), short, lasts)
        client.pipeline([f"FORGET {name}" for name in sorted(short)])
        client.batch(lines, trusted=True)
        segment.resent += len(lines)
        client.flush_many(sorted(short))
        lasts.update(disk_lasts(client, sorted(short), local))
        short = _short({n: expected[n] for n in short}, lasts)
    if not short:
        return None
    kept = _missing(segment.journal.lines(), short, lasts)
    segment.journal.rewrite(kept)
    segment.expected = {n: expected[n] for n in short}
    return Shortfall([(n, lasts.get(n), expected[n]) for n in sorted(short)], len(kept))


def _short(expected: dict[str, int], lasts: dict[str, int | None]) -> set[str]:
    """Names whose file exists and whose last update is older than the newest time sent."""
    out = set()
    for name, sent in expected.items():
        last = lasts.get(name)
        if last is None:
            log.warning("%s: the file is gone; its journaled updates are dropped", name)
            continue
        if last < sent:
            out.add(name)
    return out


def _missing(lines: list[str], short: set[str], lasts: dict[str, int | None]) -> list[str]:
    """The journal lines of the short files newer than what their file holds, in journal order."""
    out = []
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in short:
            try:
                t = int(parts[2].partition(":")[0])
            except ValueError:
                continue
            if t > (lasts.get(parts[1]) or 0):
                out.append(line)
    return out
