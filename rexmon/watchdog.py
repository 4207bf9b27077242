"""The dead man's switch: tell the ``watchdog`` targets when a collector stops, and when it is back.

The collector writes its heartbeat to the database (rexmon/heartbeat.py); ``rexmon web`` and ``rexmon
watchdog`` (from cron, on another host) read it. Several watchers may run at once, so the news is decided
in the database: a watcher that sees a collector change state moves ``watchdog_state`` from the state it
read to the new one with a compare-and-set UPDATE; only the watcher whose UPDATE changed the row sends,
then marks the row notified. A watcher that died between the two leaves the row unnotified, and after
``lease`` seconds another watcher takes the claim over and sends; if the targets fail, the winner retries
on its next check. So every transition is announced once, and is not lost to one watcher's crash.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from rexmon.heartbeat import Beat, WatchdogState, beats

log = logging.getLogger(__name__)
#: the tag that makes a ``[[notify]]`` target receive the watchdog's messages
TAG = "watchdog"
#: the watchdog_state row that remembers when the dead-man service was last hit
DEADMAN_ROW = "~deadman"
#: send(subject, body) -> None when delivered, else the error
Sender = Callable[[str, str], "str | None"]


@dataclass
class Report:
    """One check: every collector's state and heartbeat age, and what was sent."""

    ages: dict[str, float] = field(default_factory=dict)
    down: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What ``rexmon watchdog`` prints."""
        out = [
            f"{c}: {'DOWN' if c in self.down else 'up'} (heartbeat {_age(a)} ago)"
            for c, a in self.ages.items()
        ]
        if not self.ages:
            out.append("no collector has recorded a heartbeat yet")
        return out + [f"sent: {s}" for s in self.sent] + [f"error: {e}" for e in self.errors]


def _age(seconds: float) -> str:
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def message(beat: Beat, state: str, now: float, max_age: float, down_since: float | None) -> tuple[str, str]:
    """(subject, body) announcing that ``beat``'s collector is ``state`` ("down" or "up")."""
    age = now - beat.beat
    who = f"collector {beat.collector} on {beat.host} (pid {beat.pid}, rexmon {beat.version})"
    if state == "down":
        subject = f"[rexmon] PROBLEM: collector {beat.collector} stopped: no heartbeat for {_age(age)}"
        body = (
            f"The {who} has recorded no heartbeat since {_when(beat.beat)}, {_age(age)} ago "
            f"(allowed: {_age(max_age)}).\nNothing is being archived or alarmed by it until it is back.\n"
        )
    else:
        subject = f"[rexmon] RECOVERY: collector {beat.collector} is back"
        gone = f" after {_age(now - down_since)} down" if down_since is not None else ""
        body = f"The {who} records heartbeats again{gone}; the last at {_when(beat.beat)}.\n"
    return subject, body


class Watchdog:
    """Checks the heartbeats in ``engine`` and announces changes through ``send``."""

    def __init__(
        self,
        engine: Engine,
        send: Sender,
        *,
        max_age: float,
        lease: float = 120.0,
        deadman: Sender | None = None,
        deadman_interval: float = 300.0,
        watcher: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        #: stamps ``notified`` with when a message was delivered (checks take ``now`` as a parameter)
        self.clock = clock
        self.send = send
        self.max_age = max_age
        self.lease = lease
        self.deadman = deadman
        self.deadman_interval = deadman_interval
        self.watcher = watcher or f"{socket.getfqdn()}:{os.getpid()}"
        self._table = cast(Table, WatchdogState.__table__)

    @classmethod
    def from_config(cls, config: Any) -> Watchdog:
        """The watchdog of ``config`` (a ``rexmon.config.Config``): its database, targets and ages."""
        from downtime.db import make_engine, upgrade

        engine = make_engine(config.database_url)
        upgrade(engine)
        wd = config.watchdog
        deadman = apprise_sender([wd.deadman_url.get()]) if wd.deadman_url is not None else None
        return cls(
            engine,
            apprise_sender(watchdog_urls(config.notify)),
            max_age=wd.max_age,
            lease=max(120.0, 2 * wd.check_interval),
            deadman=deadman,
            deadman_interval=wd.deadman_interval,
        )

    def close(self) -> None:
        self.engine.dispose()

    def report_names(self) -> list[str]:
        """The collectors that have recorded a heartbeat."""
        return [b.collector for b in beats(self.engine)]

    def forget(self, collector: str) -> bool:
        """Drop a collector that is gone for good (its heartbeat and what was told); False if unknown."""
        from rexmon.heartbeat import CollectorHeartbeat

        hb = cast(Table, CollectorHeartbeat.__table__)
        with self.engine.begin() as conn:
            gone = conn.execute(hb.delete().where(hb.c.collector == collector)).rowcount
            conn.execute(self._table.delete().where(self._table.c.collector == collector))
        return bool(gone)

    def check(self, now: float) -> Report:
        """Judge every collector's heartbeat at ``now``; announce what changed (raises DatabaseError)."""
        from downtime.db import DatabaseError, mask

        report = Report()
        try:
            for beat in beats(self.engine):
                self._check_one(beat, now, report)
            if self.deadman is not None and report.ages and not report.down:
                self._deadman(now, report)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"watchdog: database {mask(str(self.engine.url))}: {exc}") from exc
        return report

    def _check_one(self, beat: Beat, now: float, report: Report) -> None:
        age = now - beat.beat
        want = "down" if age > self.max_age else "up"
        report.ages[beat.collector] = age
        if want == "down":
            report.down.append(beat.collector)
        with self.engine.connect() as conn:
            row = conn.execute(select(self._table).where(self._table.c.collector == beat.collector)).first()
        if row is None:
            # first sight: an up collector is no news; one already down is announced
            if self._insert(beat, want, now, announce=want == "down") and want == "down":
                self._announce(beat, want, now, None, report)
            return
        if row.state != want:
            if row.notified is None and row.claimed_at is not None:
                # the change it replaces was never told: the targets still believe ``want``; no news
                self._claim(beat, row, want, now, told=True)
                return
            down_since = row.changed if row.state == "down" else None
            if self._claim(beat, row, want, now):
                self._announce(beat, want, now, down_since, report)
            return
        owed = row.notified is None and row.claimed_at is not None
        mine = row.claimed_by == self.watcher
        if (
            owed
            and (mine or now - row.claimed_at > self.lease)
            and self._claim(beat, row, want, now, keep=True)
        ):
            down_since = None if want == "down" else row.changed
            self._announce(beat, want, now, down_since, report)

    def _insert(self, beat: Beat, state: str, now: float, *, announce: bool) -> bool:
        values = {"collector": beat.collector, "state": state, "changed": now, "beat": beat.beat}
        if announce:
            values |= {"claimed_by": self.watcher, "claimed_at": now}
        else:
            values |= {"notified": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(self._table.insert().values(**values))
        except IntegrityError:  # another watcher saw it first and decides
            return False
        return True

    def _claim(
        self, beat: Beat, row: Any, state: str, now: float, *, keep: bool = False, told: bool = False
    ) -> bool:
        """Compare-and-set the row from what was read to ``state``; True for the one watcher that won.

        ``keep``: take over the owed announcement of the current state; ``told``: nothing to announce.
        """
        t = self._table
        values: dict[str, Any] = {
            "claimed_by": self.watcher,
            "claimed_at": now,
            "notified": now if told else None,
        }
        if not keep:
            values |= {"state": state, "changed": now, "beat": beat.beat}
        stmt = (
            update(t)
            .where(t.c.collector == beat.collector, t.c.state == row.state, t.c.changed == row.changed)
            .where(t.c.claimed_at.is_(None) if row.claimed_at is None else t.c.claimed_at == row.claimed_at)
            .values(**values)
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount == 1)

    def _announce(self, beat: Beat, state: str, now: float, down_since: float | None, report: Report) -> None:
        subject, body = message(beat, state, now, self.max_age, down_since)
        error = self.send(subject, body)
        if error is not None:
            report.errors.append(f"{beat.collector} {state}: {error} (retried at the next check)")
            log.warning("watchdog: %s %s: %s", beat.collector, state, error)
            return
        t = self._table
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.collector == beat.collector, t.c.claimed_by == self.watcher, t.c.claimed_at == now)
                .values(notified=self.clock())
            )
        report.sent.append(subject)
        log.warning("watchdog: %s", subject)

    def _deadman(self, now: float, report: Report) -> None:
        """Hit the dead-man service if ``deadman_interval`` has passed (one watcher of many does)."""
        assert self.deadman is not None
        t = self._table
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.collector == DEADMAN_ROW)).first()
        if row is None:
            won = self._insert(Beat(DEADMAN_ROW, "", 0, "", now, now, None, 0), "up", now, announce=True)
        elif now - row.changed >= self.deadman_interval:
            stmt = update(t).where(t.c.collector == DEADMAN_ROW, t.c.changed == row.changed)
            with self.engine.begin() as conn:
                won = conn.execute(stmt.values(changed=now, claimed_by=self.watcher)).rowcount == 1
        else:
            return
        if won:
            error = self.deadman(
                "[rexmon] watchdog: collectors alive", f"All collectors alive at {_when(now)}.\n"
            )
            if error is not None:
                report.errors.append(f"dead-man service: {error}")
            else:
                report.sent.append("dead-man service")


def watchdog_urls(notify: Sequence[Any]) -> list[str]:
    """The apprise URLs of the ``[[notify]]`` targets tagged ``watchdog``."""
    return [t.url.get() if hasattr(t.url, "get") else str(t.url) for t in notify if TAG in t.tags]


def apprise_sender(urls: Sequence[str]) -> Sender:
    """A sender delivering to every URL with apprise; an error names the targets (masked) that failed.

    The targets are set up here, once: apprise loads its plugins on first use (a second or more on a
    busy host), which would otherwise delay the first, most urgent message.
    """
    import apprise

    from alarms.notify import Target  # the one URL masker (and apprise's email plugin imported quietly)

    def masked(url: str) -> str:
        return Target("watchdog", url, frozenset(), frozenset()).masked()

    valid = {url: apprise.Apprise().add(url) for url in urls}  # loads the plugins now

    def deliver(url: str, subject: str, body: str) -> bool:
        ap = apprise.Apprise()  # a fresh one each time: a plugin object throttles messages sent in a row
        return bool(
            ap.add(url) and ap.notify(title=subject, body=body, body_format=apprise.NotifyFormat.TEXT)
        )

    def send(subject: str, body: str) -> str | None:
        if not urls:  # nobody to tell: the log is the only witness (once per change, like a message)
            log.warning(
                "watchdog: %s (no [[notify]] target is tagged %r, so this is only logged)", subject, TAG
            )
            return None
        failed = [masked(url) for url in urls if not valid[url] or not deliver(url, subject, body)]
        return f"delivery failed to {', '.join(failed)}" if failed else None

    return send


def watch_in_background(config: Any) -> threading.Thread | None:
    """The watcher of ``rexmon web``: a daemon thread checking every ``check_interval`` (or None)."""
    from downtime.db import DatabaseError

    wd = config.watchdog
    if not wd.in_web:
        return None

    def loop() -> None:
        dog: Watchdog | None = None
        failing = False
        while True:
            try:
                dog = dog or Watchdog.from_config(config)
                dog.check(time.time())
                if failing:
                    log.warning("watchdog: the database answers again")
                failing = False
            except DatabaseError as exc:
                if not failing:
                    log.error("%s (the watchdog keeps trying)", exc)
                failing = True
            except Exception:  # the watcher must outlive any one failed check
                log.exception("watchdog check failed")
            pause(wd.check_interval)

    thread = threading.Thread(target=loop, name="rexmon-watchdog", daemon=True)
    thread.start()
    return thread


def pause(interval: float, clock: Callable[[], float] = time.monotonic) -> None:
    """Sleep until the next multiple of ``interval``: checks keep their cadence however long one takes."""
    time.sleep(interval - clock() % interval)
