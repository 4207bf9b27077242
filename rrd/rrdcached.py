"""A client for rrdcached's text protocol (unix socket or TCP), including BATCH.

librrd's own client sends one command per round trip; BATCH sends thousands of UPDATEs in one write
and reads one answer, which is what lets one collector push 100,000 values/s.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


class RRDCachedError(Exception):
    """rrdcached refused a command or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class BatchResult:
    sent: int
    #: (0-based index into the commands sent, rrdcached's message)
    errors: list[tuple[int, str]]


def parse_address(address: str) -> tuple[int, object]:
    """'unix:/path' -> (AF_UNIX, '/path'); 'host:port' / '[v6]:port' -> (AF_INET*, (host, port))."""
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[5:]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RRDCachedError(f"rrdcached address {address!r} is neither unix:/path nor host:port")
    if host.startswith("[") and host.endswith("]"):
        return socket.AF_INET6, (host[1:-1], int(port))
    return socket.AF_INET, (host, int(port))


class RRDCachedClient:
    """One persistent connection; reconnects once on a broken pipe. Thread-safe."""

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        self.address = address
        self.timeout = timeout
        self._family, self._target = parse_address(address)
        self._sock: socket.socket | None = None
        self._buf = b""
        self._lock = threading.Lock()
        self.connections = 0
        #: on every connection after the first (rrdcached restarted, or came back), these lines are sent
        #: in a BATCH before anything else, so updates rrdcached may have lost precede newer ones
        self.replay: Callable[[], list[str]] | None = None
        self.replayed = 0

    # -- connection ------------------------------------------------------------------------------
    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(self._family, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self._target)  # type: ignore[arg-type]
            except OSError as exc:
                sock.close()
                raise RRDCachedError(f"cannot connect to rrdcached at {self.address}: {exc}") from exc
            if self._family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._buf = sock, b""
            self.connections += 1
            if self.connections > 1 and self.replay is not None:
                self._send_replay(sock)
        return self._sock

    def _send_replay(self, sock: socket.socket) -> None:
        lines = self.replay() if self.replay is not None else []
        if not lines:
            return
        sock.sendall(b"BATCH\n" + "\n".join(lines).encode() + b"\n.\n")
        go, done = self._status(), self._status()
        if go[0] != 0:
            raise RRDCachedError(f"rrdcached refused the replay BATCH: {go[1]}")
        # updates rrdcached still had come back as 'illegal attempt ... minimum one second step'
        self.replayed += len(lines) - len(done[2])
        log.warning("rrdcached at %s reconnected: replayed %d journaled update(s), %d already there",
                    self.address, len(lines), len(done[2]))  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._buf = None, b""

    def _readline(self) -> str:
        sock = self._connect()
        while b"\n" not in self._buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("rrdcached closed the connection")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def _status(self) -> tuple[int, str, list[str]]:
        head = self._readline()
        code_s, _, msg = head.partition(" ")
        try:
            code = int(code_s)
        except ValueError:
            raise RRDCachedError(f"rrdcached sent an unexpected reply: {head[:200]!r}") from None
        extra = [self._readline() for _ in range(code)] if code > 0 else []
        return code, msg, extra

    def _roundtrip(self, payload: bytes, reply_count: int = 1) -> list[tuple[int, str, list[str]]]:
        for attempt in (1, 2):
            try:
                self._connect().sendall(payload)
                return [self._status() for _ in range(reply_count)]
            except (BrokenPipeError, ConnectionError, OSError) as exc:
                self._drop()
                if attempt == 2 or isinstance(exc, TimeoutError):
                    raise RRDCachedError(f"rrdcached at {self.address}: {exc}") from exc
        raise AssertionError("unreachable")

    # -- commands --------------------------------------------------------------------------------
    def command(self, line: str) -> tuple[int, str, list[str]]:
        """Send one command; return (status, message, extra lines). Negative status -> error."""
        _check_line(line)
        with self._lock:
            return self._roundtrip(line.encode() + b"\n")[0]

    def batch(self, commands: Sequence[str], *, trusted: bool = False) -> BatchResult:
        """Send commands in one BATCH; rrdcached answers only with the failures.

        ``trusted``: the caller built the commands from validated parts (skips the per-line check).
        """
        if not commands:
            return BatchResult(0, [])
        if not trusted:
            for c in commands:
                _check_line(c)
        return self.batch_encoded(("\n".join(commands) + "\n").encode(), len(commands))

    def batch_encoded(self, body: bytes, count: int) -> BatchResult:
        """BATCH of already encoded, newline-terminated command lines (validated by the caller)."""
        with self._lock:
            go, done = self._roundtrip(b"BATCH\n" + body + b".\n", reply_count=2)
        return _batch_result(go, done, count)

    def stream(self) -> BatchStream:
        """A BATCH sent part by part while the caller builds it; see :class:`BatchStream`."""
        return BatchStream(self)

    def flush(self, filename: str) -> None:
        code, msg, _ = self.command(f"FLUSH {filename}")
        # flushing a file that has nothing pending is fine; a missing file is the caller's problem
        if code < 0 and "no such file" not in msg.lower() and "not found" not in msg.lower():
            raise RRDCachedError(f"FLUSH {filename}: {msg}")

    def flush_many(self, filenames: Sequence[str], chunk: int = 2000) -> None:
        """Flush files and wait until each is on disk (FLUSHALL only *starts* flushing).

        The FLUSH commands are pipelined: one write per chunk, then one reply per command.
        """
        for i in range(0, len(filenames), chunk):
            part = filenames[i : i + chunk]
            for name in part:
                _check_line(name)
            payload = "".join(f"FLUSH {name}\n" for name in part).encode()
            with self._lock:
                replies = self._roundtrip(payload, reply_count=len(part))
            for name, (code, msg, _) in zip(part, replies, strict=True):
                if code < 0 and "no such file" not in msg.lower() and "not found" not in msg.lower():
                    raise RRDCachedError(f"FLUSH {name}: {msg}")

    def pipeline(self, commands: Sequence[str]) -> list[tuple[int, str, list[str]]]:
        """Send commands in one write and read one reply each (status, message, extra lines)."""
        if not commands:
            return []
        for c in commands:
            _check_line(c)
        payload = "".join(f"{c}\n" for c in commands).encode()
        with self._lock:
            return self._roundtrip(payload, reply_count=len(commands))

    def last(self, filename: str) -> int | None:
        """Last update time as rrdcached knows it (pending updates included); None if no file."""
        code, msg, _ = self.command(f"LAST {filename}")
        if code < 0:
            return None
        try:
            return int(msg.split()[0])
        except (ValueError, IndexError):
            return None

    def create(self, filename: str, args: Sequence[str]) -> bool:
        """CREATE without overwriting. True if created, False if it already existed."""
        code, msg, _ = self.command(" ".join(["CREATE", filename, "-O", *args]))
        if code < 0:
            if "exist" in msg.lower():
                return False
            raise RRDCachedError(f"CREATE {filename}: {msg}")
        return True


class BatchStream:
    """One BATCH whose parts are sent as soon as they are built.

    rrdcached applies the lines of a BATCH as they arrive, so on two cores it works through part *k*
    while the caller formats part *k+1*: the caller's cost hides behind rrdcached's instead of adding
    to it. The client's lock is held from the first :meth:`send` to :meth:`finish` (or :meth:`close`).

    If the connection breaks part-way, the parts are kept and :meth:`finish` sends the whole batch again
    on a new connection (after the client's replay), as :meth:`RRDCachedClient.batch_encoded` would;
    lines rrdcached had already applied then come back as "illegal attempt to update" errors.
    """

    def __init__(self, client: RRDCachedClient) -> None:
        self._client = client
        self._parts: list[bytes] = []
        self.count = 0
        self._locked = False
        self._sock: socket.socket | None = None
        self._broken: BaseException | None = None
        self._done = False

    def send(self, data: bytes, count: int) -> None:
        """Send ``count`` encoded, newline-terminated, validated command lines."""
        self._parts.append(data)
        self.count += count
        if self._broken is not None:
            return
        try:
            if self._sock is None:
                if not self._locked:
                    self._client._lock.acquire()
                    self._locked = True
                self._sock = self._client._connect()
                self._sock.sendall(b"BATCH\n" + data)
            else:
                self._sock.sendall(data)
        except (OSError, RRDCachedError) as exc:
            self._broken = exc
            self._client._drop()

    def finish(self) -> BatchResult:
        """End the BATCH and read rrdcached's answer (only the failed lines, numbered from 0)."""
        if not self._parts:
            self._done = True
            self.close()
            return BatchResult(0, [])
        client = self._client
        if not self._locked:
            client._lock.acquire()
            self._locked = True
        try:
            if self._broken is None and self._sock is not None:
                try:
                    self._sock.sendall(b".\n")
                    go, done = client._status(), client._status()
                    self._done = True
                    return _batch_result(go, done, self.count)
                except OSError as exc:
                    self._broken = exc
                    client._drop()
            if isinstance(self._broken, TimeoutError):
                raise RRDCachedError(f"rrdcached at {client.address}: {self._broken}") from self._broken
            # the connection broke (or never was): the whole batch again, as batch_encoded sends it
            payload = b"".join([b"BATCH\n", *self._parts, b".\n"])
            go, done = client._roundtrip(payload, reply_count=2)
            self._done = True
            return _batch_result(go, done, self.count)
        finally:
            self.close()

    def close(self) -> None:
        """Release the client; a stream left unfinished drops its connection, which is mid-BATCH."""
        if not self._locked:
            return
        try:
            if not self._done:
                self._client._drop()
        finally:
            self._locked = False
            self._client._lock.release()


def _batch_result(
    go: tuple[int, str, list[str]], done: tuple[int, str, list[str]], count: int
) -> BatchResult:
    if go[0] != 0:
        raise RRDCachedError(f"rrdcached refused BATCH: {go[1]}")
    errors = []
    for line in done[2]:
        num, _, msg = line.partition(" ")
        try:
            errors.append((int(num) - 1, msg))
        except ValueError:
            errors.append((-1, line))
    return BatchResult(count, errors)


def _check_line(line: str) -> None:
    # a newline inside an argument would inject a second command
    if "\n" in line or "\r" in line:
        raise RRDCachedError("refusing to send a command containing a line break")
