"""Running a source's command: bounded output, a hard deadline, and no process left behind.

A plugin is read from its pipes with a deadline, never waited for without one: a child that left the
process group (``setsid``, a daemonising helper) and keeps stdout open cannot hold a worker. Output
beyond a cap stops the command (a runaway plugin cannot exhaust memory). When the command exits, times
out or overflows, its whole process group is killed and so is every process that still carries the
run's marker in its environment (children that left the group), then the pipes are closed and the
command is reaped with a bound. ``slurpers/api.py`` re-exports what plugins use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from slurpers.errors import CommandTimeout, SlurperError
from slurpers.payload import first_lines

log = logging.getLogger(__name__)
#: what one command may print (stdout and stderr together) unless the slurper's ``max_output`` says
DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024
#: every command's environment carries this variable with a fresh value, so its descendants that left
#: the process group are still found (like Jenkins' BUILD_ID process-tree killer); a child that clears
#: its environment as well escapes, and is only stopped from holding the worker by the deadline
MARKER_VAR = "REXMON_RUN_MARKER"
#: how long a killed command may take to be reaped before rexmon gives up waiting (logged)
REAP_SECONDS = 5.0
_READ = 65536
_max_output: ContextVar[int] = ContextVar("rexmon_max_output", default=DEFAULT_MAX_OUTPUT)


@contextlib.contextmanager
def output_limit(max_output: int) -> Iterator[None]:
    """Inside the block, :func:`run_command`'s cap when none is passed (the runner sets each slurper's)."""
    token = _max_output.set(max_output)
    try:
        yield
    finally:
        _max_output.reset(token)


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class _Stopped(Exception):
    """The command overran its deadline or its output cap (the reason is the message)."""


def run_command(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    encoding_errors: str = "replace",
    max_output: int | None = None,
) -> CommandResult:
    """Run a command within ``timeout`` seconds and ``max_output`` bytes, leaving no process behind.

    ``max_output`` defaults to the running slurper's ``max_output`` (:func:`output_limit`), else
    :data:`DEFAULT_MAX_OUTPUT`. Non-UTF-8 output is decoded with replacement characters (the parser
    then rejects what it cannot read) rather than raising deep inside the scheduler.
    """
    cap = _max_output.get() if max_output is None else max_output
    marker = secrets.token_hex(12)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    full_env[MARKER_VAR] = marker
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            start_new_session=True,
        )
    except OSError as exc:
        raise SlurperError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    swept: list[bool] = []  # set once the exit has been cleaned up after (one /proc scan per command)
    try:
        out, err = _read(proc, time.monotonic() + timeout, cap, marker, swept)
    except _Stopped as why:
        raise SlurperError(f"{argv[0]} {why}") from None
    finally:
        _end(proc, marker, swept=bool(swept))
    if out is None:  # the deadline passed
        raise CommandTimeout(f"{argv[0]} timed out after {timeout:g} s")
    result = CommandResult(
        tuple(argv),
        proc.returncode,
        out.decode("utf-8", encoding_errors),
        err.decode("utf-8", encoding_errors),
    )
    if check and proc.returncode != 0:
        detail = first_lines(result.stderr) or "no message"
        raise SlurperError(f"{argv[0]} exited with status {proc.returncode}: {detail}")
    return result


def _read(
    proc: subprocess.Popen[bytes], deadline: float, cap: int, marker: str, swept: list[bool]
) -> tuple[bytes | None, bytes]:
    """Both pipes until they close and the command has exited: (stdout, stderr), or (None, ...) at the
    deadline. Raises :class:`_Stopped` past ``cap`` bytes."""
    assert proc.stdout is not None and proc.stderr is not None
    chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    total = 0
    pidfd = _pidfd(proc.pid)
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ)
        exited, open_pipes = False, len(chunks)
        try:
            while open_pipes or not exited:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None, b""
                # without a pidfd (old kernels) the exit is polled
                events = sel.select(remaining if pidfd is not None else min(remaining, 0.05))
                if not exited and (pidfd is None or any(k.fd == pidfd for k, _ in events)):
                    exited = _has_exited(proc.pid)
                    if exited:
                        # nothing it started outlives it; a helper still holding the pipes lets go
                        _kill_rest(proc.pid, marker)
                        swept.append(True)
                        if pidfd is not None:
                            sel.unregister(pidfd)
                for key, _ in events:
                    if key.fd == pidfd:
                        continue
                    data = os.read(key.fd, _READ)
                    if not data:
                        sel.unregister(key.fd)
                        open_pipes -= 1
                        continue
                    total += len(data)
                    if total > cap:
                        raise _Stopped(
                            f"printed more than {_size(cap)} (the slurper's max_output); it was stopped "
                            "and nothing from this run is archived"
                        )
                    chunks[key.fd].append(data)
        finally:
            if pidfd is not None:
                os.close(pidfd)
    return b"".join(chunks[proc.stdout.fileno()]), b"".join(chunks[proc.stderr.fileno()])


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _has_exited(pid: int) -> bool:
    """Whether the command has exited, without reaping it (its pid, hence its group id, stays ours)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _end(proc: subprocess.Popen[bytes], marker: str, *, swept: bool) -> None:
    """Kill what is left, close the pipes, reap the command within :data:`REAP_SECONDS`.

    When the command's exit was already cleaned up after (``swept``), what it left was killed then and
    only its group is killed again here: nothing carrying its marker can have started since.
    """
    if swept:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        _kill_rest(proc.pid, marker)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    try:
        proc.wait(REAP_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %d) did not die within %g s of SIGKILL", proc.args, proc.pid, REAP_SECONDS)


def _kill_rest(pid: int, marker: str) -> None:
    """SIGKILL the command's process group (before it is reaped) and every process carrying ``marker``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    needle = f"{MARKER_VAR}={marker}".encode()
    for _ in range(3):  # a stray may fork while it is being killed
        strays = [p for p in _pids_after(pid) if _carries(p, needle)]
        if not strays:
            return
        for p in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)


def _pids_after(first: int) -> list[int]:
    """The processes started after pid ``first``: only they can descend from it.

    Linux hands out pids in increasing order until they wrap, so these are the pids above ``first``
    (and, once the numbers wrapped, those up to the last one given), a few of the whole table.
    """
    try:
        pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []
    last = _last_pid()
    wrapped = last is not None and last < first
    return [p for p in pids if p > first or (wrapped and last is not None and p <= last)]


def _last_pid() -> int | None:
    try:
        with open("/proc/sys/kernel/ns_last_pid", "rb") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return None


def _carries(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return needle in fh.read()
    except OSError:  # gone already, or not ours to read
        return False


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n} bytes"
