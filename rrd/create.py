"""Files for metrics seen for the first time: created (in parallel), or retuned when they exist.

Creating an RRD file writes all of it (about 220 KB with the default retention), so 10,000 new metrics
one at a time take seconds. :class:`FileMaker` creates a batch's new files over several rrdcached
connections at once (rrdcached serves each connection in a thread of its own), or with several
threads calling librrd when there is no rrdcached. An existing file whose heartbeat or bounds differ
from the metric's spec (a slurper's interval lengthened from 60 s to 300 s) is retuned with
``rrdtool tune`` on its first write, logged once per file.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import rrdtool

from rrd import remote
from rrd.lifecycle import layout_of, tunable, tune, wanted
from rrd.names import Names
from rrd.retention import DEFAULT, Retention
from rrd.rrdcached import RRDCachedClient, RRDCachedError
from rrd.spec import ArchiveError, Update, ds_arg, rra_args

log = logging.getLogger(__name__)
#: files created at once (rrdcached connections or librrd threads)
PARALLEL = 4
#: fewer new files than this are created one after the other (threads cost more than they save)
PARALLEL_FROM = 8


def _rrd_readable(path: Path) -> bool:
    try:
        rrdtool.info(str(path))
    except rrdtool.OperationalError:
        return False
    return True


def disk_cause(exc: Exception | None, directory: Path) -> str:
    """rrdtool's message, or (it gives none on ENOSPC) what the file system says."""
    text = str(exc).strip() if exc is not None else ""
    try:
        st = os.statvfs(directory)
    except OSError as err:
        return text or f"{err.strerror}"
    free = st.f_bavail * st.f_frsize
    if free < 1 << 20:
        return f"No space left on device ({free // 1024} KiB free in {directory})" + (
            f"; {text}" if text else ""
        )
    return text or "rrdtool gave no reason"


def _write_new(path: Path, data: bytes) -> None:
    """A new file holding ``data`` (raises OSError: disk full, read-only, exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class FileMaker:
    """Creates or retunes the files of new metrics; returns each one's last update time."""

    def __init__(
        self,
        names: Names,
        step: int,
        rrdcached: str = "",
        *,
        retention: Retention = DEFAULT,
        timeout: float = 30.0,
        parallel: int = PARALLEL,
    ) -> None:
        self.names = names
        self.step = step
        self.retention = retention
        self.rrdcached = rrdcached
        self._remote = bool(rrdcached) and not rrdcached.startswith("unix:")
        self._timeout = timeout
        self.parallel = max(1, parallel)
        #: one connection per worker thread (rrdcached creates on each in parallel)
        self._local = threading.local()
        self._clients: list[RRDCachedClient] = []
        self._clients_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        #: directories known to exist during one ensure_many
        self._dirs: set[Path] = set()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients = []

    def _client(self) -> RRDCachedClient:
        client: RRDCachedClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = RRDCachedClient(self.rrdcached, self._timeout)
            with self._clients_lock:
                self._clients.append(client)
        return client

    def ensure_many(self, firsts: Sequence[Update]) -> list[tuple[int, bool] | Exception]:
        """For each metric's first update: (last update time, created) or the error, in order.

        Where the files are on this host, new files that share a spec and a first time are written from
        one file created for them in memory (``rrdtool create`` per file costs several times more CPU).
        Existing files, and any trouble making the shared file, take the one-by-one way, which names the
        cause of a failure.
        """
        if self._remote or len(firsts) < PARALLEL_FROM:
            return self._map(self._try, list(firsts))
        groups: dict[tuple[object, int], list[Update]] = defaultdict(list)
        for u in firsts:
            new = not self.names.path(u.metric_id).exists()
            groups[(u.spec, u.time) if new else ("exists", 0)].append(u)
        done: dict[str, tuple[int, bool] | Exception] = {}
        for n, (key, members) in enumerate(groups.items()):
            template = self._template(members[0], n) if len(members) > 1 and key[0] != "exists" else None
            copy = functools.partial(self._try_copy, template)
            done.update(zip((u.metric_id for u in members), self._map(copy, members), strict=True))
        self._dirs.clear()
        return [done[u.metric_id] for u in firsts]

    def _map(
        self, fn: Callable[[Update], tuple[int, bool] | Exception], items: list[Update]
    ) -> list[tuple[int, bool] | Exception]:
        """``fn`` over ``items`` in ``parallel`` threads, each taking a contiguous share (one task per
        thread, not per file: a future per file cost more than a copy)."""
        if len(items) < PARALLEL_FROM or self.parallel == 1:
            return [fn(u) for u in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="rrd-create")
        size = -(-len(items) // self.parallel)
        shares = [items[i : i + size] for i in range(0, len(items), size)]
        return [got for part in self._pool.map(lambda share: [fn(u) for u in share], shares) for got in part]

    def _scratch(self) -> Path:
        """A directory on the archive's file system (hard links need it), made if missing."""
        root = self.names.rrd_dir
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _template(self, first: Update, n: int) -> bytes | None:
        """The bytes of a new file for ``first``'s spec and time; None if it cannot be made here (each
        file is then created on its own, which names the cause)."""
        rras = rra_args(self.step, first.spec.retention or self.retention)
        try:
            with tempfile.TemporaryDirectory(prefix=".create-", dir=self._scratch()) as tmp:
                path = Path(tmp) / f"{n}.rrd"
                rrdtool.create(
                    str(path), "--step", str(self.step), "--start", str(first.time - self.step),
                    ds_arg(first.spec), *rras,
                )  # fmt: skip
                return path.read_bytes() if _rrd_readable(path) else None
        except (rrdtool.OperationalError, OSError):
            return None

    def _try_copy(self, template: bytes | None, first: Update) -> tuple[int, bool] | Exception:
        if template is None:
            return self._try(first)
        path = self.names.path(first.metric_id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
        try:
            if path.parent not in self._dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(path.parent)
            _write_new(tmp, template)
            os.link(tmp, path)  # never over a file another writer made meanwhile
        except FileExistsError:
            return self._try(first)  # it exists: its last update, and retuned if needed
        except OSError as exc:
            cause = disk_cause(exc, path.parent)
            return ArchiveError(f"{first.metric_id}: cannot create {path}: {cause}")
        finally:
            tmp.unlink(missing_ok=True)
        return first.time - self.step, True

    def _try(self, first: Update) -> tuple[int, bool] | Exception:
        try:
            return self.ensure(first)
        except (ArchiveError, RRDCachedError, OSError) as exc:
            return exc

    def ensure(self, first: Update) -> tuple[int, bool]:
        """Create the metric's file if needed: (its last update time, whether it was created)."""
        metric_id = first.metric_id
        path, name = self.names(metric_id)
        start = first.time - self.step
        rras = rra_args(self.step, first.spec.retention or self.retention)
        if self.rrdcached:
            client = self._client()
            if not self._remote:
                path.parent.mkdir(parents=True, exist_ok=True)
            if client.create(name, ["-s", str(self.step), "-b", str(start), ds_arg(first.spec), *rras]):
                return start, True
            last = client.last(name)
            if last is None:
                raise ArchiveError(f"{metric_id}: rrdcached cannot read {name}")
            self._retune(first, path, lambda: remote.info(client, name), client.flush, name)
            return last, False
        if path.exists():
            try:
                last = int(rrdtool.last(str(path)))
            except rrdtool.OperationalError as exc:
                raise ArchiveError(f"{metric_id}: {path} is not a readable RRD file: {exc}") from exc
            self._retune(first, path, lambda: dict(rrdtool.info(str(path))), None, name)
            return last, False
        return self._create_file(metric_id, path, start, first, rras)

    def _create_file(
        self, metric_id: str, path: Path, start: int, first: Update, rras: list[str]
    ) -> tuple[int, bool]:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            rrdtool.create(
                str(path), "--no-overwrite", "--step", str(self.step), "--start", str(start),
                ds_arg(first.spec), *rras,
            )  # fmt: skip
        except rrdtool.OperationalError as exc:
            if path.exists() and _rrd_readable(path):  # another writer won the race
                return int(rrdtool.last(str(path))), False
            path.unlink(missing_ok=True)  # never leave a half-written file behind
            raise ArchiveError(f"{metric_id}: cannot create {path}: {disk_cause(exc, path.parent)}") from exc
        if not _rrd_readable(path):
            # librrd can report success on a full disk and leave a short file: check, and say why
            path.unlink(missing_ok=True)
            raise ArchiveError(f"{metric_id}: cannot create {path}: {disk_cause(None, path.parent)}")
        return start, True

    def _retune(
        self,
        first: Update,
        path: Path,
        read_info: Callable[[], Mapping[str, object] | None],
        flush: Callable[[str], None] | None,
        name: str,
    ) -> None:
        """Apply a changed heartbeat, min or max to an existing file (once per file and process)."""
        info = read_info()
        if not info:
            return
        have = layout_of(info)
        args = tunable(have, wanted(self.step, first.spec, self.retention))
        if not args:
            return
        if not path.is_file():  # rrdcached over TCP from a host without the files
            log.warning(
                "%s: heartbeat/min/max differ from the configuration (%s) and the file is not on this "
                "host: run 'rexmon archive migrate' on the archive host",
                first.metric_id, " ".join(args),
            )  # fmt: skip
            return
        if flush is not None:
            flush(name)  # pending updates first, under the old settings
        try:
            tune(path, args)
        except ArchiveError as exc:
            log.warning("%s: %s (the file keeps its old settings until the next start)", first.metric_id, exc)
            return
        log.info("%s: retuned %s (%s)", first.metric_id, path, " ".join(args))
