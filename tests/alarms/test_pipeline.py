"""The alarm pipeline in process: real SQLite, a real SMTP receiver and a loopback HTTP endpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alarms.observation import Observation
from alarms.pipeline import AlarmPipeline, build
from alarms.store import AlarmStore, current_states
from rexmon.config import load


def make(write_config: Callable[..., Path], smtp: Any, http: Any, extra: str = "") -> AlarmPipeline:
    cfg = load(
        write_config(
            f"""
            [web]
            base_url = "https://mon.example.org/"

            [[alarm]]
            match = ["host/*"]
            warning = "~:80"
            critical = "~:90"
            renotify = "1h"
            stale = "1d"
            name = "hosts"
            {extra}

            [[notify]]
            name = "mail"
            url = "{smtp.url()}"

            [[notify]]
            name = "hook"
            url = "{http.url()}"
            """
        )
    )
    return build(cfg)


def obs(metric: str, t: float, value: float | None, **kw: Any) -> Observation:
    return Observation(metric, t, value, **kw)


def test_one_round_is_one_message_per_target_with_graph_links(
    write_config, smtp_server, http_receiver
) -> None:
    p = make(write_config, smtp_server, http_receiver)
    p.observe([obs("host/a", 1000, 95), obs("host/b", 1000, 85), obs("host/c", 1000, 1)], 1000)
    p.tick(1000)
    assert len(smtp_server.messages) == 1 and len(http_receiver.bodies) == 1
    mail = smtp_server.messages[0]
    assert mail["Subject"] == "[rexmon] 2 alarms: 1 CRITICAL, 1 WARNING"
    text = mail.get_content()
    assert "CRITICAL: host/a" in text and "value:    95 (range ~:90, rule hosts)" in text
    assert "https://mon.example.org/graph/host/b" in text and "host/c" not in text
    assert http_receiver.bodies[0]["title"] == mail["Subject"]
    # the same values again: nothing new; then a recovery
    p.observe([obs("host/a", 1060, 96), obs("host/b", 1060, 86)], 1060)
    p.tick(1060)
    assert len(smtp_server.messages) == 1
    p.observe([obs("host/a", 1120, 5)], 1120)
    p.tick(1120)
    assert smtp_server.messages[-1]["Subject"] == "[rexmon] RECOVERY host/a = 5"
    assert len(http_receiver.bodies) == 2
    p.close()


def test_slurper_defaults_alarm_without_rules(write_config, smtp_server, http_receiver) -> None:
    cfg = load(write_config(f'[[notify]]\nurl = "{smtp_server.url()}"\n'))
    p = build(cfg)
    p.observe([Observation("df/root", 50, 99, warning="~:92", critical="~:98")], 50)
    p.close()
    assert [m["Subject"] for m in smtp_server.messages] == ["[rexmon] CRITICAL df/root = 99"]


def test_smtp_down_retries_with_backoff_and_http_is_not_held_up(
    write_config, smtp_server, http_receiver
) -> None:
    p = make(write_config, smtp_server, http_receiver)
    smtp_server.stop()
    p.observe([obs("host/a", 0, 95)], 0)
    p.tick(0)
    assert len(http_receiver.bodies) == 1  # the healthy target got it at once
    p.observe([obs("host/a", 10, 5)], 10)  # a recovery queues behind the undelivered problem
    p.tick(20)  # the first retry is 30 s after the failure: not yet
    smtp_server.start()
    p.tick(25)
    assert smtp_server.messages == []
    p.tick(31)
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert subjects == ["[rexmon] CRITICAL host/a = 95", "[rexmon] RECOVERY host/a = 5"]
    assert AlarmStore(p.store.engine).undelivered() == 0


def test_restart_neither_repeats_nor_loses(write_config, smtp_server, http_receiver) -> None:
    p = make(write_config, smtp_server, http_receiver)
    p.observe([obs("host/a", 0, 95)], 0)  # evaluated and committed, not yet delivered
    assert smtp_server.messages == []
    again = make(write_config, smtp_server, http_receiver)  # a restart: state comes from the database
    again.observe([obs("host/a", 60, 95)], 60)
    again.tick(60)
    third = make(write_config, smtp_server, http_receiver)
    third.observe([obs("host/a", 120, 97)], 120)
    third.close()
    assert len(smtp_server.messages) == 1 and len(http_receiver.bodies) == 1


def test_ack_stops_renotification_and_shows_in_current_states(
    write_config, smtp_server, http_receiver
) -> None:
    p = make(write_config, smtp_server, http_receiver)
    p.observe([obs("host/a", 0, 95)], 0)
    p.tick(3600)
    assert [m["Subject"] for m in smtp_server.messages] == [
        "[rexmon] CRITICAL host/a = 95",
        "[rexmon] STILL CRITICAL host/a = 95",
    ]
    AlarmStore(p.store.engine).file_ack("host/a", "alice", "disk ordered", 3700)
    p.tick(7300)
    p.tick(11000)
    assert len(smtp_server.messages) == 2
    (state,) = current_states(p.store.engine)
    assert (state.metric_id, state.state, state.since, state.value) == ("host/a", "CRITICAL", 0, 95)
    assert state.acknowledged and state.ack_author == "alice" and state.ack_comment == "disk ordered"
    assert state.rule == "hosts" and not state.in_downtime


def test_tags_and_severities_route_messages(write_config, smtp_server, http_receiver) -> None:
    cfg = load(
        write_config(
            f"""
            [[alarm]]
            match = ["disk/*"]
            critical = "~:90"
            warning = "~:80"
            notify = ["storage"]

            [[alarm]]
            match = ["cpu/*"]
            critical = "~:90"

            [[notify]]
            url = "{smtp_server.url()}"
            tags = ["storage"]
            severities = ["CRITICAL"]

            [[notify]]
            url = "{http_receiver.url()}"
            tags = ["network"]
            """
        )
    )
    p = build(cfg)
    p.observe([obs("disk/a", 0, 85), obs("cpu/x", 0, 95)], 0)
    p.observe([obs("disk/a", 60, 95)], 60)
    p.close()
    # mail: storage-tagged and CRITICAL only; untagged cpu rule goes everywhere
    assert [m["Subject"] for m in smtp_server.messages] == [
        "[rexmon] CRITICAL cpu/x = 95",
        "[rexmon] CRITICAL disk/a = 95",
    ]
    assert [b["title"] for b in http_receiver.bodies] == ["[rexmon] CRITICAL cpu/x = 95"]
