"""Every web input that takes user data, property-based: forms, JSON bodies, query parameters, URL parts and
credentials. No input gets a 5xx or leaks a stack trace; bad data is a 4xx that names the field, and a
refused write leaves every stored downtime and audit row as it was."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import bcrypt
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from werkzeug.test import TestResponse

from rrd.names import MetricIdError, check_id
from tests.web.conftest import NOW, PASSWORD, SERIES, STALE, USER, Site, basic, set_states

ROOT = Path(__file__).resolve().parents[2]


def fuzz(examples: int) -> settings:
    """Each test's examples share its site (made once, not per example) and compare what they change."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


TABLES = ("downtime", "downtime_scope", "downtime_audit")
VALID: dict[str, str] = {
    "scope": "load/*",
    "start": str(NOW),
    "end": str(NOW + 3600),
    "reason": "kernel update",
    "kind": "planned",
    "severity": "outage",
    "ticket": "INC-42",
    "rrule": "",
    "tz": "UTC",
}
#: the fields a bad value may be blamed on: a start moved past the end is the end's fault
BLAME = {"start": {"start", "end"}, "tz": {"tz", "start", "end"}}

# -- what users type -----------------------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\x00",
    "now\x00",
    "\u202e\u200b",
    "💥",
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "1e308",
    "-1e308",
    "1e999",
    "-0",
    "0",
    "-0.0",
    "9" * 12,
    "-" + "9" * 12,
    "9" * 400,
    "+" + "9" * 400 + "h",
    "-" + "9" * 30 + "w",
    "+1e5h",
    "9999-12-31T23:59",
    "9999-12-31T23:59-12:00",
    "0001-01-01 00:00",
    "0001-01-01T00:00+14:00",
    "10000-01-01",
    "2026-13-45",
    "2026-03-29 02:30",
    "tomorrow 25:99",
    "../../etc/passwd",
    "/etc/passwd",
    "X" * 300,
    "%s%n{0}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "FREQ=SECONDLY;INTERVAL=0",
    "FREQ=DAILY;DTSTART=20260101T000000",
    "FREQ=BOGUS",
    "RRULE:",
    "a\nb",
    "a" * 100_000,
]
junk = st.text(max_size=40) | st.sampled_from(NASTY)
TIMES = [
    "now",
    str(NOW),
    "-1h",
    "+2h",
    "+30m",
    "2025-11-21 08:00",
    "2025-11-21T13:00:00+01:00",
    "tomorrow 08:00",
]
times = st.sampled_from(TIMES) | junk
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e308, -0.0, float(NOW), NOW + 3600])
    | junk
)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
#: values aimed at one field: RRULE parts (none that combine into a rule that never occurs, which costs
#: seconds to find out) and zone names that are POSIX strings, folders or files next to the zones
RRULE_PARTS = [
    *(f"FREQ={f}" for f in ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY", "X")),
    *("INTERVAL=0", "INTERVAL=99999999999", "COUNT=0", "COUNT=-1", "COUNT=99999999999999999999"),
    *("UNTIL=99991231T235959Z", "UNTIL=19700101T000000Z", "UNTIL=20251121", "UNTIL=x", "BYDAY=XX"),
    *("BYDAY=+99MO", "BYDAY=MO,TU", "BYMONTH=2", "BYMONTHDAY=0", "BYMONTHDAY=-1", "BYSETPOS=0"),
    *("BYHOUR=25", "BYHOUR=8", "BYMINUTE=-1", "WKST=ZZ", "DTSTART=20260101"),
    *("RRULE:", "", "=", ";"),
]
AIMED: dict[str, st.SearchStrategy[str]] = {
    "rrule": st.lists(st.sampled_from(RRULE_PARTS), min_size=1, max_size=4).map(";".join),
    "tz": st.sampled_from(
        ["UTC+3", "EST5EDT,M3.2.0,M11.1.0", "Factory", "Etc/GMT+12", "Pacific/Kiritimati", "A1"]
        + ["posixrules", "localtime", "Europe", "leapseconds", "right/UTC", "posix/Europe/Zurich"]
        + [":UTC", "UTC0", "zone.tab", "Europe/../../../../etc/passwd", "Europe/Zurich\x00"]
    ),
    "start": st.sampled_from(TIMES).map(lambda t: f"{t} ") | st.sampled_from(["now\n", "-0s", "+0h"]),
}


def bad(field: str) -> st.SearchStrategy[str]:
    return junk | AIMED.get(field, st.nothing())


#: other values a field may take that are valid
GOOD: dict[str, list[Any]] = {
    "scope": ["condor/*", "*/load df/*", ["load/*", "df/_dev_sd?1"], "load"],
    "start": TIMES,
    "end": ["+1h", str(NOW + 7200), "2025-11-22T00:00Z"],
    "reason": ["disk swap <b>now</b>", "  trimmed  ", "ümlaut ✓"],
    "kind": ["unplanned", ""],
    "severity": ["at-risk", ""],
    "ticket": ["", "x" * 300, 42],
    "rrule": ["FREQ=WEEKLY;BYDAY=TU", "RRULE:FREQ=DAILY;COUNT=3"],
    "tz": ["Europe/Zurich", "America/New_York", "Etc/GMT-14", "UTC"],
}


# -- checks --------------------------------------------------------------------------------------------------


def _fresh(site: Site, client: FlaskClient, **fields: str) -> int:
    """One downtime and nothing else: each example starts from the same database, whatever the one
    before stored; returns its id."""
    engine = site.app.extensions["rexmon"]["monitor"].engine
    with engine.begin() as c:
        for t in reversed(TABLES):
            c.execute(text(f"DELETE FROM {t}"))
    r = client.post("/api/downtimes", json={**VALID, **fields}, headers=basic())
    assert r.status_code == 201, r.get_data(as_text=True)
    return int(r.get_json()["id"])


def stored(site: Site) -> tuple[list[tuple[Any, ...]], ...]:
    """Every row of the downtime tables, to show that a refused request changed nothing."""
    engine = site.app.extensions["rexmon"]["monitor"].engine
    with engine.connect() as c:
        return tuple([tuple(r) for r in c.execute(text(f"SELECT * FROM {t} ORDER BY id"))] for t in TABLES)


def _sane(site: Site, r: TestResponse, sent: str) -> str:
    """No 5xx, and no stack trace, exception name, server path or library path in the body."""
    body = r.get_data().decode("utf-8", "replace")
    if r.mimetype.startswith("image/"):
        body = ""
    assert r.status_code < 500, f"{r.status_code} for {sent[:300]!r}: {body[:500]}"
    for leak in ("Traceback", 'File "', "site-packages", str(site.tmp), str(ROOT)):
        assert leak not in body or leak in sent, f"{leak!r} leaked for {sent[:300]!r}: {body[:500]}"
    for name in re.findall(r"\b\w+(?:Error|Exception)\b", body):
        assert name in sent, f"exception name {name!r} leaked for {sent[:300]!r}: {body[:500]}"
    return body


def _names(r: TestResponse, body: str, fields: set[str]) -> None:
    """A 400 names the field that was wrong: ``parameter`` in the API's JSON, ``field: why`` on a page."""
    if r.is_json:
        err = r.get_json()
        assert isinstance(err, dict) and err["status"] == r.status_code and err["error"], body
        assert err.get("parameter") in fields, f"blamed {err.get('parameter')!r}, expected {fields}: {body}"
    else:
        assert any(
            f'data-parameter="{f}"' in body or re.search(rf">\s*{re.escape(f)}: ", body) for f in fields
        ), f"none of {fields} named in {body[:1500]}"


def _pages_render(site: Site, client: FlaskClient, downtime_id: int | None = None) -> None:
    """Whatever a write stored, every page that shows downtimes still renders."""
    urls = ["/", "/downtimes?which=all", "/api/downtimes", "/downtimes.ics", "/graph/load/load"]
    if downtime_id is not None:
        urls += [f"/downtimes/{downtime_id}", f"/api/downtimes/{downtime_id}"]
    for url in urls:
        r = client.get(url, headers=basic())
        assert r.status_code == 200, f"{url}: {r.status_code} {_sane(site, r, url)[:500]}"


def _csrf(client: FlaskClient) -> str:
    html = client.get("/downtimes/new", headers=basic()).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@pytest.fixture
def fuzz_site(site: Site) -> Iterator[Site]:
    """The site with alarm states, so graphs and annotations draw threshold lines too."""
    set_states(site)
    yield site


# -- JSON API: POST /api/downtimes ---------------------------------------------------------------------------


@st.composite
def api_bodies(draw: st.DrawFn) -> tuple[str, set[str]]:
    """(JSON text, the fields that may be blamed): a valid downtime with one field made good, bad, of the
    wrong type, missing or given twice, or a body that is not a JSON object at all."""
    how = draw(st.sampled_from(["good", "junk", "typed", "missing", "twice", "body", "raw"]))
    items: list[tuple[str, Any]] = list(VALID.items())
    field = draw(st.sampled_from(sorted(VALID)))
    if how == "body":
        return json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict)))), {"body"}
    if how == "raw":
        cut = json.dumps(dict(items))
        raw = draw(st.sampled_from([cut[: draw(st.integers(0, len(cut) - 1))], "", "{", "\x00", "nul"]))
        return raw, {"body"}
    value: Any = {
        "good": lambda: draw(st.sampled_from(GOOD[field])),
        "junk": lambda: draw(bad(field)),
        "typed": lambda: draw(json_values),
        "missing": lambda: None,
        "twice": lambda: draw(bad(field)),
    }[how]()
    if how == "missing":
        items = [(k, v) for k, v in items if k != field]
    elif how == "twice":
        items.append((field, value))  # the last one wins, as in every JSON parser rexmon uses
    else:
        items = [(k, value if k == field else v) for k, v in items]
    pairs = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in items)
    return "{" + pairs + "}", BLAME.get(field, {field})


#: a downtime repeating since before "now", so every page looks for its next occurrence
PAST_RULE = '{"scope": "load/*", "start": "-2h", "end": "+1h", "reason": "x", "rrule": "%s"}'


@fuzz(150)
@example(('{"scope": "load/*", "end": "9999-12-31T23:59", "tz": "America/New_York", "reason": "x"}', {"end"}))
@example(('{"scope": "load/*", "end": "+' + "9" * 400 + 'h", "reason": "x"}', {"end"}))
@example(('{"scope": "load/*", "end": "+1h", "reason": "x", "tz": "/etc/passwd"}', {"tz"}))
@example(('{"scope": "load/*", "end": "+1h", "reason": "x", "tz": "' + "X" * 300 + '"}', {"tz"}))
@example(('{"scope": "load/*", "end": "+1h", "reason": "x", "tz": "../../../etc/localtime"}', {"tz"}))
@example(('{"scope": "' + "a" * 500 + '", "end": "+1h", "reason": "x"}', {"scope"}))
@example(('{"scope": "' + "a" * 399 + '", "end": "+1h", "reason": "x"}', {"scope"}))
@example(('{"scope": "load/*", "end": "+1h", "reason": "x", "ticket": "a\\nb"}', {"ticket"}))
@example(('{"scope": "load/*", "start": NaN, "end": Infinity, "reason": -0.0}', {"start", "end"}))
@example((PAST_RULE % "FREQ=MONTHLY;BYDAY=+99MO", {"rrule"}))
@example((PAST_RULE % "FREQ=HOURLY;BYHOUR=25", {"rrule"}))
@example((PAST_RULE % "FREQ=MINUTELY;BYMINUTE=-1", {"rrule"}))
@example((PAST_RULE % "FREQ=DAILY;INTERVAL=-1", {"rrule"}))
@example((PAST_RULE % "FREQ=DAILY;INTERVAL=0", {"rrule"}))
@given(api_bodies())
def test_api_create_downtime(fuzz_site: Site, case: tuple[str, set[str]]) -> None:
    """POST /api/downtimes: 201 and a downtime every page shows, or 400 naming the field, nothing stored."""
    raw, fields = case
    client = fuzz_site.client()
    _fresh(fuzz_site, client)
    before = stored(fuzz_site)
    r = client.post("/api/downtimes", data=raw, content_type="application/json", headers=basic())
    body = _sane(fuzz_site, r, raw)
    assert r.status_code in (201, 400), body
    if r.status_code == 400:
        _names(r, body, fields)
        assert stored(fuzz_site) == before
        return
    created = r.get_json()
    assert created["author"] == USER and created["start"] < created["end"]
    assert len(stored(fuzz_site)[0]) == len(before[0]) + 1
    _pages_render(fuzz_site, client, created["id"])


@fuzz(30)
@given(
    st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "", "application/jsonx", "json"]),
    st.binary(max_size=60),
)
def test_api_create_needs_json(fuzz_site: Site, content_type: str, data: bytes) -> None:
    """A body that is not application/json is a 415, whatever it holds."""
    before = stored(fuzz_site)
    r = fuzz_site.client().post("/api/downtimes", data=data, content_type=content_type, headers=basic())
    _sane(fuzz_site, r, repr(data))
    assert r.status_code == 415 and stored(fuzz_site) == before


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=YEARLY;BYMONTH=13",
        "FREQ=YEARLY;BYYEARDAY=0",
        "FREQ=DAILY;COUNT=0",
        "FREQ=WEEKLY;UNTIL=20000101T000000Z",
        "FREQ=DAILY;INTERVAL=0;BYMONTH=2",
        "FREQ=DAILY;interval=1;INTERVAL=00",
    ],
)
def test_rrule_that_never_occurs_is_refused(fuzz_site: Site, rule: str) -> None:
    """A repeating downtime with no occurrence is a 400 naming ``rrule``: every page that shows it would
    search for the next occurrence up to the year 9999 (seconds with FREQ=DAILY), or for ever when the
    rule never moves past its start (INTERVAL=0)."""
    client = fuzz_site.client()
    before = stored(fuzz_site)
    r = client.post("/api/downtimes", json={**VALID, "rrule": rule}, headers=basic())
    _names(r, _sane(fuzz_site, r, rule), {"rrule"})
    assert r.status_code == 400 and stored(fuzz_site) == before


# -- HTML form: /downtimes/new -------------------------------------------------------------------------------


@st.composite
def form_cases(draw: st.DrawFn) -> tuple[dict[str, str], str, set[str]]:
    """(form fields, action, the fields that may be blamed): one field good, bad or missing."""
    form = dict(VALID)
    field = draw(st.sampled_from(sorted(VALID)))
    how = draw(st.sampled_from(["good", "junk", "missing"]))
    if how == "missing":
        del form[field]
    else:
        value = draw(st.sampled_from(GOOD[field])) if how == "good" else draw(bad(field))
        form[field] = " ".join(value) if isinstance(value, list) else str(value)
    return form, draw(st.sampled_from(["preview", "save", "", "\x00"])), BLAME.get(field, {field})


@fuzz(100)
@example(({**VALID, "tz": "/etc/passwd"}, "preview", {"tz"}))
@example(({**VALID, "end": "9999-12-31T23:59", "tz": "America/New_York"}, "save", {"end"}))
@example(({**VALID, "scope": "a" * 500}, "save", {"scope"}))
@example(({**VALID, "ticket": "INC-1\r\nX-Evil: 1"}, "save", {"ticket"}))
@given(form_cases())
def test_form_new_downtime(fuzz_site: Site, case: tuple[dict[str, str], str, set[str]]) -> None:
    """The new-downtime form: a preview (200) or a saved downtime (303) for good data; bad data re-renders
    the form (400) with the field named and the typed values kept, and stores nothing."""
    form, action, fields = case
    client = fuzz_site.client()
    _fresh(fuzz_site, client)
    token = _csrf(client)
    before = stored(fuzz_site)
    r = client.post("/downtimes/new", data={**form, "action": action, "csrf_token": token}, headers=basic())
    body = _sane(fuzz_site, r, repr(form))
    if r.status_code == 303:
        assert action == "save" and len(stored(fuzz_site)[0]) == len(before[0]) + 1
        _pages_render(fuzz_site, client, int(r.headers["Location"].rsplit("/", 1)[1]))
        return
    assert stored(fuzz_site) == before
    assert r.status_code in (200, 400), body
    assert 'id="downtime-form"' in body  # the form, not an error page
    if r.status_code == 400:
        _names(r, body, fields)
    else:
        assert "This downtime covers" in body


@fuzz(40)
@given(st.lists(st.tuples(st.sampled_from([*VALID, "action", "csrf_token"]), junk), max_size=6))
def test_form_new_downtime_query(fuzz_site: Site, query: list[tuple[str, str]]) -> None:
    """GET /downtimes/new with any query shows the form, filled in but never saved."""
    before = stored(fuzz_site)
    r = fuzz_site.client().get("/downtimes/new?" + urlencode(query), headers=basic())
    body = _sane(fuzz_site, r, repr(query))
    assert r.status_code == 200 and 'id="downtime-form"' in body
    assert stored(fuzz_site) == before


# -- HTML forms: extend, end, cancel -------------------------------------------------------------------------


@fuzz(80)
@example("+" + "9" * 400 + "h")
@example("9999-12-31T23:59")
@example("0001-01-01T00:00+14:00")
@given(times)
def test_form_extend(fuzz_site: Site, end: str) -> None:
    """Extend: a new end (303, every page still renders), or the downtime's page again (400/409) with its
    forms and the error naming ``end``, nothing changed."""
    client = fuzz_site.client()
    token = _csrf(client)
    did = _fresh(fuzz_site, client, tz="Europe/Zurich")
    before = stored(fuzz_site)
    r = client.post(f"/downtimes/{did}/extend", data={"end": end, "csrf_token": token}, headers=basic())
    body = _sane(fuzz_site, r, end)
    if r.status_code == 303:
        _pages_render(fuzz_site, client, did)
        return
    assert r.status_code in (400, 409), body
    assert f'action="/downtimes/{did}/extend"' in body and stored(fuzz_site) == before
    if r.status_code == 400:
        _names(r, body, {"end"})
    else:
        assert "end must be after" in body


@fuzz(40)
@given(junk, st.sampled_from(["cancel", "end"]))
def test_form_cancel_and_end(fuzz_site: Site, reason: str, action: str) -> None:
    """Cancel needs a reason (the page again, 400, naming it; nothing changed); end ignores stray fields."""
    client = fuzz_site.client()
    token = _csrf(client)
    did = _fresh(fuzz_site, client, start=str(NOW - 60))
    before = stored(fuzz_site)
    r = client.post(
        f"/downtimes/{did}/{action}", data={"reason": reason, "csrf_token": token}, headers=basic()
    )
    body = _sane(fuzz_site, r, reason)
    if action == "cancel" and not reason.strip():
        assert r.status_code == 400 and stored(fuzz_site) == before
        assert f'action="/downtimes/{did}/cancel"' in body
        _names(r, body, {"reason"})
        return
    assert r.status_code == 303, body
    _pages_render(fuzz_site, client, did)


def test_zones_the_site_chose_are_taken_back(fuzz_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zones named as paths by the server, never by a user: $TZ as a path into the zone files is offered
    by its name (which the form then takes back), and a downtime the CLI filed with TZ=:Europe/Zurich
    can still be extended on the web."""
    monkeypatch.setenv("TZ", "/usr/share/zoneinfo/Europe/Zurich")
    client = fuzz_site.client()
    html = client.get("/downtimes/new", headers=basic()).get_data(as_text=True)
    assert 'name="tz" value="Europe/Zurich"' in html
    monitor = fuzz_site.app.extensions["rexmon"]["monitor"]
    d = monitor.store().add(["load/*"], NOW, NOW + 3600, "cli", "bob", tz=":Europe/Zurich", now=NOW)
    r = client.post(
        f"/downtimes/{d.id}/extend",
        data={"end": "2025-11-21 16:00", "csrf_token": _csrf(client)},
        headers=basic(),
    )
    assert r.status_code == 303
    assert client.get(f"/api/downtimes/{d.id}").get_json()["end"] == NOW + 2 * 3600  # 16:00 CET is 15:00 UTC


ids = st.integers(-(2**80), 2**80).map(str) | junk.filter(lambda s: s != "new").map(
    lambda s: quote(s, safe="")
)


@fuzz(80)
@example(str(2**63), "")
@example("9" * 30, "/extend")
@given(ids, st.sampled_from(["", "/extend", "/end", "/cancel", "/api"]))
def test_downtime_ids_in_urls(fuzz_site: Site, did: str, action: str) -> None:
    """A downtime id that is no downtime's (huge, negative, not a number) is a 4xx, and changes nothing."""
    client = fuzz_site.client()
    token = _csrf(client)
    existing = _fresh(fuzz_site, client, start=str(NOW - 60))
    before = stored(fuzz_site)
    if action == "":
        r = client.get(f"/downtimes/{did}", headers=basic())
    elif action == "/api":
        r = client.get(f"/api/downtimes/{did}", headers=basic())
    else:
        data = {"end": "+1h", "reason": "gone", "csrf_token": token}
        r = client.post(f"/downtimes/{did}{action}", data=data, headers=basic())
    _sane(fuzz_site, r, did)
    if r.status_code in (200, 303):  # the downtime there is, its id spelt another way (01, %31)
        assert re.fullmatch(rf"0*{existing}", unquote(did)), (did, action, r.status_code)
        return
    assert r.status_code in (404, 405, 308), (did, action, r.status_code)
    assert stored(fuzz_site) == before


# -- logins --------------------------------------------------------------------------------------------------


@fuzz(60)
@example("/\r\nSet-Cookie: x=1")
@example("/\\evil.example")
@example("/\t/evil.example")
@given(junk | st.sampled_from(["/", "/downtimes", "//evil.example", "https://evil.example/", "/%2F/x"]))
def test_login_redirects_only_to_this_site(fuzz_site: Site, target: str) -> None:
    """/login?next=...: a signed-in user goes back to a path on this site, never elsewhere, never a 5xx."""
    r = fuzz_site.client().get("/login?" + urlencode({"next": target}), headers=basic())
    _sane(fuzz_site, r, target)
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith("/") and not re.match(r"/[\s/\\]", location), location
    assert not re.search(r"[\x00-\x20\x7f]", location), location


credentials = st.tuples(st.text(max_size=20), st.text(max_size=80)).map(
    lambda up: {"Authorization": "Basic " + base64.b64encode(f"{up[0]}:{up[1]}".encode()).decode()}
) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=60).map(
    lambda h: {"Authorization": h}
)


@fuzz(60)
@example({"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}\x00".encode()).decode()})
@example({"Authorization": "Basic " + base64.b64encode(f"{USER}:{'x' * 100}".encode()).decode()})
@given(credentials)
def test_wrong_credentials(fuzz_site: Site, auth: dict[str, str]) -> None:
    """Any wrong Authorization header is a 401 challenge, for a sign-in and for a write."""
    client = fuzz_site.client()
    before = stored(fuzz_site)
    r = client.get("/login", headers=auth)
    _sane(fuzz_site, r, repr(auth))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic realm=")
    r = client.post("/api/downtimes", json=VALID, headers=auth)
    assert r.status_code == 401 and stored(fuzz_site) == before


@pytest.mark.parametrize(
    "password", ["x" * 100, "ü" * 40, "p" * 72], ids=["100-ascii", "80-bytes-utf8", "72"]
)
def test_long_passwords_sign_in(fuzz_site: Site, password: str) -> None:
    """A password past bcrypt's 72 bytes signs in, as with Apache: htpasswd -B hashed its first 72 bytes
    (and bcrypt 5 refuses to check a longer one). Another password is still refused."""
    path = fuzz_site.tmp / "htpasswd"
    hashed = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    path.write_text(path.read_text(encoding="utf-8") + f"carol:{hashed}\n", encoding="utf-8")
    client = fuzz_site.client()
    assert client.get("/login", headers=basic("carol", password)).status_code == 302
    assert client.get("/login", headers=basic("carol", "y" + password[1:])).status_code == 401


# -- query parameters of pages, images and the API -----------------------------------------------------------

GET_URLS = [
    "/",
    "/graph/load/load",
    "/graph/condor",
    "/img/load/load.png",
    "/img/condor.svg",
    "/api/metrics",
    "/api/metrics/load/load/series",
    "/api/metrics/df/_dev_sdb1/series.csv",
    "/api/metrics/load/load/annotations",
    "/api/alarms",
    "/api/downtimes",
    "/api/downtimes/preview",
    "/downtimes",
    "/downtimes.ics",
    "/config",
]
PARAMS: dict[str, list[str]] = {
    "period": ["hour", "day", "week", "month", "year"],
    "start": TIMES,
    "end": TIMES,
    "cf": ["AVERAGE", "MIN", "MAX"],
    "resolution": ["60", "3600", "0"],
    "format": ["json", "csv"],
    "size": ["small", "medium", "large"],
    "width": ["100", "4000"],
    "height": ["50", "2000"],
    "group": ["schedd.s1", ""],
    "which": ["active", "upcoming", "past", "all"],
    "all": ["1", "true"],
    "match": ["condor/*", "*", "[", "[!]"],
    "scope": ["load/*", "*/load, df/*"],
    "q": ["load"],
    "partial": ["1"],
}
#: a parameter an endpoint needs even when the query leaves it out
REQUIRED = {"/api/downtimes/preview": {"scope"}}


@st.composite
def queries(draw: st.DrawFn) -> list[tuple[str, str]]:
    keys = draw(st.lists(st.sampled_from(sorted(PARAMS)) | st.text(max_size=6), max_size=5))
    return [(k, draw(st.sampled_from(PARAMS.get(k, [""])) | junk)) for k in keys]


@fuzz(150)
@example("/graph/load/load", [("start", "999999990000"), ("end", "999999999999")])
@example("/graph/load/load", [("start", "-999999999999"), ("end", "-999999990000")])
@example("/img/load/load.png", [("start", "999999990000"), ("end", "999999999999")])
@example("/api/metrics/load/load/series", [("end", "9999-12-31T23:59-12:00")])
@example("/api/metrics/load/load/series", [("start", "0"), ("end", "315360000")])
@example("/api/downtimes/preview", [("scope", "a" * 500)])
@given(st.sampled_from(GET_URLS), queries())
def test_query_parameters(fuzz_site: Site, url: str, query: list[tuple[str, str]]) -> None:
    """Any query on any read: 200 (or 404 for a group that does not exist), or 400 naming a parameter."""
    r = fuzz_site.client().get(url + "?" + urlencode(query), headers=basic())
    body = _sane(fuzz_site, r, repr(query))
    assert r.status_code in (200, 400, 404), (r.status_code, body[:300])
    if r.status_code == 400:
        _names(r, body, {k for k, _ in query} | REQUIRED.get(url, set()))
    elif r.status_code == 404:
        assert url.startswith(("/graph/condor", "/img/condor")), body[:300]


# -- URL path segments ---------------------------------------------------------------------------------------

METRICS = {*SERIES, *STALE}
segment = (
    st.sampled_from(sorted({part for m in METRICS for part in m.split("/")}))
    | st.text(max_size=12)
    | st.sampled_from(["..", ".", ".hidden", "a..b", "%2F", "\x00", "x" * 300, "é", "a b", "a/b", "load.png"])
)
PATHS = [
    "/graph/{s}/{m}",
    "/img/{s}/{m}.png",
    "/img/{s}/{m}.svg",
    "/api/metrics/{s}/{m}/series",
    "/api/metrics/{s}/{m}/series.csv",
    "/api/metrics/{s}/{m}/annotations",
    "/graph/{s}",
    "/img/{s}.png",
]


@fuzz(120)
@example("/graph/{s}/{m}", "load", "..")
@example("/api/metrics/{s}/{m}/series", "\x00", "load")
@given(st.sampled_from(PATHS), segment, segment)
def test_metric_ids_in_urls(fuzz_site: Site, path: str, slurper: str, metric: str) -> None:
    """Odd metric ids in URLs: 200 for a metric that exists, else 400 or 404 (API errors name ``id``)."""
    url = path.format(s=quote(slurper, safe=""), m=quote(metric, safe=""))
    r = fuzz_site.client().get(url, headers=basic())
    body = _sane(fuzz_site, r, f"{slurper}/{metric}")
    if "{m}" in path:
        exists = f"{slurper}/{metric}" in METRICS
    elif path.startswith("/img/"):  # no ?group=: the metrics without a group (no dot in the name)
        exists = any(m.startswith(f"{slurper}/") and "." not in m.split("/")[1] for m in METRICS)
    else:
        exists = any(m.startswith(f"{slurper}/") for m in METRICS)
    if exists:
        assert r.status_code == 200, (url, r.status_code, body[:300])
        return
    if path.endswith("/annotations") and r.status_code == 200:  # no downtime or threshold names it
        assert _well_formed(f"{slurper}/{metric}") and r.get_json() == {"bands": [], "thresholds": []}
        return
    assert r.status_code in (308, 400, 404), (url, r.status_code, body[:300])
    if r.status_code == 400 and r.is_json:
        _names(r, body, {"id"})


def _well_formed(mid: str) -> bool:
    try:
        check_id(mid)
    except MetricIdError:
        return False
    return True
