"""Recurrence rules of downtimes: checked before they are stored and again before they are expanded, and
expanded within a bound of steps, so no rule, even one already in the database, can hang a reader.

A rule is an RFC 5545 RRULE anchored at the downtime's start in its zone. dateutil, which expands it,
has two ways to run for ever or for seconds: ``INTERVAL=0`` never moves past the start, and a rule whose
parts never meet (``FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30``) is searched, one day at a time, up to the year
9999. Both are refused here. Whether a rule ever occurs is decided within bounded work: the Gregorian
calendar (weekdays included) repeats every 400 years, so the occurrences of a rule with ``INTERVAL=n``
repeat every ``400 * n`` years, and the search starts that many whole periods later, where fewer than
two periods are left before the year 9999.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from datetime import datetime

from dateutil import rrule as dt_rrule

from downtime.checks import DowntimeError, zone_of

log = logging.getLogger(__name__)
#: the frequencies a downtime may repeat at; a downtime every minute or second is no downtime
FREQUENCIES = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
#: parts of a rule (RFC 5545 3.3.10); dateutil's own BYEASTER does not repeat with the calendar
PARTS = frozenset(
    ("FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY")
    + ("BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST")
)
MAX_RULE = 500
#: occurrences walked from the start in one expansion (an hourly rule has 8,760 a year)
MAX_STEPS = 200_000
_CALENDAR_YEARS = 400
_LAST_YEAR = 9999
#: expansions cut at MAX_STEPS already logged (once per process each, not once per round)
_CUT: set[str] = set()


def _bad(rule: str, why: str) -> DowntimeError:
    return DowntimeError(f"rrule {rule[:80]!r} is not valid: {why}", "rrule")


def _parts(rule: str) -> tuple[str, dict[str, str]]:
    """The rule's text without ``RRULE:`` and its parts by name; DowntimeError for anything but a rule."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text or len(text) > MAX_RULE or "\n" in text or "\r" in text:
        raise _bad(rule, "give one RFC 5545 RRULE line (e.g. FREQ=WEEKLY;BYDAY=TU)")
    parts: dict[str, str] = {}
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        name = name.strip().upper()
        if not eq or name not in PARTS:
            raise _bad(rule, f"{item[:40]!r} is not a part of an RRULE")
        if name in parts:
            raise _bad(rule, f"{name} is given twice")
        parts[name] = value.strip()
    freq = parts.get("FREQ", "").upper()
    if freq not in FREQUENCIES:
        raise _bad(rule, f"FREQ must be one of {', '.join(FREQUENCIES)}")
    interval = parts.get("INTERVAL", "1")
    if not re.fullmatch(r"0*[1-9][0-9]{0,3}", interval):
        raise _bad(rule, "INTERVAL must be a whole number from 1 to 9999")
    return text, parts


def parse_rule(rule: str, start: float, tz: str) -> dt_rrule.rrule:
    """The rule anchored at ``start`` in ``tz``; DowntimeError naming the rule when it is not one."""
    zone = zone_of(tz)
    text, _ = _parts(rule)
    try:
        parsed = dt_rrule.rrulestr(text, dtstart=datetime.fromtimestamp(start, zone))
    except (ValueError, TypeError, OverflowError, IndexError) as exc:
        raise _bad(rule, str(exc)[:120]) from None
    if not isinstance(parsed, dt_rrule.rrule):
        raise _bad(rule, "give one RFC 5545 RRULE line (e.g. FREQ=WEEKLY;BYDAY=TU)")
    return parsed


def check_rule(rule: str, start: float, tz: str) -> dt_rrule.rrule:
    """:func:`parse_rule`, and the rule occurs at least once; bounded work, remembered per rule (so a
    bad rule read back from the database costs its check once per process)."""
    verdict = _verdict(rule, start, tz)
    if isinstance(verdict, DowntimeError):
        raise DowntimeError(verdict.message, verdict.field)
    return verdict


@functools.lru_cache(maxsize=4096)
def _verdict(rule: str, start: float, tz: str) -> dt_rrule.rrule | DowntimeError:
    try:
        return _check(rule, start, tz)
    except DowntimeError as exc:
        return exc


def _check(rule: str, start: float, tz: str) -> dt_rrule.rrule:
    parsed = parse_rule(rule, start, tz)
    interval = int(_parts(rule)[1].get("INTERVAL", "1"))
    try:
        first = next(iter(_periodic_probe(parsed, start, tz, interval)), None)
        if first is not None:  # it occurs, so within one period of the start: COUNT and UNTIL decide
            first = next(iter(parsed), None)
    except (ValueError, TypeError, OverflowError, IndexError) as exc:  # parts dateutil checks as it goes
        raise _bad(rule, f"a part is out of range ({str(exc)[:80]})") from None
    if first is None:
        raise DowntimeError(f"rrule {rule[:80]!r} has no occurrence (no date matches every part)", "rrule")
    return parsed


def _periodic_probe(parsed: dt_rrule.rrule, start: float, tz: str, interval: int) -> dt_rrule.rrule:
    """The same rule without COUNT and UNTIL, started as many whole periods later as leave between one
    and two periods before the year 9999 (or at its start when that is already so)."""
    dtstart = datetime.fromtimestamp(start, zone_of(tz))
    period = _CALENDAR_YEARS * interval
    shifts = (_LAST_YEAR - period - dtstart.year) // period
    if shifts > 0:
        dtstart = dtstart.replace(year=dtstart.year + shifts * period)
    probe: dt_rrule.rrule = parsed.replace(dtstart=dtstart, count=None, until=None)
    return probe


def expand(rule: dt_rrule.rrule, after: datetime, before: datetime, what: str = "") -> Iterator[datetime]:
    """The occurrences in ``[after, before]``, walking at most :data:`MAX_STEPS` from the start and
    stopping at one that does not move forward."""
    last: datetime | None = None
    for step, occ in enumerate(rule):
        if occ > before or (last is not None and occ <= last):
            return
        if step >= MAX_STEPS:
            if what not in _CUT:
                _CUT.add(what)
                log.warning("%s: over %d occurrences since its start; later ones are left out", what, step)
            return
        last = occ
        if occ >= after:
            yield occ
