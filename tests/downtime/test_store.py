"""The downtime store on SQLite and PostgreSQL: semantics, recurrence across DST, audit, bad input."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from dateutil import tz

from downtime.index import DowntimeIndex
from downtime.store import DowntimeError, DowntimeStore
from downtime.timeparse import parse_time

NOW = 1_780_000_000.0
H = 3600.0
ZURICH = tz.gettz("Europe/Zurich")


def test_start_inclusive_end_exclusive(store: DowntimeStore) -> None:
    d = store.add(["condor/*"], NOW, NOW + H, "kernel update", "ops", now=NOW)
    idx = DowntimeIndex(store.windows(NOW - H, NOW + 2 * H))
    assert [w.downtime_id for w in idx.covering("condor/schedd.x.running", NOW)] == [d.id]
    assert idx.covering("condor/schedd.x.running", NOW + H - 0.001)
    assert idx.covering("condor/schedd.x.running", NOW + H) == []
    assert idx.covering("condor/schedd.x.running", NOW - 0.001) == []
    assert idx.covering("slurm/jobs", NOW) == []


def test_lists_by_phase(store: DowntimeStore) -> None:
    past = store.add(["a/*"], NOW - 3 * H, NOW - 2 * H, "old", "ops", now=NOW)
    cur = store.add(["a/*"], NOW - H, NOW + H, "now", "ops", now=NOW)
    nxt = store.add(["a/*"], NOW + 2 * H, NOW + 3 * H, "later", "ops", now=NOW)
    assert [d.id for d in store.list("active", NOW)] == [cur.id]
    assert [d.id for d in store.list("upcoming", NOW)] == [nxt.id]
    assert [d.id for d in store.list("past", NOW)] == [past.id]
    assert len(store.list("all", NOW)) == 3


def test_every_change_is_audited_and_nothing_deleted(store: DowntimeStore) -> None:
    d = store.add(["fts/*"], NOW, NOW + H, "link maintenance", "alice", ticket="https://t/9", now=NOW)
    store.extend(d.id, NOW + 3 * H, "bob", NOW + 60)
    store.end(d.id, NOW + 120, "carol")
    other = store.add(["fts/*"], NOW + 5 * H, NOW + 6 * H, "spare", "alice", now=NOW)
    store.cancel(other.id, "not needed after all", "dave", NOW + 180)
    trail = [(a.action, a.author) for a in store.audit(d.id)]
    assert trail == [("create", "alice"), ("extend", "bob"), ("end", "carol")]
    assert json.loads(store.audit(d.id)[1].detail) == {"end": [NOW + H, NOW + 3 * H]}
    assert store.require(d.id).end == NOW + 120
    cancelled = store.require(other.id)
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "not needed after all"
    assert [a.action for a in store.audit(other.id)] == ["create", "cancel"]
    assert store.windows(NOW + 4 * H, NOW + 7 * H) == []  # a cancelled downtime never matches
    assert len(store.all()) == 2


def test_weekly_recurrence_keeps_local_time_across_both_dst_changes(store: DowntimeStore) -> None:
    start = parse_time("2026-03-17T08:00", NOW, "Europe/Zurich")  # a Tuesday, CET
    d = store.add(["slurm/*"], start, start + 2 * H, "patch Tuesday", "ops", rrule="FREQ=WEEKLY;BYDAY=TU",
                  tz="Europe/Zurich", now=NOW)  # fmt: skip
    spring = [w for w in store.windows(start, start + 20 * 86400) if w.downtime_id == d.id]
    local = [datetime.fromtimestamp(w.start, ZURICH) for w in spring]
    assert [(x.strftime("%a %H:%M"), x.tzname()) for x in local] == [
        ("Tue 08:00", "CET"), ("Tue 08:00", "CET"), ("Tue 08:00", "CEST")
    ]  # fmt: skip
    assert all(w.end - w.start == 2 * H for w in spring)
    autumn0 = parse_time("2026-10-20T00:00", NOW, "Europe/Zurich")
    autumn = [w for w in store.windows(autumn0, autumn0 + 14 * 86400) if w.downtime_id == d.id]
    assert [datetime.fromtimestamp(w.start, ZURICH).strftime("%H:%M %Z") for w in autumn] == [
        "08:00 CEST", "08:00 CET"
    ]  # fmt: skip
    assert autumn[1].start - autumn[0].start == 7 * 86400 + H  # the clock went back one hour


def test_ending_a_recurring_downtime_stops_later_occurrences(store: DowntimeStore) -> None:
    d = store.add(["a/*"], NOW, NOW + H, "nightly", "ops", rrule="FREQ=DAILY", now=NOW)
    store.end(d.id, NOW + 86400 + 600, "ops")  # during the second occurrence
    ws = store.windows(NOW, NOW + 5 * 86400)
    assert [(w.start - NOW, w.end - NOW) for w in ws] == [(0, H), (86400, 86400 + 600)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scope": []}, "scope is empty"),
        ({"scope": ["  "]}, "scope is empty"),
        ({"end": NOW - 1}, "end must be after start"),
        ({"end": NOW}, "end must be after start"),
        ({"reason": " "}, "reason is required"),
        ({"author": ""}, "author is required"),
        ({"kind": "surprise"}, "kind 'surprise' is not one of planned, unplanned"),
        ({"severity": "minor"}, "severity 'minor' is not one of outage, at-risk"),
        ({"rrule": "EVERY TUESDAY"}, "is not valid"),
        ({"rrule": "FREQ=WEEKLY", "tz": "Mars/Olympus"}, "time zone 'Mars/Olympus' is unknown"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_stored(
    store: DowntimeStore, kwargs: dict, message: str
) -> None:
    args = {"scope": ["a/*"], "start": NOW, "end": NOW + H, "reason": "r", "author": "ops", **kwargs}
    with pytest.raises(DowntimeError, match=message):
        store.add(**args, now=NOW)
    assert store.all() == []


def test_sql_looking_text_is_stored_verbatim(store: DowntimeStore) -> None:
    evil = "x'); DROP TABLE downtime; --"
    d = store.add(["a/x*"], NOW, NOW + H, evil, "o'brien", ticket="https://t/?q=1;DROP", now=NOW)
    again = store.require(d.id)
    assert again.reason == evil and again.author == "o'brien" and again.ticket == "https://t/?q=1;DROP"
    with pytest.raises(DowntimeError, match="is not a glob over metric ids"):  # as the web form says
        store.add([f"a/{evil}*"], NOW, NOW + H, evil, "ops", now=NOW)
    assert len(store.all()) == 1


def test_changes_to_unknown_or_cancelled_downtimes(store: DowntimeStore) -> None:
    from downtime.store import DowntimeNotFound

    with pytest.raises(DowntimeNotFound, match="no downtime with id 42"):
        store.end(42, NOW, "ops")
    assert store.get(42) is None
    d = store.add(["a/*"], NOW, NOW + H, "r", "ops", now=NOW)
    store.cancel(d.id, "mistake", "ops", NOW)
    with pytest.raises(DowntimeError, match="is cancelled"):
        store.extend(d.id, NOW + 2 * H, "ops", NOW)


def test_ending_a_downtime_that_has_not_started_is_refused(store: DowntimeStore) -> None:
    d = store.add(["a/*"], NOW + H, NOW + 2 * H, "later", "ops", now=NOW)
    with pytest.raises(DowntimeError, match="has not started: cancel it instead"):
        store.end(d.id, NOW, "ops")
    assert store.require(d.id).end == NOW + 2 * H


def test_ical_keeps_recurrences_in_their_zone_and_ends_them(store: DowntimeStore) -> None:
    from downtime.ical import to_ical

    start = parse_time("2026-03-17T08:00", NOW, "Europe/Zurich")
    d = store.add(["slurm/*"], start, start + 2 * H, "patch Tuesday", "ops", rrule="FREQ=WEEKLY;BYDAY=TU",
                  tz="Europe/Zurich", now=NOW)  # fmt: skip
    store.end(d.id, start + 30 * 86400, "ops")
    text = to_ical([store.require(d.id)], NOW).decode()
    assert "DTSTART;TZID=Europe/Zurich:20260317T080000" in text
    assert "RRULE:FREQ=WEEKLY;UNTIL=20260416T070000Z;BYDAY=TU" in text.replace("\r\n ", "")
