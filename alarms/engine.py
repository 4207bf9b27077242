"""The alarm engine, pure: records + readings + rules + downtimes + now -> records, transitions, notices.

No I/O and no clock: ``now`` is a parameter. Records are never mutated; changed ones are returned new.
See docs/alarms.md for the semantics in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from alarms.coverage import NO_DOWNTIME, Coverage, strongest
from alarms.observation import Observation
from alarms.ranges import Range
from alarms.rules import FlapSettings as FlapSettings  # re-exported: the engine's callers name it here
from alarms.rules import Rule, RuleSet
from alarms.state import State
from downtime.windows import Window

NoticeKind = Literal["problem", "recovery", "renotify", "flapping"]
#: what users were last told: a state, or that the metric flaps
Told = Literal["OK", "WARNING", "CRITICAL", "UNKNOWN", "FLAPPING"]
RATE_TYPES = frozenset({"COUNTER", "DERIVE", "ABSOLUTE"})


@dataclass
class MetricRecord:
    """Everything the engine remembers about one metric between rounds (persisted by alarms.store)."""

    metric_id: str
    state: State = "OK"
    since: float = 0.0
    value: float | None = None
    time: float | None = None
    ds_type: str = "GAUGE"
    interval: float = 60.0
    spec_warning: str | None = None
    spec_critical: str | None = None
    raw_time: float | None = None
    raw_value: float | None = None
    pending: State | None = None
    pending_since: float | None = None
    pending_count: int = 0
    #: the state users were last told about (OK until a problem is notified)
    notified: Told = "OK"
    notified_at: float | None = None
    acked: bool = False
    ack_author: str = ""
    ack_comment: str = ""
    flapping: bool = False
    changes: tuple[float, ...] = ()
    downtime_id: int | None = None
    downtime_severity: str | None = None
    stale: bool = False
    rule: str = ""
    #: the effective tolerances (the resolved rule's, else the slurper's defaults), for display
    warning: str | None = None
    critical: str | None = None
    #: when the newest value was archived (``now`` of its round): staleness is measured on arrival
    arrived: float | None = None


@dataclass(frozen=True)
class Transition:
    """One recorded state change (alarm history), notified or not."""

    metric_id: str
    time: float
    old: State
    new: State
    value: float | None
    reason: str
    downtime_id: int | None = None


@dataclass(frozen=True)
class Notice:
    """Something to tell people: the outbox turns notices into messages per target."""

    metric_id: str
    time: float
    kind: NoticeKind
    state: State
    previous: Told
    since: float
    value: float | None
    range: str
    rule: str
    tags: tuple[str, ...] = ()
    downtime: Window | None = None
    downtime_ended: bool = False


@dataclass
class Outcome:
    """What one engine call produced."""

    records: dict[str, MetricRecord] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def classify(rule: Rule, current: State, value: float) -> State:
    """The state ``value`` asks for, with hysteresis: leaving a bad state uses the recover_* range."""
    crit = rule.critical
    if current == "CRITICAL" and rule.recover_critical is not None:
        crit = rule.recover_critical
    if crit is not None and crit.alerts(value):
        return "CRITICAL"
    warn = rule.warning
    if current in ("WARNING", "CRITICAL") and rule.recover_warning is not None:
        warn = rule.recover_warning
    if warn is not None and warn.alerts(value):
        return "WARNING"
    return "OK"


def _breached(rule: Rule, state: State) -> str:
    rng: Range | None = rule.critical if state == "CRITICAL" else rule.warning
    if state == "OK":
        rng = rule.warning or rule.critical
    return "" if rng is None else rng.text


class Engine:
    """Evaluates observations and the passage of time; see :func:`classify` and docs/alarms.md."""

    def __init__(self, rules: RuleSet, flap: FlapSettings | None = None) -> None:
        self.rules = rules
        #: flap detection for rules that set none of their own (default: the rule set's, i.e. ``[alarms]``)
        self.flap = flap if flap is not None else rules.flap

    # -- the two entry points ------------------------------------------------------------------------
    def observe(
        self,
        prev: Mapping[str, MetricRecord],
        observations: Iterable[Observation],
        now: float,
        downtimes: Coverage = NO_DOWNTIME,
    ) -> Outcome:
        """Evaluate newly archived values."""
        out = Outcome()
        done = out.records
        resolve, covering = self.rules.resolve, downtimes.covering
        for obs in observations:
            mid = obs.metric_id
            rule = resolve(mid, obs.warning, obs.critical)
            if rule is None:
                continue
            old = done.get(mid) or prev.get(mid)
            if old is not None and old.time is not None and obs.time <= old.time:
                continue  # already evaluated (a re-delivered or out-of-order value)
            rec = _clone(old) if old is not None else MetricRecord(mid, since=obs.time)
            rec.ds_type, rec.interval, rec.rule = obs.ds_type, obs.interval, rule.name
            rec.spec_warning, rec.spec_critical = obs.warning, obs.critical
            rec.warning, rec.critical = _text(rule.warning), _text(rule.critical)
            arrived = now if obs.arrived is None else obs.arrived
            value = _rate(rec, obs) if obs.ds_type in RATE_TYPES else obs.value
            windows = covering(mid, now)
            window = strongest(windows) if windows else None
            ended = _enter_downtime(rec, window, now) if window or rec.downtime_id is not None else None
            if value is not None:
                rec.value, rec.time, rec.arrived, rec.stale = value, obs.time, arrived, False
                self._evaluate(rec, rule, value, obs.time, out)
            elif rec.time is None:
                rec.time, rec.arrived = obs.time, arrived  # the stale clock starts at the first sight
            if window is not None or rec.state != rec.notified or rec.changes or rule.renotify:
                self._settle(rec, rule, now, window, ended, out)
            done[mid] = rec
        return out

    def tick(
        self, prev: Mapping[str, MetricRecord], now: float, downtimes: Coverage = NO_DOWNTIME
    ) -> Outcome:
        """Staleness, downtime starts and ends, re-notification, flapping that calmed down."""
        out = Outcome()
        for metric_id, old in prev.items():
            rule = self.rules.resolve(metric_id, old.spec_warning, old.spec_critical)
            if rule is None:
                continue
            window = strongest(downtimes.covering(metric_id, now))
            if not self._tick_due(old, rule, now, window):
                continue
            rec = _clone(old)
            ended = _enter_downtime(rec, window, now)
            if not rec.stale and _stale(rec, rule, now):
                rec.stale = True
                rec.pending, rec.pending_since, rec.pending_count = None, None, 0
                self._change(rec, rule, "UNKNOWN", now, "stale", out)
            self._settle(rec, rule, now, window, ended, out)
            out.records[metric_id] = rec
        return out

    @staticmethod
    def acknowledge(rec: MetricRecord, author: str, comment: str) -> MetricRecord:
        """A sticky acknowledgement: no re-notification until the metric is OK again."""
        if rec.state == "OK":
            raise ValueError(f"{rec.metric_id} is OK: there is nothing to acknowledge")
        new = _clone(rec)
        new.acked, new.ack_author, new.ack_comment = True, author, comment
        return new

    # -- internals -----------------------------------------------------------------------------------
    def _tick_due(self, rec: MetricRecord, rule: Rule, now: float, window: Window | None) -> bool:
        if (window.downtime_id if window else None) != rec.downtime_id:
            return True
        if not rec.stale and _stale(rec, rule, now):
            return True
        if rec.flapping or rec.state != rec.notified:
            return True
        return _renotify_due(rec, rule, now)

    def _evaluate(self, rec: MetricRecord, rule: Rule, value: float, t: float, out: Outcome) -> None:
        wanted = classify(rule, rec.state, value)
        if wanted == rec.state:
            rec.pending, rec.pending_since, rec.pending_count = None, None, 0
            return
        if wanted != "OK" and (rule.samples > 1 or rule.for_ > 0):
            if rec.pending is None:
                rec.pending_since, rec.pending_count = t, 0
            rec.pending = wanted
            rec.pending_count += 1
            assert rec.pending_since is not None
            if rec.pending_count < rule.samples or t - rec.pending_since < rule.for_:
                return
        rec.pending, rec.pending_since, rec.pending_count = None, None, 0
        self._change(rec, rule, wanted, t, "value", out)

    def _change(self, rec: MetricRecord, rule: Rule, new: State, t: float, reason: str, out: Outcome) -> None:
        change = Transition(rec.metric_id, t, rec.state, new, rec.value, reason, rec.downtime_id)
        out.transitions.append(change)
        rec.state, rec.since = new, t
        if new == "OK":
            rec.acked, rec.ack_author, rec.ack_comment = False, "", ""
        flap = self.flap if rule.flap is None else rule.flap
        if flap.enabled:
            rec.changes = (*(c for c in rec.changes if c > t - flap.window), t)
        elif rec.changes:  # switched off: changes are not counted, so nothing can flap
            rec.changes = ()

    def _settle(
        self,
        rec: MetricRecord,
        rule: Rule,
        now: float,
        window: Window | None,
        ended: Window | None,
        out: Outcome,
    ) -> None:
        """Update flapping, then decide what to tell people."""
        suppressed = window is not None and (window.severity == "outage" or rec.state != "CRITICAL")
        if self._flapping(rec, rule, now, suppressed, window, out):
            return
        if rec.state != rec.notified:
            if suppressed or (rec.acked and rec.state != "OK"):
                return
            kind: NoticeKind = "recovery" if rec.state == "OK" else "problem"
            self._notice(rec, rule, now, kind, window or ended, out, downtime_ended=ended is not None)
        elif _renotify_due(rec, rule, now) and not suppressed:
            self._notice(rec, rule, now, "renotify", window, out)

    def _flapping(
        self, rec: MetricRecord, rule: Rule, now: float, suppressed: bool, window: Window | None, out: Outcome
    ) -> bool:
        """Start or end flapping; True while notifications are held back because of it."""
        flap = self.flap if rule.flap is None else rule.flap
        if not rec.flapping and len(rec.changes) < flap.start:
            return False  # the common case, decided without building anything
        if not flap.enabled:  # switched off since: flapping ends, and the current state is news
            rec.flapping, rec.changes = False, ()
            return False
        recent = tuple(c for c in rec.changes if c > now - flap.window)
        if recent != rec.changes:
            rec.changes = recent
        if not rec.flapping and len(recent) >= flap.start:
            rec.flapping = True
            if not suppressed:
                self._notice(rec, rule, now, "flapping", window, out, mark=False)
                rec.notified = "FLAPPING"  # when it calms down, the settled state is news
        elif rec.flapping and len(recent) <= flap.stop:
            rec.flapping = False
        return rec.flapping

    @staticmethod
    def _notice(
        rec: MetricRecord,
        rule: Rule,
        now: float,
        kind: NoticeKind,
        window: Window | None,
        out: Outcome,
        *,
        downtime_ended: bool = False,
        mark: bool = True,
    ) -> None:
        out.notices.append(
            Notice(
                rec.metric_id,
                now,
                kind,
                rec.state,
                rec.notified,
                rec.since,
                rec.value,
                _breached(rule, rec.state),
                rule.name,
                rule.notify,
                window,
                downtime_ended,
            )
        )
        if mark:
            rec.notified, rec.notified_at = rec.state, now


def _clone(rec: MetricRecord) -> MetricRecord:
    """A shallow copy, several times faster than copy.copy (100,000 of these per round)."""
    new = object.__new__(MetricRecord)
    new.__dict__.update(rec.__dict__)
    return new


def _enter_downtime(rec: MetricRecord, window: Window | None, now: float) -> Window | None:
    """Record the downtime covering the metric now; return a stand-in for one that just ended."""
    new_id = window.downtime_id if window else None
    ended = None
    if rec.downtime_id is not None and new_id is None:
        ended = Window(
            rec.downtime_id, now, now, (), "at-risk" if rec.downtime_severity == "at-risk" else "outage"
        )
    rec.downtime_id = new_id
    rec.downtime_severity = window.severity if window else None
    return ended


def _text(rng: Range | None) -> str | None:
    return None if rng is None else rng.text


def _stale(rec: MetricRecord, rule: Rule, now: float) -> bool:
    """No usable value has arrived for longer than the rule's ``stale``."""
    # arrival, not the value's own time: back-dated sources (Netbeam) deliver values old by design
    seen = rec.arrived if rec.arrived is not None else rec.time  # rows written before arrival was kept
    return seen is not None and now - seen > rule.stale_after(rec.interval)


def _renotify_due(rec: MetricRecord, rule: Rule, now: float) -> bool:
    return (
        rec.state != "OK"
        and rec.state == rec.notified
        and rule.renotify > 0
        and not rec.acked
        and rec.notified_at is not None
        and now - rec.notified_at >= rule.renotify
    )


def _rate(rec: MetricRecord, obs: Observation) -> float | None:
    """Per-second rate of a COUNTER/DERIVE (difference) or ABSOLUTE (value since the last read)."""
    prev_t, prev_v = rec.raw_time, rec.raw_value
    rec.raw_time, rec.raw_value = obs.time, obs.value
    if obs.value is None or prev_t is None or obs.time <= prev_t:
        return None
    dt = obs.time - prev_t
    if obs.ds_type == "ABSOLUTE":
        return obs.value / dt
    if prev_v is None:
        return None
    delta = obs.value - prev_v
    if delta < 0 and obs.ds_type == "COUNTER":
        return None  # a counter wrapped or its source restarted: no honest rate for this interval
    return delta / dt
