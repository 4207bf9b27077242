"""Downtimes through the web: API and forms, audit trail, iCal feed, bands on graphs, the overview icon."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import NOW, USER, basic

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
