"""Fermilab Enstore tape: library-manager queues, mover states and counters, SAAG overall status.

Enstore prints text and Python 2 ``repr``/``pprint`` output, never JSON. Dicts are read like Enstore's
own tools read them, only up to the last ``}`` (trailing junk ignored), but with ``ast.literal_eval``
after dropping Python 2 ``L`` suffixes from number tokens: nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import ast
import io
import logging
import math
import re
import shutil
import time
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import field
from typing import Any, Literal

import requests

from slurpers.api import (
    CollectContext,
    CommandTimeout,
    MetricSpec,
    PayloadError,
    Reading,
    Slurper,
    SlurperError,
    metric_name,
    run_command,
    settings,
    to_float,
)

log = logging.getLogger(__name__)

MOVER_STATES = (
    "IDLE",
    "SETUP",
    "MOUNT_WAIT",
    "SEEK",
    "ACTIVE",
    "HAVE_BOUND",
    "DISMOUNT_WAIT",
    "DRAINING",
    "OFFLINE",
    "CLEANING",
    "ERROR",
    "FINISH_WRITE",
)
QUEUE_COUNTERS = ("pending_reads", "pending_writes", "active_reads", "active_writes")
MOVER_COUNTERS = {
    "bytes_read": "bytes/s",
    "bytes_written": "bytes/s",
    "transfers_completed": "transfers/s",
    "transfers_failed": "transfers/s",
}
SAAG_CODES = {0: "up", 1: "down", 2: "warning", 4: "seen down"}
# Python 2 prints "Pending read requests: ", n -- note the two spaces; header lines have no colon
_COUNTER_LINE = re.compile(r"^(Pending|Active) (read|write) requests:\s+([0-9]+)\s*$")
_STATUS_ONLY = re.compile(r"status\s*=\s*(\[[^\]]*\])")


@settings
class EnstoreSettings:
    #: path of the enstore command
    enstore: str = "enstore"
    #: library managers, e.g. ["LTO8", "TS4500F1"] (".library_manager" is added when missing)
    library_managers: list[str] = field(default_factory=list)
    #: movers, e.g. ["LTO8_12"] (".mover" added when missing), or "all" (from enstore config --show)
    movers: list[str] | Literal["all"] = field(default_factory=list)
    #: URL of the inquisitor's enstore_status_only page, for the SAAG overall status
    status_url: str = ""

    def __post_init__(self) -> None:
        if not self.library_managers and not self.movers and not self.status_url:
            raise ValueError("set at least one of library_managers, movers, status_url")


# -- parsing (pure) --------------------------------------------------------------------------------


def _drop_long_suffix(text: str) -> str:
    """``4294967296L`` -> ``4294967296`` for number tokens only (a label like 'VR1234L' is a string)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    kept = []
    for prev, tok in zip([None, *tokens], tokens, strict=False):
        is_suffix = tok.type == tokenize.NAME and tok.string in ("L", "l")
        if is_suffix and prev is not None and prev.type == tokenize.NUMBER and prev.end == tok.start:
            continue
        kept.append(tok)
    return tokenize.untokenize(kept)


def parse_repr(text: str, what: str) -> dict[Any, Any]:
    """A Python 2 dict printed by Enstore, read up to the last '}' without eval."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise PayloadError(f"{what}: no Python dict in the output: {text.strip()[:80]!r}")
    body = text[start : end + 1]
    try:
        value = ast.literal_eval(_drop_long_suffix(body))
    except (ValueError, SyntaxError, tokenize.TokenError, MemoryError, RecursionError) as exc:
        raise PayloadError(
            f"{what}: not a Python literal dict ({type(exc).__name__}): {body[:80]!r}"
        ) from None
    if not isinstance(value, dict):
        raise PayloadError(f"{what}: expected a dict, got {type(value).__name__}")
    _refuse_non_finite(value, what, "")
    return value


def _refuse_non_finite(value: object, what: str, key: str) -> None:
    """literal_eval reads ``1e999`` as inf: anywhere in the dict it is a malformed payload."""
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadError(f"{what}: {key or 'a value'} = {value!r} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_non_finite(k, what, f"{key}[{k!r:.40}]")
            _refuse_non_finite(v, what, f"{key}[{k!r:.40}]")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, v in enumerate(value):
            _refuse_non_finite(v, what, f"{key}[{i}]")


def _check_status(status: object, what: str) -> None:
    if isinstance(status, tuple) and status and status[0] != "ok":
        detail = " ".join(str(s) for s in status if s is not None)
        raise SlurperError(f"{what}: Enstore answered {detail}")


def parse_get_queue(text: str, lm: str) -> dict[str, int]:
    """The four counters at the end of ``enstore library --get-queue``."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        stripped = line.strip()
        m = _COUNTER_LINE.match(stripped)
        if m:
            found[f"{m.group(1).lower()}_{m.group(2)}s"] = int(m.group(3))
        elif stripped.startswith("{'status'"):
            _check_status(parse_repr(stripped, f"{lm} --get-queue").get("status"), f"library manager {lm}")
    missing = [c for c in QUEUE_COUNTERS if c not in found]
    if missing:
        first = text.strip().splitlines()[:1] or ["(empty output)"]
        raise PayloadError(
            f"{lm} --get-queue: no {', '.join(missing)} line(s); output began {first[0][:80]!r}"
        )
    return found


def parse_queue_length(text: str, lm: str) -> int:
    """``enstore library --queue-length`` prints one integer."""
    value = text.strip()
    if not re.fullmatch(r"[0-9]+", value):  # str.isdigit() takes '²', which int() refuses
        raise PayloadError(f"{lm} --queue-length: expected one integer, got {value[:80]!r}")
    return int(value)


def parse_mover_status(text: str, mover: str) -> dict[str, Any]:
    """``enstore mover --status``: state and the four counters (plain ints, never guessed)."""
    status = parse_repr(text, f"mover {mover}")
    state = status.get("state")
    if not isinstance(state, str) or not state:
        raise PayloadError(f"mover {mover}: no 'state' in its status")
    out: dict[str, Any] = {"state": state.upper()}
    for key in MOVER_COUNTERS:
        value = status.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise PayloadError(f"mover {mover}: {key} = {value!r:.40} is not a number")
        if value is not None:
            to_float(value, f"mover {mover}: {key}")  # 1e999 and 10**400 are refused, not archived
        out[key] = value
    return out


def movers_from_config(text: str) -> list[str]:
    """Mover names (``X.mover`` keys) in ``enstore config --show``."""
    config = parse_repr(text, "enstore config --show")
    return sorted(k for k in config if isinstance(k, str) and k.endswith(".mover"))


def parse_status_only(text: str) -> int:
    """The overall SAAG code from ``enstore_status_only``: ``status=[0, '2024-May-22 ...', ...]``."""
    m = _STATUS_ONLY.search(text)
    if not m:
        raise PayloadError(f"status page: no 'status=[...]' in {text.strip()[:80]!r}")
    try:
        fields = ast.literal_eval(m.group(1))
    except (ValueError, SyntaxError) as exc:
        raise PayloadError(f"status page: {m.group(1)[:80]!r} is not a list: {exc}") from None
    code = fields[0] if fields else None
    if type(code) is not int or code not in SAAG_CODES:  # not bool, not float, not a list (unhashable)
        raise PayloadError(f"status page: overall status {fields[:1]!r} is not one of 0, 1, 2, 4")
    return code


def short(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if name.endswith(suffix) else name


def full(name: str, suffix: str) -> str:
    return name if name.endswith(suffix) else name + suffix


def specs() -> list[MetricSpec]:
    """The metric families this slurper writes."""
    out = [
        MetricSpec(f"lm.*.{c}", unit="requests", min=0, graph="lm.<lm>", label=c.replace("_", " "))
        for c in QUEUE_COUNTERS
    ]
    out.append(MetricSpec("lm.*.queue_length", unit="requests", min=0, graph="lm.<lm>"))
    for key, unit in MOVER_COUNTERS.items():
        graph = "mover.<m>.bytes" if key.startswith("bytes") else "mover.<m>.transfers"
        out.append(MetricSpec(f"mover.*.{key}", "DERIVE", unit=unit, min=0, graph=graph))
    out += [
        MetricSpec("movers.unreachable", unit="movers", min=0, graph="movers"),
        MetricSpec("movers.total", unit="movers", min=0, graph="movers"),
        # default tolerances (docs/slurpers/enstore.md): a mover in ERROR needs a person; a few OFFLINE
        # ones are routine maintenance
        MetricSpec("movers.error", unit="movers", min=0, graph="movers", warning="0", critical="2"),
        MetricSpec("movers.offline", unit="movers", min=0, graph="movers", warning="2", critical="5"),
        MetricSpec("movers.*", unit="movers", min=0, graph="movers"),
        MetricSpec(
            "saag.status",
            unit="code",
            min=0,
            max=4,
            graph="saag",
            description="0 up, 1 down, 2 warning, 4 seen down",
        ),
    ]
    return out


# -- the slurper -----------------------------------------------------------------------------------


class _Deadline:
    """What is left of the slurper's timeout, shared by the several commands of one run."""

    def __init__(self, seconds: float) -> None:
        self.total = seconds
        self.end = time.monotonic() + seconds

    def left(self, what: str) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise SlurperError(f"the timeout of {self.total:g} s ran out before {what}")
        return remaining


class EnstoreSlurper(Slurper[EnstoreSettings]):
    def metrics(self) -> Sequence[MetricSpec]:
        return specs()

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        s = self.settings
        deadline = _Deadline(ctx.timeout)
        if (s.library_managers or s.movers) and shutil.which(s.enstore) is None:
            raise SlurperError(f"enstore command {s.enstore!r} not found or not executable")
        out: list[Reading] = []
        for lm in s.library_managers:
            out += self._library_manager(full(lm, ".library_manager"), deadline)
        if s.movers:
            out += self._movers(deadline)
        if s.status_url:
            out.append(Reading("saag.status", self._saag(deadline)))
        return out

    def _enstore(self, args: list[str], deadline: _Deadline) -> str:
        what = " ".join(["enstore", *args])
        try:
            return run_command([self.settings.enstore, *args], timeout=deadline.left(what)).stdout
        except CommandTimeout:
            raise SlurperError(f"{what} did not finish within the timeout of {deadline.total:g} s") from None

    def _library_manager(self, lm: str, deadline: _Deadline) -> list[Reading]:
        name = short(lm, ".library_manager")
        try:
            queue = parse_get_queue(self._enstore(["library", "--get-queue", "", lm], deadline), lm)
            length = parse_queue_length(self._enstore(["library", "--queue-length", lm], deadline), lm)
        except SlurperError as exc:
            raise type(exc)(f"library manager {lm}: {exc}") from None
        out = [Reading(metric_name("lm", name, c), queue[c]) for c in QUEUE_COUNTERS]
        out.append(Reading(metric_name("lm", name, "queue_length"), length))
        return out

    def _movers(self, deadline: _Deadline) -> list[Reading]:
        if self.settings.movers == "all":
            names = movers_from_config(self._enstore(["config", "--show"], deadline))
        else:
            names = [full(m, ".mover") for m in self.settings.movers]
        states: Counter[str] = Counter()
        out: list[Reading] = []
        for mover in names:
            name = short(mover, ".mover")
            try:
                status = parse_mover_status(self._enstore(["mover", "--status", mover], deadline), mover)
            except SlurperError as exc:  # one dead mover host must not blank the library's figures
                log.warning("enstore %s: %s", self.id, exc)
                states["UNREACHABLE"] += 1
                out += [Reading(metric_name("mover", name, k), None) for k in MOVER_COUNTERS]
                continue
            states[status["state"]] += 1
            out += [Reading(metric_name("mover", name, k), status[k]) for k in MOVER_COUNTERS]
        out += [Reading(metric_name("movers", s.lower()), states[s]) for s in MOVER_STATES]
        out += [
            Reading(metric_name("movers", s.lower()), n) for s, n in states.items() if s not in MOVER_STATES
        ]
        if "UNREACHABLE" not in states:
            out.append(Reading("movers.unreachable", 0))
        out.append(Reading("movers.total", len(names)))
        return out

    def _saag(self, deadline: _Deadline) -> int:
        url = self.settings.status_url
        try:
            resp = requests.get(url, timeout=deadline.left(f"GET {url}"))
        except requests.RequestException as exc:
            raise SlurperError(f"cannot fetch SAAG status {url}: {str(exc)[:200]}") from None
        if resp.status_code != 200:
            raise SlurperError(f"SAAG status {url} returned HTTP {resp.status_code}")
        return parse_status_only(resp.text)
