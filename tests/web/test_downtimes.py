"""Downtimes through the web: API and forms, audit trail, iCal feed, bands on graphs, the overview icon."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import NOW, USER, Site, basic, set_states

REASON = "disk swap <script>alert(1)</script>"


@pytest.fixture
def downtime_id(client: FlaskClient) -> int:
    body = {
        "scope": ["load/*"],
        "start": str(NOW - 3600),
        "end": str(NOW + 3600),
        "reason": REASON,
        "severity": "outage",
        "ticket": "INC-42",
    }
    r = client.post("/api/downtimes", json=body, headers=basic())
    assert r.status_code == 201, r.get_data(as_text=True)
    created = r.get_json()
    assert created["author"] == USER and created["reason"] == REASON
    return int(created["id"])


def _token(client: FlaskClient, url: str) -> str:
    match = re.search(
        r'name="csrf_token" value="([^"]+)"', client.get(url, headers=basic()).get_data(as_text=True)
    )
    assert match
    return match.group(1)


def test_api_lists_and_shows_the_downtime(client: FlaskClient, downtime_id: int) -> None:
    rows = client.get("/api/downtimes?which=active").get_json()
    assert [r["id"] for r in rows] == [downtime_id]
    one = client.get(f"/api/downtimes/{downtime_id}").get_json()
    assert one["audit"] and one["audit"][0].get("author", USER) == USER
    assert client.get("/api/downtimes/99999").status_code == 404


def test_api_create_errors_name_the_field(client: FlaskClient) -> None:
    r = client.post("/api/downtimes", json={"scope": "load/*", "end": str(NOW + 60)}, headers=basic())
    assert r.status_code == 400 and r.get_json()["parameter"] == "reason"
    r = client.post("/api/downtimes", json={"scope": "../x", "end": "+1h", "reason": "x"}, headers=basic())
    assert r.status_code == 400 and r.get_json()["parameter"] == "scope"


def test_pages_escape_the_reason(client: FlaskClient, downtime_id: int) -> None:
    for url in ("/downtimes?which=all", f"/downtimes/{downtime_id}", "/graph/load/load"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in html and "disk swap &lt;script&gt;" in html, url


def test_overview_shows_metric_in_downtime(client: FlaskClient, downtime_id: int) -> None:
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'data-id="load/load" data-state="downtime"', html)
    notes = client.get(f"/api/metrics/load/load/annotations?start={NOW - 7200}&end={NOW}").get_json()
    assert [b["downtime_id"] for b in notes["bands"]] == [downtime_id]
    assert "alice" in notes["bands"][0]["label"]


def test_extend_and_end_through_forms(client: FlaskClient, downtime_id: int) -> None:
    url = f"/downtimes/{downtime_id}"
    token = _token(client, url)
    r = client.post(f"{url}/extend", data={"end": str(NOW + 7200), "csrf_token": token}, headers=basic())
    assert r.status_code == 303
    assert client.get(f"/api/downtimes/{downtime_id}").get_json()["end"] == NOW + 7200
    r = client.post(f"{url}/end", data={"csrf_token": token}, headers=basic())
    assert r.status_code == 303
    detail = client.get(url).get_data(as_text=True)
    assert detail.count("<tr><td>") >= 3  # created, extended, ended in the audit trail


def test_form_files_a_downtime_with_preview(client: FlaskClient) -> None:
    token = _token(client, "/downtimes/new")
    form = {
        "scope": "condor/*",
        "start": str(NOW),
        "end": str(NOW + 600),
        "reason": "upgrade",
        "csrf_token": token,
    }
    preview = client.post("/downtimes/new", data={**form, "action": "preview"}, headers=basic())
    assert "This downtime covers 3 metrics" in preview.get_data(as_text=True)
    saved = client.post("/downtimes/new", data={**form, "action": "save"}, headers=basic())
    assert saved.status_code == 303
    assert USER in client.get(saved.headers["Location"]).get_data(as_text=True)


def test_ical_feed(client: FlaskClient, downtime_id: int) -> None:
    r = client.get("/downtimes.ics")
    assert r.status_code == 200 and r.mimetype == "text/calendar"
    assert b"BEGIN:VCALENDAR" in r.data and b"disk swap" in r.data


def test_graph_annotations_have_the_band_and_the_threshold_lines(site: Site, downtime_id: int) -> None:
    set_states(site)  # load/load: warning ~:2, critical ~:5
    client = site.client()
    notes = client.get(f"/api/metrics/load/load/annotations?start={NOW - 7200}&end={NOW}").get_json()
    assert [(t["value"], t["level"]) for t in notes["thresholds"]] == [(2.0, "warning"), (5.0, "critical")]
    band = notes["bands"][0]
    assert band["start"] == NOW - 3600 and band["end"] == NOW + 3600
    assert "disk swap" in band["label"] and "by alice" in band["label"]
    html = client.get("/graph/load/load").get_data(as_text=True)
    assert "warning <code>~:2</code>" in html and "critical <code>~:5</code>" in html
    png = client.get("/img/load/load.png?period=day")
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"


def test_form_reads_times_in_the_zone_it_shows(client: FlaskClient) -> None:
    token = _token(client, "/downtimes/new")
    assert 'name="tz" value="' in client.get("/downtimes/new", headers=basic()).get_data(as_text=True)
    form = {
        "scope": "load/*",
        "start": "2025-11-22 08:00",
        "end": "+2h",
        "tz": "Europe/Zurich",
        "reason": "kernel update",
        "csrf_token": token,
    }
    preview = client.post("/downtimes/new", data={**form, "action": "preview"}, headers=basic())
    text = preview.get_data(as_text=True)
    assert "2025-11-22 08:00 CET – 2025-11-22 10:00 CET" in text
    assert "2025-11-22 07:00 UTC – 2025-11-22 09:00 UTC" in text
    saved = client.post("/downtimes/new", data={**form, "action": "save"}, headers=basic())
    new_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    got = client.get(f"/api/downtimes/{new_id}").get_json()
    assert (got["start"], got["end"], got["tz"], got["phase"]) == (
        NOW + 64800,
        NOW + 72000,
        "Europe/Zurich",
        "upcoming",
    )
    bad = client.post(
        "/downtimes/new", data={**form, "tz": "Mars/Olympus", "action": "preview"}, headers=basic()
    )
    assert bad.status_code == 400 and 'data-parameter="tz"' in bad.get_data(as_text=True)
    bad = client.post(
        "/downtimes/new", data={**form, "start": "lunchtime", "action": "preview"}, headers=basic()
    )
    assert bad.status_code == 400 and 'data-parameter="start"' in bad.get_data(as_text=True)


def test_store_refusals_are_400_naming_the_field(client: FlaskClient) -> None:
    body = {"scope": "load/*", "end": "+1h", "reason": "x", "rrule": "FREQ=SOMETIMES"}
    r = client.post("/api/downtimes", json=body, headers=basic())
    assert r.status_code == 400 and r.get_json()["parameter"] == "rrule"
