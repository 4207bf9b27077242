"""Acting from the web: acknowledgements (form and JSON API), downtimes ended/extended/cancelled through
the JSON API, a metric's alarm history from the database, the page's time zone."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert

from alarms.history import metric_history
from alarms.store import AlarmHistoryRow, OutboxRow
from downtime.db import make_engine
from tests.web.conftest import NOW, USER, Site, basic, set_states


def _token(client: FlaskClient, url: str) -> str:
    page = client.get(url, headers=basic()).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, "no form with a CSRF token on " + url
    return m.group(1)


def test_ack_through_the_metric_page_form(site: Site) -> None:
    set_states(site)
    client = site.client()
    token = _token(client, "/graph/df/_dev_sda1")
    r = client.post(
        "/ack/df/_dev_sda1?tz=Europe/Zurich",
        data={"comment": "disk ordered, INC-7", "csrf_token": token},
        headers=basic(),
    )
    assert r.status_code == 303
    assert r.headers["Location"].endswith("/graph/df/_dev_sda1?tz=Europe/Zurich#ack")
    page = client.get("/graph/df/_dev_sda1").get_data(as_text=True)
    assert "Acknowledged: <q>disk ordered, INC-7</q>" in page
    assert "acknowledged by alice" in page  # the history section
    api = client.get("/api/alarms").get_json()
    got = next(a for a in api if a["metric_id"] == "df/_dev_sda1")
    assert (got["acknowledged"], got["ack_author"], got["ack_comment"]) == (True, USER, "disk ordered, INC-7")


def test_ack_form_needs_csrf_and_login(site: Site) -> None:
    set_states(site)
    client = site.client()
    assert client.post("/ack/df/_dev_sda1", data={"comment": "x"}).status_code == 401
    r = client.post("/ack/df/_dev_sda1", data={"comment": "x"}, headers=basic())
    assert r.status_code == 400 and "form has expired" in r.get_data(as_text=True)


def test_ack_through_the_api(site: Site) -> None:
    set_states(site)
    client = site.client()
    r = client.post("/api/metrics/load/load/ack", json={"comment": "looking"}, headers=basic())
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["ack_comment"] == "looking" and r.get_json()["acknowledged"] is True
    history = client.get("/api/metrics/load/load/history").get_json()
    assert history[0]["kind"] == "ack" and history[0]["detail"] == "looking"
    assert history[0]["author"] == USER


@pytest.mark.parametrize(
    ("url", "body", "status", "message"),
    [
        ("/api/metrics/load/load/ack", {}, 400, "comment"),
        ("/api/metrics/load/load/ack", {"comment": " \t"}, 400, "comment"),
        ("/api/metrics/load/load/ack", {"comment": "x" * 2001}, 400, "at most 2000"),
        ("/api/metrics/condor/schedd.s1.held/ack", {"comment": "x"}, 409, "nothing to acknowledge"),
        ("/api/metrics/condor/schedd.s1.idle/ack", {"comment": "x"}, 409, "no alarm state"),
        ("/api/metrics/nope/nope/ack", {"comment": "x"}, 404, "no such metric"),
    ],
)
def test_ack_refusals_name_the_problem(
    site: Site, url: str, body: dict[str, str], status: int, message: str
) -> None:
    set_states(site)
    r = site.client().post(url, json=body, headers=basic())
    assert r.status_code == status, r.get_data(as_text=True)
    assert message in r.get_json()["error"] + r.get_json().get("parameter", "")


def test_ack_api_takes_only_json_and_a_login(site: Site) -> None:
    set_states(site)
    client = site.client()
    assert client.post("/api/metrics/load/load/ack", json={"comment": "x"}).status_code == 401
    r = client.post("/api/metrics/load/load/ack", data={"comment": "x"}, headers=basic())
    assert r.status_code == 415


def _downtime(client: FlaskClient) -> int:
    body = {"scope": ["load/*"], "start": str(NOW - 3600), "end": str(NOW + 3600), "reason": "kernel"}
    r = client.post("/api/downtimes", json=body, headers=basic())
    assert r.status_code == 201
    return int(r.get_json()["id"])


def test_downtime_extend_end_cancel_through_the_api(site: Site) -> None:
    client = site.client()
    did = _downtime(client)
    r = client.post(f"/api/downtimes/{did}/extend", json={"end": "+3h"}, headers=basic())
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["end"] == NOW + 3 * 3600
    r = client.post(f"/api/downtimes/{did}/end", json={}, headers=basic())
    assert r.status_code == 200 and r.get_json()["end"] == NOW
    assert [a["action"] for a in r.get_json()["audit"]][-1] == "end"
    other = _downtime(client)
    r = client.post(f"/api/downtimes/{other}/cancel", json={"reason": "postponed"}, headers=basic())
    assert r.status_code == 200 and r.get_json()["cancel_reason"] == "postponed"
    r = client.post(f"/api/downtimes/{other}/extend", json={"end": "+1h"}, headers=basic())
    assert r.status_code == 409 and "cancel" in r.get_json()["error"]


@pytest.mark.parametrize(
    ("action", "body", "status", "parameter"),
    [
        ("extend", {}, 400, "end"),
        ("extend", {"end": "someday"}, 400, "end"),
        ("cancel", {"reason": ""}, 400, "reason"),
        ("cancel", [], 400, "body"),
    ],
)
def test_downtime_api_refusals_name_the_field(
    site: Site, action: str, body: object, status: int, parameter: str
) -> None:
    client = site.client()
    did = _downtime(client)
    r = client.post(f"/api/downtimes/{did}/{action}", json=body, headers=basic())
    assert r.status_code == status
    assert r.get_json()["parameter"] == parameter


def test_downtime_api_needs_login_json_and_an_existing_id(site: Site) -> None:
    client = site.client()
    did = _downtime(client)
    assert client.post(f"/api/downtimes/{did}/end", json={}).status_code == 401
    assert client.post(f"/api/downtimes/{did}/end", data={}, headers=basic()).status_code == 415
    r = client.post("/api/downtimes/999/end", json={}, headers=basic())
    assert r.status_code == 404 and "no downtime #999" in r.get_json()["error"]


def test_history_merges_transitions_notifications_and_acks(site: Site) -> None:
    set_states(site)
    engine = make_engine(site.config.database_url)
    with engine.begin() as conn:
        conn.execute(
            insert(AlarmHistoryRow),
            [
                {
                    "metric_id": "df/_dev_sda1",
                    "time": NOW - 900,
                    "old_state": "OK",
                    "new_state": "WARNING",
                    "value": 85.0,
                    "reason": "value",
                },
                {
                    "metric_id": "df/_dev_sda1",
                    "time": NOW - 600,
                    "old_state": "WARNING",
                    "new_state": "CRITICAL",
                    "value": 91.0,
                    "reason": "value",
                },
                {
                    "metric_id": "df/_dev_sdb1",
                    "time": NOW - 500,
                    "old_state": "OK",
                    "new_state": "WARNING",
                    "value": 1.0,
                    "reason": "value",
                },
            ],
        )
        row = {"target": "ops-mail", "severity": "CRITICAL", "body": "b", "attempts": 1, "last_error": ""}
        conn.execute(
            insert(OutboxRow),
            [
                {
                    **row,
                    "created": NOW - 590,
                    "subject": "CRITICAL df/_dev_sda1",
                    "metric_ids": '["df/_dev_sda1"]',
                    "next_attempt": NOW,
                    "delivered_at": NOW - 580,
                },
                # an id with LIKE's wildcard in it must not match df/_dev_sda1
                {
                    **row,
                    "created": NOW - 580,
                    "subject": "other",
                    "metric_ids": '["df/xdev_sda1"]',
                    "next_attempt": NOW,
                    "delivered_at": None,
                },
            ],
        )
    client = site.client()
    assert (
        client.post(
            "/api/metrics/df/_dev_sda1/ack", json={"comment": "disk ordered"}, headers=basic()
        ).status_code
        == 201
    )
    events = metric_history(engine, "df/_dev_sda1")
    engine.dispose()
    assert [(e.kind, e.summary) for e in events] == [
        ("ack", "acknowledged by alice"),
        ("notification", "to ops-mail"),
        ("transition", "WARNING → CRITICAL"),
        ("transition", "OK → WARNING"),
    ]
    assert events[1].detail == "CRITICAL df/_dev_sda1 (delivered)"
    assert events[2].detail == "value, value 91"
    page = client.get("/graph/df/_dev_sda1").get_data(as_text=True)
    section = page[page.index('id="history"') :]
    assert (
        section.index("acknowledged by alice")
        < section.index("to ops-mail")
        < section.index("WARNING → CRITICAL")
    )
