"""The dead man's switch end to end: kill -9 the collector, a real SMTP receiver hears it once; restart it,
one recovery. Two watchers run at once (``rexmon web`` and ``rexmon watchdog --loop``), as a site with a
cron watcher on another host would have."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from tests.fixtures.smtp import SMTPReceiver, free_port
from tests.ops.conftest import MUNIN_LOAD, Rexmon

MAX_AGE = 4.0
CHECK = 1.0
#: the mail's way from the watcher to the receiver (apprise, SMTP, aiosmtpd in this process) on a busy machine
DELIVERY = 1.0


def subjects(smtp: SMTPReceiver) -> list[str]:
    return [str(m["Subject"]) for m in smtp.messages]


def wait_for_mail(smtp: SMTPReceiver, count: int, timeout: float) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while len(smtp.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return smtp.messages


def test_kill_9_of_the_collector_is_told_once_and_its_return_once(
    write_config: Callable[..., Path],
    tmp_path: Path,
    smtp_server: SMTPReceiver,
    rexmon_process: Callable[..., Rexmon],
    record_property: Callable[[str, object], None],
) -> None:
    cport, wport = free_port(), free_port()
    cfg = write_config(
        f"""
        [scheduler]
        state_dir = "{tmp_path / "state"}"
        jitter = 0
        metrics_listen = "127.0.0.1:{cport}"

        [watchdog]
        max_age = {MAX_AGE}
        check_interval = {CHECK}

        [[notify]]
        name = "ops"
        url = "{smtp_server.url()}"
        tags = ["watchdog"]

        [[slurper]]
        id = "load"
        type = "munin"
        interval = 1
        plugin = "{MUNIN_LOAD}"
        """
    )
    collector = rexmon_process(cfg, "run")
    collector.wait_for(f"http://127.0.0.1:{cport}/readyz", 200, timeout=30)  # its heartbeat is in
    web = rexmon_process(cfg, "web", "--listen", f"127.0.0.1:{wport}")
    web.wait_for(f"http://127.0.0.1:{wport}/readyz", 200)
    rexmon_process(cfg, "watchdog", "--loop")
    time.sleep(2 * CHECK)  # both watchers have seen it up
    assert smtp_server.messages == []

    collector.kill9()
    killed, killed_at = time.monotonic(), time.time()
    got = wait_for_mail(smtp_server, 1, MAX_AGE + CHECK + 10)
    told_after = time.monotonic() - killed
    record_property("told_after_kill_s", round(told_after, 3))
    assert len(got) == 1, "no watchdog mail"
    # where the time went (all epoch seconds from the database, relative to the kill)
    deadline, notified = time.monotonic() + 10, None
    while notified is None and time.monotonic() < deadline:  # the mail may arrive before it is marked
        with sqlite3.connect(tmp_path / "rexmon.db") as db:
            beat = db.execute("SELECT beat FROM collector_heartbeat").fetchone()[0]
            claimed, notified = db.execute("SELECT claimed_at, notified FROM watchdog_state").fetchone()
        time.sleep(0.05)
    assert notified is not None, "the watcher never recorded its message as sent"
    steps = {"last beat": beat - killed_at, "claimed": claimed - killed_at, "sent": notified - killed_at}
    record_property("steps_after_kill_s", {k: round(v, 3) for k, v in steps.items()})
    assert steps["claimed"] <= MAX_AGE + CHECK, f"judged down {steps['claimed']:.2f} s after the kill"
    assert told_after <= MAX_AGE + CHECK + DELIVERY, f"told {told_after:.2f} s after the kill: {steps}"
    assert subjects(smtp_server)[0].startswith("[rexmon] PROBLEM: collector all stopped: no heartbeat for")
    assert f"pid {collector.pid}" in got[0].get_content()
    time.sleep(MAX_AGE + 3 * CHECK)  # every watcher checked several times more
    assert len(smtp_server.messages) == 1, subjects(smtp_server)

    restarted = rexmon_process(cfg, "run")
    restarted.wait_for(f"http://127.0.0.1:{cport}/readyz", 200, timeout=30)
    got = wait_for_mail(smtp_server, 2, 3 * CHECK + 10)
    assert subjects(smtp_server)[1:] == ["[rexmon] RECOVERY: collector all is back"]
    assert f"pid {restarted.pid}" in got[1].get_content()
    time.sleep(3 * CHECK)
    assert len(smtp_server.messages) == 2, subjects(smtp_server)
    status = web.log.read_text() + (tmp_path / "watchdog-2.log").read_text()
    assert "Traceback" not in status
