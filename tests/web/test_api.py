"""The JSON API: metrics, series (JSON and CSV), errors naming the parameter, the OpenAPI document."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import NOW


def test_metrics_list(client: FlaskClient) -> None:
    rows = client.get("/api/metrics").get_json()
    by_id = {r["id"]: r for r in rows}
    assert by_id["load/load"]["time"] == NOW and by_id["load/load"]["state"] == "UNJUDGED"
    # no alarm state: unjudged (never OK), and the web does not decide on its own that it is stale
    assert by_id["old/temperature"]["icon"] == "unjudged" and by_id["old/temperature"]["rule"] is None
    only = client.get("/api/metrics?match=condor/*").get_json()
    assert sorted(r["id"] for r in only) == [
        "condor/schedd.s1.held",
        "condor/schedd.s1.idle",
        "condor/schedd.s1.running",
    ]


def test_series_json(client: FlaskClient) -> None:
    body = client.get(f"/api/metrics/df/_dev_sdb1/series?start={NOW - 3600}&end={NOW}").get_json()
    assert body["step"] == 60 and body["cf"] == "AVERAGE"
    assert len(body["times"]) == len(body["values"]) == 60
    assert set(body["values"]) == {40.0}
    assert body["times"][-1] == NOW


def test_series_csv_both_forms(client: FlaskClient) -> None:
    for url in (
        "/api/metrics/df/_dev_sdb1/series.csv?period=hour",
        "/api/metrics/df/_dev_sdb1/series?period=hour&format=csv",
    ):
        r = client.get(url)
        lines = r.get_data(as_text=True).splitlines()
        assert r.mimetype == "text/csv"
        assert lines[0] == "time,df/_dev_sdb1,unit" and lines[-1] == f"{NOW},40.0,"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("cf=MEDIAN", "cf"),
        ("start=next+blue+moon", "start"),
        ("end=2026-13-45", "end"),
        (f"start={NOW}&end={NOW - 60}", "start"),
        ("period=fortnight", "period"),
        ("format=xml", "format"),
        ("resolution=-5", "resolution"),
    ],
)
def test_bad_query_params_are_400_naming_the_parameter(
    client: FlaskClient, query: str, parameter: str
) -> None:
    r = client.get(f"/api/metrics/load/load/series?{query}")
    assert r.status_code == 400
    assert r.get_json()["parameter"] == parameter


def test_unknown_metric_is_404_json(client: FlaskClient) -> None:
    r = client.get("/api/metrics/load/nosuch/series")
    assert r.status_code == 404 and "no such metric" in r.get_json()["error"]


def test_openapi_describes_every_api_route(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    rules = {r.rule for r in client.application.url_map.iter_rules() if r.rule.startswith("/api/")}
    described = {p.replace("{", "<").replace("}", ">") for p in doc["paths"]}
    for rule in rules - {"/api/openapi.json"}:
        normalized = re.sub(r"<[^<>]*downtime_id>", "<id>", rule)  # any converter: <int(max=...):downtime_id>
        assert normalized in described, rule


def test_alarms_empty_without_problems(client: FlaskClient) -> None:
    assert client.get("/api/alarms").get_json() == []
