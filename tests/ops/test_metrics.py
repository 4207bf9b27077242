"""/metrics, /healthz and /readyz of the collector and of the web site, read as Prometheus reads them."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from downtime.db import upgrade
from rexmon.cli import cli
from rexmon.config import load
from tests.fixtures.prometheus import Prometheus
from tests.fixtures.smtp import SMTPReceiver, free_port
from tests.ops.conftest import MUNIN_LOAD, Rexmon, broken_plugin, get, get_json
from web import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, sorted labels), parsed by prometheus_client's own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def collector_config(write_config: Callable[..., Path], tmp_path: Path, port: int, extra: str = "") -> Path:
    return write_config(
        f"""
        [scheduler]
        state_dir = "{tmp_path / "state"}"
        jitter = 0
        metrics_listen = "127.0.0.1:{port}"

        [watchdog]
        max_age = "30s"

        [[slurper]]
        id = "load"
        type = "munin"
        interval = 1
        plugin = "{MUNIN_LOAD}"

        [[slurper]]
        id = "broken"
        type = "munin"
        interval = 1
        plugin = "{broken_plugin(tmp_path)}"
        {extra}
        """
    )


def test_collector_metrics_move_when_slurpers_run_and_fail(
    write_config: Callable[..., Path], tmp_path: Path, rexmon_process: Callable[..., Rexmon]
) -> None:
    port = free_port()
    run = rexmon_process(collector_config(write_config, tmp_path, port), "run")
    base = f"http://127.0.0.1:{port}"
    assert json.loads(run.wait_for(base + "/healthz")) == {"alive": True}
    ready = json.loads(run.wait_for(base + "/readyz", 200, timeout=30))
    assert ready["ready"] is True and ready["failed"] == []
    assert set(ready["checks"]) == {"archive", "database", "heartbeat"}
    assert ready["checks"]["heartbeat"]["detail"].startswith("all ")

    first = parse(get(base + "/metrics")[1].decode())
    time.sleep(3.5)
    status, body = get(base + "/metrics")
    assert status == 200
    second = parse(body.decode())

    def moved(name: str, **labels: str) -> float:
        return value(second, name, **labels) - value(first, name, **labels)

    assert moved("rexmon_slurper_runs_total", slurper="load") >= 2
    assert moved("rexmon_slurper_runs_total", slurper="broken") >= 2
    assert moved("rexmon_slurper_failures_total", slurper="broken") >= 2
    assert value(second, "rexmon_slurper_failures_total", slurper="load") == 0
    assert moved("rexmon_slurper_duration_seconds_count", slurper="load") >= 2
    assert moved("rexmon_archive_values_written_total") >= 2  # load's three values, rexmon's own health
    assert moved("rexmon_archive_write_seconds_count") >= 2
    assert moved("rexmon_writer_rounds_total") >= 2
    assert value(second, "rexmon_build_info", version=value_label(second, "rexmon_build_info")) == 1
    for name in ("rexmon_writer_queue_depth", "rexmon_journal_bytes", "rexmon_scheduler_lag_seconds_count"):
        assert any(k[0] == name for k in second), name


def value_label(samples: Samples, name: str) -> str:
    return next(dict(labels)["version"] for n, labels in samples if n == name)


def test_collector_readyz_names_what_failed(
    write_config: Callable[..., Path], tmp_path: Path, rexmon_process: Callable[..., Rexmon]
) -> None:
    port, dead = free_port(), free_port()
    cfg = collector_config(write_config, tmp_path, port, f'\n[archive]\nrrd_dir = "{tmp_path / "rrd"}"\n'
                           f'rrdcached = "127.0.0.1:{dead}"\n')  # fmt: skip
    run = rexmon_process(cfg, "run")
    body = json.loads(run.wait_for(f"http://127.0.0.1:{port}/readyz", 503))
    assert body["ready"] is False and "archive" in body["failed"]
    assert f"127.0.0.1:{dead}" in body["checks"]["archive"]["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_web_metrics_health_and_readiness(write_config: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "rrd").mkdir()
    cfg = load(write_config("[web]\npublic_read = false\n"))
    assert "no such table: collector_heartbeat" in create_app(cfg).test_client().get("/readyz").get_data(True)
    upgrade(cfg.database_url)
    client = create_app(cfg).test_client()
    assert client.get("/").status_code in (401, 403)  # the site needs a login ...
    health = client.get("/healthz")  # ... its health and metrics do not
    assert health.status_code == 200 and health.get_json() == {"alive": True}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.content_type.startswith("text/plain")
    assert any(name == "rexmon_build_info" for name, _ in parse(metrics.get_data(as_text=True)))
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["failed"] == ["heartbeat"], body
    assert body["checks"]["heartbeat"]["detail"] == "no collector has recorded a heartbeat yet"
    assert body["checks"]["archive"]["ok"] and body["checks"]["database"]["ok"]


def test_web_readyz_with_the_database_away(write_config: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "rrd").mkdir()
    port = free_port()
    cfg = load(
        write_config(f'[database]\nurl = "postgresql+psycopg2://rexmon:secret@127.0.0.1:{port}/rexmon"\n')
    )
    ready = create_app(cfg).test_client().get("/readyz")
    body = ready.get_json()
    assert ready.status_code == 503 and body["failed"] == ["database", "heartbeat"]
    detail = body["checks"]["database"]["detail"]
    assert f"127.0.0.1:{port}" in detail and "secret" not in detail and "OperationalError" in detail


def test_prometheus_scrapes_the_collector_and_the_web_site(
    write_config: Callable[..., Path],
    tmp_path: Path,
    rexmon_process: Callable[..., Rexmon],
    prometheus_server: Callable[..., Prometheus],
) -> None:
    cport, wport = free_port(), free_port()
    cfg = collector_config(write_config, tmp_path, cport)
    run = rexmon_process(cfg, "run")
    web = rexmon_process(cfg, "web", "--listen", f"127.0.0.1:{wport}")
    run.wait_for(f"http://127.0.0.1:{cport}/readyz")
    web.wait_for(f"http://127.0.0.1:{wport}/readyz")
    prom = prometheus_server({"collector": [f"127.0.0.1:{cport}"], "web": [f"127.0.0.1:{wport}"]})
    deadline = time.monotonic() + 30
    up: dict[str, str] = {}
    while up != {"collector": "1", "web": "1"} and time.monotonic() < deadline:
        time.sleep(0.5)
        up = {str(r["metric"]["job"]): str(r["value"][1]) for r in prom.query("up")}  # type: ignore[index]
    assert up == {"collector": "1", "web": "1"}, prom.targets()
    runs = prom.query('rexmon_slurper_runs_total{job="collector",slurper="load"}')
    assert runs and float(runs[0]["value"][1]) >= 1  # type: ignore[index]
    ages = prom.query('rexmon_collector_heartbeat_age_seconds{job="web",collector="all"}')
    assert ages and float(ages[0]["value"][1]) < 30  # type: ignore[index]
    assert get_json(f"http://127.0.0.1:{wport}/readyz")[0] == 200


def test_collector_metrics_count_notifications_by_target_and_alarm_rounds(
    write_config: Callable[..., Path],
    tmp_path: Path,
    rexmon_process: Callable[..., Rexmon],
    smtp_server: SMTPReceiver,
) -> None:
    port, closed = free_port(), free_port()
    cfg = collector_config(
        write_config, tmp_path, port,
        f"""
        [[alarm]]
        match = "load/*"
        critical = "1000000:"

        [[notify]]
        name = "ops"
        url = "{smtp_server.url()}"

        [[notify]]
        name = "nobody-listens"
        url = "{SMTPReceiver(closed).url()}"
        """,
    )  # fmt: skip
    run = rexmon_process(cfg, "run")
    base = f"http://127.0.0.1:{port}"
    run.wait_for(base + "/healthz")
    deadline = time.monotonic() + 60
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = parse(get(base + "/metrics")[1].decode())
        if (
            value(samples, "rexmon_notifications_sent_total", target="ops") >= 1
            and value(samples, "rexmon_notifications_failed_total", target="nobody-listens") >= 1
        ):
            break
        time.sleep(0.5)
    assert value(samples, "rexmon_notifications_sent_total", target="ops") >= 1
    assert value(samples, "rexmon_notifications_failed_total", target="nobody-listens") >= 1
    assert value(samples, "rexmon_notifications_failed_total", target="ops") == 0
    assert any(
        m["Subject"].startswith("CRITICAL") or "CRITICAL" in m["Subject"] for m in smtp_server.messages
    )
    assert any(n == "rexmon_outbox_backlog" for n, _ in samples)
    assert sum(v for (n, _), v in samples.items() if n == "rexmon_alarm_round_seconds_count") >= 1


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '[scheduler]\nmetrics_listen = "9108"\n',
            "[scheduler] metrics_listen: Value error, metrics_listen must",
        ),
        ('[scheduler]\nmetrics_listen = "host name:1"\n', "[scheduler] metrics_listen: Value error"),
        ('[watchdog]\nmax_age = "soon"\n', "[watchdog] max_age"),
        ("[watchdog]\nbark = true\n", "[watchdog] bark: unknown key"),
    ],
)
def test_bad_ops_keys_are_config_errors_naming_the_key(
    write_config: Callable[..., Path], runner: CliRunner, text: str, error: str
) -> None:
    result = runner.invoke(cli, ["--config", str(write_config(text)), "check"])
    assert result.exit_code == 2 and error in result.output, result.output


def test_a_metrics_listen_address_in_use_stops_the_collector_with_a_clear_error(
    write_config: Callable[..., Path], tmp_path: Path, rexmon_process: Callable[..., Rexmon]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = rexmon_process(collector_config(write_config, tmp_path, port), "run")
        assert run.proc is not None and run.proc.wait(60) == 1
    log = run.log.read_text()
    assert (
        f"cannot serve [scheduler] metrics_listen = '127.0.0.1:{port}'" in log
        and "Address already in use" in log
    )
