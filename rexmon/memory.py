"""The collector's C heap: few malloc arenas, and free pages given back to the system.

glibc gives each thread that allocates while another holds an arena a new arena of its own (up to eight
per core), and keeps what it frees there for reuse. A collector runs a thread per busy slurper and a
writer, so its RSS climbs in arena-sized steps and keeps every peak: the memory of an outage's backlog
(values held while rrdcached is away, observations waiting while the database is locked) stays counted
after the backlog is gone. Two measures keep RSS close to what Python really holds:

- :func:`cap_arenas` (at start, before the threads): at most ``MALLOC_ARENA_MAX`` arenas, 2 unless the
  environment says otherwise (the systemd unit sets the same);
- :func:`trim` (once a minute, from the collector's life loop): ``malloc_trim(0)`` hands the free pages
  of every arena back (measured: 33 ms when it returned a 200 MB peak, 7 ms when there was little to
  return; allocating threads wait for it meanwhile).

Both do nothing where the C library is not glibc (musl, other systems).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

log = logging.getLogger(__name__)

#: mallopt's parameter number for the arena count (glibc's malloc.h)
M_ARENA_MAX = -8
#: the cap when the environment does not set MALLOC_ARENA_MAX
DEFAULT_ARENAS = 2
#: seconds between two trims
TRIM_EVERY = 60.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, or None for any other C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    return libc if version() else None


def cap_arenas(arenas: int = DEFAULT_ARENAS) -> int | None:
    """Limit glibc to ``arenas`` malloc arenas (the environment's ``MALLOC_ARENA_MAX`` wins: glibc read
    it at start). Returns the cap in force, None where it cannot be set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return int(os.environ["MALLOC_ARENA_MAX"]) if os.environ["MALLOC_ARENA_MAX"].isdigit() else None
    libc = _glibc()
    if libc is None or not libc.mallopt(M_ARENA_MAX, arenas):
        return None
    return arenas


def trim() -> bool:
    """Give the free pages of every arena back to the system; True when glibc released any."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


class Trimmer:
    """Calls :func:`trim` at most once per ``every`` seconds of the clock handed to :meth:`tick`."""

    def __init__(self, every: float = TRIM_EVERY) -> None:
        self.every = every
        self._next = 0.0

    def tick(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + self.every
        try:
            trim()
        except OSError as exc:  # never worth stopping the collector for
            log.debug("malloc_trim failed: %s", exc)
