"""Notices -> messages per target (Jinja2 templates) -> apprise, through the persistent outbox.

Routing: a notice goes to a target when the target accepts its severity and either side has no tags
or the rule's ``notify`` tags share one with the target's ``tags``. All notices of one evaluation round
for one target become one message. Delivery retries with exponential backoff and never drops a message;
each target is delivered in its own thread so a slow or broken one does not hold up the others, and a
failed attempt is retried counting from its end.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import apprise
import jinja2

with warnings.catch_warnings():
    # apprise's email plugin imports the stdlib imghdr, deprecated on 3.11/3.12 (gone in 3.13, where
    # apprise ships a shim); importing it here, quietly, keeps that warning out of every delivery
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    with contextlib.suppress(ImportError):
        import imghdr  # noqa: F401

from alarms.engine import Notice
from alarms.state import SEVERITY_ORDER
from alarms.store import AlarmStore, OutboxMessage, Pending
from downtime.db import mask

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "notify"
LABELS = {"recovery": "RECOVERY", "flapping": "FLAPPING"}


def _label(n: Notice) -> str:
    """CRITICAL / RECOVERY / STILL CRITICAL / FLAPPING: what a subject line starts with."""
    if n.kind == "problem":
        return n.state
    if n.kind == "renotify":
        return f"STILL {n.state}"
    return LABELS[n.kind]


class NotifyTargetLike(Protocol):
    """The fields of ``rexmon.config.NotifyTarget`` (one ``[[notify]]``) this module reads."""

    @property
    def url(self) -> Any: ...
    @property
    def name(self) -> str: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def severities(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Target:
    """One resolved notification target."""

    key: str
    url: str
    tags: frozenset[str]
    severities: frozenset[str]

    def accepts(self, notice: Notice) -> bool:
        """True when ``notice`` should reach this target."""
        severity = "WARNING" if notice.kind == "flapping" else notice.state
        if severity not in self.severities:
            return False
        return not self.tags or not notice.tags or bool(self.tags & set(notice.tags))

    def masked(self) -> str:
        """The URL as apprise shows it with privacy on (for logs), by the one URL masker."""
        return mask(self.url)


def targets_from_config(notify: Sequence[NotifyTargetLike]) -> list[Target]:
    """``Config.notify`` as targets; a target's key is its name, else ``notify#<n>``."""
    out = []
    for i, t in enumerate(notify):
        url = t.url.get() if hasattr(t.url, "get") else str(t.url)
        out.append(Target(t.name or f"notify#{i + 1}", url, frozenset(t.tags), frozenset(t.severities)))
    return out


def _fmt_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_value(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.6g}"


class Renderer:
    """Renders subject and body from ``templates/notify/{subject,body}.txt.j2``."""

    def __init__(self, base_url: str, directory: Path = TEMPLATES) -> None:
        self.base_url = base_url.rstrip("/")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain-text messages; apprise escapes per service
            keep_trailing_newline=False,
        )

    def context(self, n: Notice) -> dict[str, Any]:
        """What a template sees of one notice."""
        return {
            "metric": n.metric_id,
            "kind": n.kind,
            "label": _label(n),
            "state": n.state,
            "previous": n.previous,
            "value": n.value,
            "value_text": _fmt_value(n.value),
            "range": n.range,
            "rule": n.rule,
            "since": n.since,
            "since_text": _fmt_time(n.since),
            "time": n.time,
            "downtime": n.downtime,
            "downtime_ended": n.downtime_ended,
            "downtime_end_text": _fmt_time(n.downtime.end) if n.downtime else "",
            "graph_url": f"{self.base_url}/graph/{n.metric_id}",
        }

    def render(self, notices: Sequence[Notice]) -> tuple[str, str]:
        """(subject, body) of one message about ``notices``."""
        ctx = [self.context(n) for n in notices]
        counts: dict[str, int] = {}
        for c in ctx:
            counts[c["label"]] = counts.get(c["label"], 0) + 1
        args = {"notices": ctx, "counts": sorted(counts.items())}
        subject = self.env.get_template("subject.txt.j2").render(args).strip()
        return subject, self.env.get_template("body.txt.j2").render(args).strip() + "\n"


def route(notices: Sequence[Notice], targets: Sequence[Target], renderer: Renderer) -> list[OutboxMessage]:
    """One message per target for this round's notices (the worst severity names the message)."""
    out = []
    for target in targets:
        mine = [n for n in notices if target.accepts(n)]
        if not mine:
            continue
        subject, body = renderer.render(mine)
        worst = min((n.state for n in mine), key=lambda s: SEVERITY_ORDER[s])
        out.append(OutboxMessage(target.key, worst, subject, body, tuple(n.metric_id for n in mine)))
    return out


class DeliveryCounts(Protocol):
    """Where the deliverer reports its backlog and outcomes by target (the collector's /metrics); the
    shell wires it in, so the alarm side imports nothing from ``rexmon``."""

    def backlog(self, due: int) -> None: ...
    def sent(self, target: str) -> None: ...
    def failed(self, target: str) -> None: ...


class _Uncounted:
    def backlog(self, due: int) -> None:
        pass

    def sent(self, target: str) -> None:
        pass

    def failed(self, target: str) -> None:
        pass


class Deliverer:
    """Drains the outbox through apprise; failures back off exponentially (base * 2^attempts, capped),
    counted from the end of the failed attempt, so a target that took 60 s to fail is not retried at once.

    Each target is sent to in a thread of its own. ``deliver(now)`` waits for them (the pipeline's
    ``tick`` and ``rexmon run --once``); ``deliver(now, wait=False)`` (the collector's delivery thread)
    starts one attempt per target that has none running and returns at once, so a target that answers
    slowly (a byte every few seconds defeats any socket timeout) holds only its own messages.
    """

    def __init__(
        self,
        store: AlarmStore,
        targets: Sequence[Target],
        *,
        backoff: float = 30.0,
        max_backoff: float = 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
        counts: DeliveryCounts | None = None,
    ) -> None:
        self.store = store
        self.targets = {t.key: t for t in targets}
        self.counts: DeliveryCounts = counts or _Uncounted()
        self.backoff, self.max_backoff = backoff, max_backoff
        self._monotonic = monotonic
        self._apprise: dict[str, apprise.Apprise] = {}
        self._busy: set[str] = set()
        #: delivered messages whose outcome the database has not recorded yet (id -> when)
        self._unrecorded: dict[int, float] = {}
        #: per target: no attempt before this time (the backoff, also while it cannot be recorded)
        self._not_before: dict[str, float] = {}
        self._lock = threading.Lock()

    def deliver(self, now: float, *, wait: bool = True) -> int:
        """Send every due message; returns how many were delivered (with ``wait=False``: targets started)."""
        self._record_pending()
        by_target: dict[str, list[Pending]] = {}
        due = self.store.due(now)
        self.counts.backlog(len(due))
        with self._lock:  # sent, but the database could not record it yet: never sent twice
            due = [p for p in due if p.id not in self._unrecorded]
        for p in due:
            by_target.setdefault(p.target, []).append(p)
        # a target's messages go out in order: one still backing off holds the later ones
        by_target = {k: v for k, v in by_target.items() if v[0].next_attempt <= now}
        with self._lock:  # a target with an attempt still running is left to it, and one backing off
            by_target = {
                k: v
                for k, v in by_target.items()
                if k not in self._busy and self._not_before.get(k, 0) <= now
            }
            self._busy.update(by_target)
        if not by_target:
            return 0
        t0 = self._monotonic()
        if not wait:
            for key, messages in by_target.items():
                threading.Thread(
                    target=self._send_all,
                    args=(key, messages, now, t0),
                    name=f"rexmon-notify-{key}",
                    daemon=True,
                ).start()
            return len(by_target)
        with ThreadPoolExecutor(max_workers=len(by_target), thread_name_prefix="rexmon-notify") as pool:
            done = pool.map(lambda item: self._send_all(item[0], item[1], now, t0), by_target.items())
            return sum(done)

    def _send_all(self, key: str, messages: list[Pending], now: float, t0: float) -> int:
        """Send one target's messages in order; stop at its first failure (they keep their order).

        ``now`` is the round's time and ``t0`` the monotonic clock then: an attempt that ends ``d``
        seconds later ended at ``now + d``, and its retry is due ``delay`` after that. The outcome is
        recorded in the database; while it cannot be (locked, away), it is kept here, so a delivered
        message is not sent again and a failing target is not tried before its backoff.
        """
        sent = 0
        try:
            for i, msg in enumerate(messages):
                error = self._send(key, msg)
                ended = now + max(0.0, self._monotonic() - t0)
                if error is not None:
                    delay = min(self.max_backoff, self.backoff * 2**msg.attempts)
                    self.counts.failed(key)
                    log.warning("notify %s: %s; retry in %.0f s", key, error, delay)
                    with self._lock:
                        self._not_before[key] = ended + delay
                    self.store.failed(msg.id, error, ended + delay)
                    for later in messages[i + 1 :]:
                        self.store.failed(later.id, "waiting behind an earlier message", ended + delay)
                    break
                self.counts.sent(key)
                sent += 1
                with self._lock:
                    self._unrecorded[msg.id] = ended
                self._record_pending()
        except Exception as exc:  # the database is locked or away: recorded when it answers
            log.warning("notify %s: the outcome is not recorded yet (%s: %s)", key, type(exc).__name__, exc)
        finally:
            with self._lock:
                self._busy.discard(key)
        return sent

    def _record_pending(self) -> None:
        """Record deliveries the database could not take when they happened (oldest first)."""
        with self._lock:
            pending = sorted(self._unrecorded.items())
        for msg_id, when in pending:
            try:
                self.store.delivered(msg_id, when)
            except Exception:
                return  # still locked or away: the next round tries again
            with self._lock:
                self._unrecorded.pop(msg_id, None)

    def _send(self, key: str, msg: Pending) -> str | None:
        target = self.targets.get(key)
        if target is None:
            return f"no [[notify]] target named {key!r} in the configuration (message kept)"
        ap = self._apprise.get(key)
        if ap is None:
            ap = apprise.Apprise()
            if not ap.add(target.url):
                return f"{target.masked()} is not a valid apprise URL"
            self._apprise[key] = ap
        started = time.monotonic()
        try:
            ok = ap.notify(title=msg.subject, body=msg.body, body_format=apprise.NotifyFormat.TEXT)
        except Exception as exc:  # a plugin bug must not stop the other targets
            return f"{target.masked()}: {type(exc).__name__}: {exc}"
        if not ok:
            return f"delivery to {target.masked()} failed after {time.monotonic() - started:.1f} s"
        log.info("notify %s: delivered message %d to %s", key, msg.id, target.masked())
        return None


def send_test(target: Target, now: float) -> str | None:
    """Send a test message straight to ``target`` (not through the outbox); the error text, or None."""
    ap = apprise.Apprise()
    if not ap.add(target.url):
        return f"{target.masked()} is not a valid apprise URL"
    ok = ap.notify(
        title="[rexmon] test notification",
        body=f"A test message from rexmon to target {target.key} at {_fmt_time(now)}.\n",
        body_format=apprise.NotifyFormat.TEXT,
    )
    return None if ok else f"delivery to {target.masked()} failed"
