"""Metric ids and where their RRD files live.

A metric id is ``<slurper id>/<metric name>``; its file is ``<rrd_dir>/<slurper id>/<metric name>.rrd``.
Both parts are reduced to ``[A-Za-z0-9._-]`` and may not start with a dot, so no id can name a file
outside ``rrd_dir`` (``../../etc/passwd`` becomes ``_._etc_passwd`` under the slurper's folder).
"""

from __future__ import annotations

import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DOTS = re.compile(r"\.{2,}")
_VALID_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*/[A-Za-z0-9_-][A-Za-z0-9._-]*$")


class MetricIdError(ValueError):
    """A metric id given by a user (URL, CLI) is not of the form <slurper>/<metric>."""


def clean_part(part: str) -> str:
    cleaned = _DOTS.sub(".", _UNSAFE.sub("_", part)).lstrip(".")
    return cleaned[:200] or "_"


def make_id(slurper_id: str, metric: str) -> str:
    """The canonical metric id for a slurper's metric name (sanitised)."""
    return f"{clean_part(slurper_id)}/{clean_part(metric)}"


def check_id(metric_id: str) -> str:
    """Validate an id that came from outside (URL, CLI); never sanitise it silently."""
    if not isinstance(metric_id, str) or not _VALID_ID.fullmatch(metric_id) or ".." in metric_id:
        raise MetricIdError(
            f"{metric_id!r:.120} is not a metric id (<slurper>/<metric>, letters, digits, '.', '_', '-')"
        )
    return metric_id


def relpath(metric_id: str) -> str:
    """Path of a metric's file relative to rrd_dir (also the name rrdcached sees over TCP)."""
    slurper, _, metric = metric_id.partition("/")
    return f"{clean_part(slurper)}/{clean_part(metric)}.rrd"


def path_for(rrd_dir: Path, metric_id: str) -> Path:
    path = (rrd_dir / relpath(metric_id)).resolve()
    root = rrd_dir.resolve()
    if root not in path.parents:  # cannot happen after clean_part; kept as a last line of defence
        raise MetricIdError(f"{metric_id!r} would leave the archive")
    return path


def id_from_path(rrd_dir: Path, path: Path) -> str:
    rel = path.relative_to(rrd_dir)
    return f"{rel.parent.as_posix()}/{rel.name[: -len('.rrd')]}"


class Names:
    """(local path, name given to rrdcached) of each metric id, cached: ids repeat every round.

    Over a unix socket rrdcached is given absolute paths; over TCP, paths relative to ``rrd_dir``
    (which must be rrdcached's ``-b`` base directory).
    """

    def __init__(self, rrd_dir: Path, remote: bool) -> None:
        self.rrd_dir = Path(rrd_dir)
        self.remote = remote
        self._cache: dict[str, tuple[Path, str]] = {}
        self._root: Path | None = None
        #: each slurper's folder, resolved once: resolving every new file's whole path (a system call per
        #: component, twice) was a third of the time to create 10,000 new metrics
        self._folders: dict[str, Path] = {}

    def __call__(self, metric_id: str) -> tuple[Path, str]:
        hit = self._cache.get(metric_id)
        if hit is None:
            path = self._path(metric_id)
            hit = (path, relpath(metric_id) if self.remote else str(path))
            self._cache[metric_id] = hit
        return hit

    def _path(self, metric_id: str) -> Path:
        """What :func:`path_for` gives, with the folder resolved once per slurper."""
        if self._root is None:
            self._root = self.rrd_dir.resolve()
        head, _, tail = relpath(metric_id).partition("/")
        folder = self._folders.get(head)
        if folder is None:
            folder = (self._root / head).resolve()
            if self._root not in folder.parents:  # a folder linked out of the archive
                raise MetricIdError(f"{metric_id!r} would leave the archive")
            self._folders[head] = folder
        path = folder / tail
        if path.is_symlink():  # an administrator's link to the file: followed and checked as before
            return path_for(self.rrd_dir, metric_id)
        return path

    def path(self, metric_id: str) -> Path:
        return self(metric_id)[0]

    def name(self, metric_id: str) -> str:
        return self(metric_id)[1]
