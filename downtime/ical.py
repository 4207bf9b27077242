"""The iCalendar feed of downtimes (RFC 5545), for the operators' calendars."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vRecur

from downtime.checks import zone_key
from downtime.models import Downtime
from downtime.store import problem
from downtime.windows import Window

PRODID = "-//rexmon//downtimes//EN"


def to_ical(items: Iterable[Downtime | Window], now: float | None = None) -> bytes:
    """A VCALENDAR: one VEVENT per downtime (recurring ones with their RRULE) or per window; a stored
    downtime with a :func:`downtime.store.problem` covers nothing and is left out."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "rexmon downtimes")
    stamp = datetime.fromtimestamp(now, UTC) if now is not None else None
    for item in items:
        if isinstance(item, Downtime) and problem(item) is not None:
            continue
        cal.add_component(_event(item, stamp))
    return bytes(cal.to_ical())


def _event(item: Downtime | Window, stamp: datetime | None) -> Event:
    ev = Event()
    if isinstance(item, Window):
        ev.add("uid", f"rexmon-downtime-{item.downtime_id}-{int(item.start)}@rexmon")
        scope, ticket, status = item.scope, item.ticket, "CONFIRMED"
    else:
        ev.add("uid", f"rexmon-downtime-{item.id}@rexmon")
        scope, ticket = item.scope, item.ticket
        status = "CANCELLED" if item.status == "cancelled" else "CONFIRMED"
        if item.rrule:
            # a recurrence keeps its wall-clock time in its own zone: DTSTART carries that TZID, and an
            # early end becomes UNTIL, so calendars show 08:00 after a DST change and stop when it ends
            zone = ZoneInfo(zone_key(item.tz))
            rule = vRecur.from_ical(item.rrule.removeprefix("RRULE:"))
            if item.rrule_until is not None:
                rule.pop("COUNT", None)
                rule["UNTIL"] = [datetime.fromtimestamp(item.rrule_until, UTC)]
            ev.add("rrule", rule)
            ev.add("dtstart", datetime.fromtimestamp(item.start, zone))
            ev.add("dtend", datetime.fromtimestamp(item.end, zone))
    if "dtstart" not in ev:
        ev.add("dtstart", datetime.fromtimestamp(item.start, UTC))
        ev.add("dtend", datetime.fromtimestamp(item.end, UTC))
    ev.add("dtstamp", stamp or datetime.fromtimestamp(item.start, UTC))
    ev.add("summary", f"{item.severity} ({item.kind}): {item.reason}")
    lines = [f"Reason: {item.reason}", f"Author: {item.author}", f"Scope: {', '.join(scope)}"]
    if ticket:
        lines.append(f"Ticket: {ticket}")
        ev.add("url", ticket)
    ev.add("description", "\n".join(lines))
    ev.add("status", status)
    ev.add("categories", [item.kind, item.severity])
    return ev
