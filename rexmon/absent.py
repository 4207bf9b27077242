"""Dynamic counts that vanish from a source are zero, not unknown.

Sources list only what exists: ``condor_q`` has no line for a user with no jobs left, ``squeue`` no
pending reason that no job has, ftsmon no link without transfers. Without help such a series keeps its
last value until the heartbeat runs out and then goes stale (an UNKNOWN alarm, a "stale" icon), though
the truth is 0. A metric family whose spec sets ``when_absent`` gets that value written for every name
an earlier run of the same slurper reported and this run did not, for :data:`FORGET_AFTER` after it
vanished; then the name is forgotten and its series ends (a user who left, a reason no longer used).

The names are kept per slurper under ``state_dir/absent/<id>.json``, written only when the set of names
changes, so a restart keeps filling. Only successful runs count: a failed run archives nothing at all.
At most :data:`MAX_NAMES` names are kept per slurper: a source whose names churn (a name per job) forgets
the names absent longest first, so the daemon's memory does not grow with the number of runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from rexmon.state import CheckpointStore

#: how long a vanished name keeps getting its ``when_absent`` value
FORGET_AFTER = 7 * 86400.0
#: names kept per slurper at most (reported ones always; beyond, the longest absent are forgotten)
MAX_NAMES = 10_000


class AbsentFill:
    """Per slurper: the names of ``when_absent`` families seen, and since when each has been absent."""

    def __init__(
        self,
        directory: Path,
        forget_after: float = FORGET_AFTER,
        *,
        read_only: bool = False,
        max_names: int = MAX_NAMES,
    ) -> None:
        self.store = CheckpointStore(directory)
        self.forget_after = forget_after
        self.max_names = max_names
        #: ``rexmon slurp --dry-run``: fill from what is stored, change nothing
        self.read_only = read_only
        #: slurper id -> {metric name: time it vanished, or None while reported}
        self._names: dict[str, dict[str, float | None]] = {}
        self._lock = threading.Lock()  # slurpers run in a thread pool; each id runs once at a time

    def fill(
        self,
        slurper_id: str,
        present: set[str],
        when_absent: Callable[[str], float | None],
        now: float,
    ) -> list[tuple[str, float]]:
        """(name, value) for each name of a ``when_absent`` family seen before and not in ``present``
        (the names of such families this run reported); ``when_absent`` looks a name's value up."""
        names = self._load(slurper_id)
        if not names and not present:
            return []
        changed = False
        for name in present:
            if names.get(name, 0.0) is not None:  # new, or back after vanishing
                names[name] = None
                changed = True
        out = []
        for name, since in list(names.items()):
            if name in present:
                continue
            if since is None:
                names[name] = since = now
                changed = True
            value = when_absent(name)
            if value is None or now - since > self.forget_after:
                del names[name]  # forgotten, or the family no longer fills (a new release)
                changed = True
                continue
            out.append((name, value))
        if len(names) > self.max_names:
            out = self._forget_oldest(names, out)
            changed = True
        if changed and not self.read_only:
            self.store.save(slurper_id, {"names": names})
        return sorted(out)

    def _forget_oldest(
        self, names: dict[str, float | None], out: list[tuple[str, float]]
    ) -> list[tuple[str, float]]:
        """Keep ``max_names``: forget the names absent longest (reported ones are never forgotten)."""
        absent = sorted((since, name) for name, since in names.items() if since is not None)
        excess = len(names) - self.max_names
        gone = {name for _, name in absent[:excess]}
        for name in gone:
            del names[name]
        return [(n, v) for n, v in out if n not in gone]

    def _load(self, slurper_id: str) -> dict[str, float | None]:
        with self._lock:
            names = self._names.get(slurper_id)
            if names is None:
                raw = self.store.load(slurper_id).get("names")
                names = {
                    str(k): (float(v) if isinstance(v, (int, float)) else None)
                    for k, v in (raw.items() if isinstance(raw, dict) else ())
                }
                self._names[slurper_id] = names
            return names
