"""Recurrence rules: what is refused and why, the bounded "does it ever occur" check against dateutil's
own unbounded search, and the bounded expansion."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from dateutil import rrule as dt_rrule
from hypothesis import given, settings
from hypothesis import strategies as st

from downtime.checks import DowntimeError
from downtime.recurrence import MAX_STEPS, check_rule, expand

START = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number from 1 to 9999"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL must be a whole number from 1 to 9999"),
        ("FREQ=DAILY;INTERVAL=99999999999", "INTERVAL must be a whole number from 1 to 9999"),
        ("FREQ=MINUTELY", "FREQ must be one of HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY"),
        ("FREQ=SECONDLY;INTERVAL=0", "FREQ must be one of"),
        ("INTERVAL=2", "FREQ must be one of"),
        ("FREQ=DAILY;BYEASTER=0", "'BYEASTER=0' is not a part of an RRULE"),
        ("FREQ=DAILY;DTSTART=20260101", "'DTSTART=20260101' is not a part of an RRULE"),
        ("FREQ=DAILY;interval=1;INTERVAL=00", "INTERVAL is given twice"),
        ("FREQ=DAILY\nFREQ=WEEKLY", "give one RFC 5545 RRULE line"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "has no occurrence"),
        ("FREQ=HOURLY;BYMONTH=4;BYMONTHDAY=31", "has no occurrence"),
        ("FREQ=MONTHLY;INTERVAL=12;BYMONTH=2", "has no occurrence"),  # every May only
        ("FREQ=DAILY;COUNT=0", "has no occurrence"),
        ("FREQ=WEEKLY;UNTIL=20000101T000000Z", "has no occurrence"),
        ("FREQ=YEARLY;BYMONTH=13", "has no occurrence"),
        ("FREQ=MONTHLY;BYDAY=+99MO", "is not valid"),
    ],
)
def test_refused_rules_name_the_rule_and_why(rule: str, message: str) -> None:
    with pytest.raises(DowntimeError) as err:
        check_rule(rule, START, "Europe/Zurich")
    assert err.value.field == "rrule" and message in err.value.message


@pytest.mark.parametrize(
    ("rule", "first"),
    [
        ("FREQ=WEEKLY;BYDAY=TU", datetime(2026, 6, 2, 20, 26, 40, tzinfo=UTC)),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", datetime(2044, 2, 29, 20, 26, 40, tzinfo=UTC)),
        ("FREQ=YEARLY;INTERVAL=19;BYMONTH=2;BYMONTHDAY=29", datetime(2064, 2, 29, 20, 26, 40, tzinfo=UTC)),
        ("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", datetime(2026, 11, 13, 20, 26, 40, tzinfo=UTC)),
    ],
)
def test_rare_rules_are_accepted_with_their_first_occurrence(rule: str, first: datetime) -> None:
    parsed = check_rule(rule, START, "UTC")
    assert next(iter(parsed)) == first


PARTS = st.fixed_dictionaries(
    {"FREQ": st.sampled_from(["YEARLY", "MONTHLY"]), "INTERVAL": st.integers(1, 30)},
    optional={
        "BYMONTH": st.lists(st.integers(1, 12), min_size=1, max_size=2, unique=True),
        "BYMONTHDAY": st.lists(st.integers(-31, 31).filter(bool), min_size=1, max_size=2, unique=True),
        "BYDAY": st.lists(
            st.sampled_from(["MO", "TU", "FR", "SU", "1MO", "-1FR", "5SU"]), min_size=1, max_size=2
        ),
        "BYSETPOS": st.sampled_from([1, -1, 3]),
    },
)


@settings(max_examples=150, deadline=None)
@given(PARTS, st.sampled_from([START, 1_000_000_000.0, 4_000_000_000.0]))
def test_bounded_check_agrees_with_dateutils_unbounded_search(parts: dict[str, object], start: float) -> None:
    """Whether a rule occurs, decided within 400 x INTERVAL years after a whole number of periods,
    is what dateutil finds searching up to the year 9999 (yearly and monthly rules, which it searches
    in well under a second)."""
    rule = ";".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in parts.items())
    try:
        truth = next(iter(dt_rrule.rrulestr(rule, dtstart=datetime.fromtimestamp(start, UTC))), None)
    except (ValueError, IndexError):
        truth = "invalid"
    try:
        ours = next(iter(check_rule(rule, start, "UTC")))
    except DowntimeError as exc:
        assert truth is None or truth == "invalid", (rule, exc.message)
        return
    assert ours == truth, rule


def test_expansion_is_bounded_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    """An hourly rule started in 2000 has more occurrences by now than one walk takes: the walk stops
    at MAX_STEPS instead of running on, and says so once."""
    start = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
    rule = check_rule("FREQ=HOURLY", start, "UTC")
    after = datetime(2026, 1, 1, tzinfo=UTC)
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        assert list(expand(rule, after, datetime(2026, 1, 2, tzinfo=UTC), "downtime 7")) == []
    assert caplog.text.count(f"downtime 7: over {MAX_STEPS} occurrences") == 1
    later = list(expand(rule, datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, 3, tzinfo=UTC), "x"))
    assert [d.hour for d in later] == [0, 1, 2, 3]
