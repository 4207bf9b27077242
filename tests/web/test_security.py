"""Logins, CSRF, escaping, path traversal and error pages: what an attacker or a careless user sees."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.web.conftest import NOW, USER, Site, basic

DOWNTIME = {"scope": "load/*", "start": str(NOW), "end": str(NOW + 3600), "reason": "kernel update"}


def csrf_token(client: FlaskClient) -> str:
    html = client.get("/downtimes/new", headers=basic()).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/downtimes/new"),
        ("post", "/api/downtimes"),
        ("post", "/downtimes/1/end"),
        ("post", "/downtimes/1/extend"),
        ("post", "/downtimes/1/cancel"),
        ("get", "/downtimes/new"),
    ],
)
def test_writes_without_login_are_refused(client: FlaskClient, method: str, url: str) -> None:
    r = getattr(client, method)(url, data=DOWNTIME)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    "auth",
    [
        basic(password="wrong"),
        basic(user="bob", password="x"),
        {"Authorization": "Basic !!notbase64"},
        {"Authorization": "Bearer x"},
    ],
)
def test_bad_credentials_are_refused(client: FlaskClient, auth: dict[str, str]) -> None:
    r = client.post("/api/downtimes", json=DOWNTIME, headers=auth)
    assert r.status_code == 401


def test_login_redirects_back_only_to_this_site(client: FlaskClient) -> None:
    assert client.get("/login").status_code == 401
    assert client.get("/login?next=/downtimes", headers=basic()).headers["Location"] == "/downtimes"
    assert client.get("/login?next=//evil.example/", headers=basic()).headers["Location"] == "/"


def test_form_post_needs_csrf_token(client: FlaskClient) -> None:
    r = client.post("/downtimes/new", data={**DOWNTIME, "action": "save"}, headers=basic())
    assert r.status_code == 400 and "expired or was not sent from this site" in r.get_data(as_text=True)
    r = client.post(
        "/downtimes/new", data={**DOWNTIME, "action": "save", "csrf_token": "forged"}, headers=basic()
    )
    assert r.status_code == 400


def test_form_preview_with_token_and_login(client: FlaskClient) -> None:
    token = csrf_token(client)
    r = client.post(
        "/downtimes/new", data={**DOWNTIME, "csrf_token": token, "action": "preview"}, headers=basic()
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "This downtime covers 1 metric" in html and "load/load" in html


def test_api_write_needs_json_body(client: FlaskClient) -> None:
    r = client.post("/api/downtimes", data=DOWNTIME, headers=basic())
    assert r.status_code == 415


def test_reading_can_require_login(make_site: Callable[..., Site]) -> None:
    client = make_site(public_read=False).client()
    for url in ("/", "/graph/load/load", "/img/load/load.png", "/api/metrics"):
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers=basic()).status_code == 200, url


def test_trusted_header_from_reverse_proxy(make_site: Callable[..., Site]) -> None:
    plain = make_site(public_read=False).client()
    assert plain.get("/", headers={"X-Remote-User": "carol"}).status_code == 401  # header not trusted
    proxied = make_site(public_read=False, trusted_header="X-Remote-User").client()
    html = proxied.get("/", headers={"X-Remote-User": "carol"}).get_data(as_text=True)
    assert "signed in as <strong>carol</strong>" in html


@pytest.mark.parametrize(
    "url",
    [
        "/graph/..%2F..%2Fetc/passwd",
        "/graph/../etc",
        "/img/..%2Fetc/passwd.png",
        "/graph/load/..",
        "/api/metrics/..%2F..%2Fetc/passwd/series",
        "/api/metrics/load/.hidden/series",
        "/img/load/..png",
    ],
)
def test_path_traversal_is_rejected(client: FlaskClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code in (400, 404)
    assert b"root:" not in r.data


def test_markup_in_urls_is_escaped(client: FlaskClient) -> None:
    r = client.get("/graph/%3Cscript%3Ealert(1)%3C%2Fscript%3E/x")
    assert r.status_code in (400, 404)
    assert "<script>alert(1)" not in r.get_data(as_text=True)
    r = client.get("/graph/load/load?period=%3Cscript%3E")
    assert r.status_code == 400 and "<script>" not in r.get_data(as_text=True)
    assert "&lt;script&gt;" in r.get_data(as_text=True)


def test_no_stack_traces_reach_the_client(make_site: Callable[..., Site]) -> None:
    site = make_site()
    site.archive.path("df/_dev_sda1").write_bytes(b"not an rrd file")
    client = site.client()
    for url in ("/img/df/_dev_sda1.png", "/api/metrics/df/_dev_sda1/series"):
        r = client.get(url)
        body = r.get_data(as_text=True)
        assert r.status_code == 500
        assert (
            "Traceback" not in body and str(site.tmp) not in body and "details are in the server log" in body
        )
    assert client.get("/", headers=basic()).status_code == 200  # one broken file does not break the overview


def test_security_headers(client: FlaskClient) -> None:
    r = client.get("/")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert USER not in r.get_data(as_text=True)
