"""Security: logins on every write route, secrets never shown, rrdtool arguments escaped, metric ids
from outside validated, SQL-looking input stored verbatim."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rexmon.cli import cli
from rrd.graphargs import escape_text
from tests.web.conftest import Site, basic, make_site, set_states, site  # noqa: F401 (fixtures)

WRITE_METHODS = {"POST", "PUT", "DELETE", "PATCH"}
NOTIFY_PASSWORD = "hunter2-notify-pass"
SLURM_TOKEN = "eyJhbGciOi.slurm-token-secret"


def _url(rule: object) -> str:
    """A concrete URL for a route: every int converter 1, every other argument 'x'."""
    text = str(rule)
    text = re.sub(r"<int:[^>]+>", "1", text)
    return re.sub(r"<[^>]+>", "x", text)


@pytest.mark.parametrize("public_read", [True, False], ids=["public-read", "login-to-read"])
def test_every_write_route_needs_a_login(make_site: Callable[..., Site], public_read: bool) -> None:  # noqa: F811
    """Every POST/PUT/DELETE/PATCH route of the web app (enumerated from its URL map) without credentials: 401/403, nothing written."""  # noqa: E501
    web = make_site(public_read=public_read)
    client = web.client()
    routes = [
        (m, _url(r))
        for r in web.app.url_map.iter_rules()
        for m in sorted((r.methods or set()) & WRITE_METHODS)
    ]
    assert routes, "the app has no write routes to check"
    for method, url in routes:
        for body in ({"data": {"scope": "load/*", "reason": "x"}}, {"json": {"scope": ["load/*"]}}):
            r = client.open(url, method=method, **body)
            assert r.status_code in (401, 403), (method, url, r.status_code)


def _secret_config(write_config: Callable[..., Path], tmp_path: Path) -> Path:
    return write_config(
        f"""
        [web]
        secret_key = "cookie-signing-secret"
        graph_cache_dir = "{tmp_path / "graphs"}"

        [[notify]]
        name = "ops"
        url = "json://ops:{NOTIFY_PASSWORD}@127.0.0.1:9/hook"

        [[slurper]]
        id = "slurm"
        type = "slurm"
        timeout = 1
        mode = "rest"
        url = "http://127.0.0.1:9"
        api_version = "v0.0.40"
        token = {{ env = "SLURM_JWT" }}
        """
    )


def test_secrets_never_appear_in_logs_cli_output_or_pages(
    write_config: Callable[..., Path],
    tmp_path: Path,
    runner: CliRunner,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notify URL password and a Slurm token: absent from `rexmon check`, `rexmon run --once` output and logs (debug level), and every web page."""  # noqa: E501
    from rexmon.config import load
    from web import create_app

    monkeypatch.setenv("SLURM_JWT", SLURM_TOKEN)
    cfg = _secret_config(write_config, tmp_path)
    caplog.set_level(logging.DEBUG)
    outputs = [
        runner.invoke(cli, ["--config", str(cfg), "check"]),
        runner.invoke(cli, ["--config", str(cfg), "--log-level", "debug", "run", "--once"]),
        runner.invoke(cli, ["--config", str(cfg), "alarms", "test-notify"]),
    ]
    assert outputs[0].exit_code == 0, outputs[0].output
    assert outputs[1].exit_code == 1  # slurmrestd is not there: the run says so
    text = "\n".join(o.output for o in outputs) + caplog.text
    app = create_app(load(cfg))
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if "GET" in (rule.methods or set()) and not rule.arguments:
            text += client.get(str(rule), headers=basic()).get_data(as_text=True)
    assert "Connection refused" in text
    assert NOTIFY_PASSWORD not in text
    assert SLURM_TOKEN not in text
    assert "cookie-signing-secret" not in text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_graph_legend_text_is_escaped(text: str) -> None:
    """Legend, title and downtime texts with ':' '\\' and control characters: every ':' reaches rrdtool escaped, no raw '\\' or line break."""  # noqa: E501
    out = escape_text(text)
    assert not re.search(r"(?<!\\):", out)
    assert "\\" not in out.replace("\\:", "")
    assert not any(ord(c) < 32 or c == "\x7f" for c in out)


@pytest.mark.parametrize(
    "metric_id", ["../../etc/passwd", "load/../../x", "/etc/passwd", "load/\nFLUSHALL", "load/a b", "load"]
)
def test_metric_ids_from_the_cli_are_validated(
    metric_id: str, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """Metric ids given on the command line (`rexmon alarms ack`) that climb directories or inject lines: usage error naming the id."""  # noqa: E501
    cfg = write_config("")
    r = runner.invoke(cli, ["--config", str(cfg), "alarms", "ack", metric_id, "--comment", "x"])
    assert r.exit_code == 2
    assert "is not a metric id" in r.output


SQLISH = "x'); DROP TABLE alarm_state; -- \" OR 1=1 /*"


def test_sql_looking_input_is_stored_verbatim(site: Site, runner: CliRunner) -> None:  # noqa: F811
    """SQL-looking acknowledgement comment and author: stored and shown verbatim, tables intact."""
    set_states(site)
    cfg = str(site.config.path)
    r = runner.invoke(
        cli, ["--config", cfg, "alarms", "ack", "df/_dev_sda1", "--comment", SQLISH, "--author", SQLISH]
    )
    assert r.exit_code == 0, r.output
    listed = runner.invoke(cli, ["--config", cfg, "alarms", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["metric_id"]: row for row in json.loads(listed.stdout)}
    assert list(rows["df/_dev_sda1"].values()).count(SQLISH) == 2  # the comment and the author
    assert len(rows) >= 2  # the other states are still there
