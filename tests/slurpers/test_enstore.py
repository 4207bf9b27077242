"""Enstore slurper: text and Python-repr parsers (never eval), end to end with a fake enstore command."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from slurpers.api import PayloadError, SlurperError
from slurpers.enstore import (
    movers_from_config,
    parse_get_queue,
    parse_mover_status,
    parse_queue_length,
    parse_repr,
    parse_status_only,
)
from tests.slurpers.conftest import DATA, Fakes

D = DATA / "enstore"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # the Users Guide sample: header lines without a colon, two spaces after the colon, status dict
        (
            "get_queue_guide.txt",
            {"pending_reads": 0, "pending_writes": 2, "active_reads": 0, "active_writes": 0},
        ),
        ("get_queue.txt", {"pending_reads": 1, "pending_writes": 2, "active_reads": 1, "active_writes": 0}),
    ],
)
def test_parse_get_queue(name: str, expected: dict[str, int]) -> None:
    assert parse_get_queue((D / name).read_text(), "LTO8.library_manager") == expected


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (
            (D / "get_queue_error.txt").read_text(),
            SlurperError,
            "Enstore answered TIMEDOUT LTO9.library_manager",
        ),
        ("Pending read requests:  1\n", PayloadError, "no pending_writes, active_reads, active_writes"),
        ("", PayloadError, r"\(empty output\)"),
        ("Pending read requests:  many\n", PayloadError, "no pending_reads"),
    ],
)
def test_parse_get_queue_errors(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_get_queue(text, "LTO9.library_manager")


@pytest.mark.parametrize(("text", "expected"), [("3\n", 3), ("0", 0), ("  17  \n", 17)])
def test_parse_queue_length(text: str, expected: int) -> None:
    assert parse_queue_length(text, "lm") == expected


@pytest.mark.parametrize(
    "text",
    # unicode digits pass str.isdigit() but int() refuses '²': only ASCII digits are a count
    ["", "-1", "timeout", "3 4", (D / "queue_length_superscript.txt").read_text(encoding="utf-8"), "\u0663"],
)
def test_parse_queue_length_rejects(text: str) -> None:
    with pytest.raises(PayloadError, match="expected one integer"):
        parse_queue_length(text, "lm")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{'a': 4294967296L, 'b': 1}", {"a": 4294967296, "b": 1}),  # Python 2 long
        ("{'v': 'VR1234L', 'w': 'X 12L y'}", {"v": "VR1234L", "w": "X 12L y"}),  # L inside strings stays
        ("{'a': (1L, None)}\nEXIT 0 (trailing junk)", {"a": (1, None)}),  # junk after the last '}'
        ("prefix {'a': 1}", {"a": 1}),
        ("{'rate of tape': 3.01e8, 'at movers': []}", {"rate of tape": 301000000.0, "at movers": []}),
    ],
)
def test_parse_repr(text: str, expected: dict[str, object]) -> None:
    assert parse_repr(text, "x") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no dict here", "no Python dict"),
        ("{'a': __import__('os').system('true')}", "not a Python literal dict"),  # never evaluated
        ("{'a': 1", "no Python dict"),
        ("{1, 2}", "expected a dict, got set"),
    ],
)
def test_parse_repr_refuses_anything_but_literals(text: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_repr(text, "x")


def test_parse_mover_status() -> None:
    got = parse_mover_status((D / "mover_LTO8_12.txt").read_text(), "LTO8_12.mover")
    assert got == {
        "state": "HAVE_BOUND",
        "bytes_read": 4294967296,
        "bytes_written": 4294967296,
        "transfers_completed": 10452,
        "transfers_failed": 3,
    }
    with pytest.raises(PayloadError, match="no Python dict"):
        parse_mover_status((D / "mover_timeout.txt").read_text(), "LTO8_14.mover")
    with pytest.raises(PayloadError, match="bytes_read = 'lots' is not a number"):
        parse_mover_status("{'state': 'IDLE', 'bytes_read': 'lots'}", "m")


def test_parse_repr_refuses_overflowing_floats_anywhere() -> None:
    with pytest.raises(PayloadError, match=r"mover: \['bytes_buffered'\] = inf is not a finite number"):
        parse_repr("{'state': 'IDLE', 'bytes_buffered': 1e9990}", "mover")


@pytest.mark.parametrize("value", ["1e999", "-1e999", "1" + "0" * 400 + "L"])
def test_parse_mover_status_refuses_numbers_beyond_a_float(value: str) -> None:
    with pytest.raises(PayloadError, match="mover m: .*bytes_read.* is not a finite number"):
        parse_mover_status(f"{{'state': 'IDLE', 'bytes_read': {value}}}", "m")


def test_movers_from_config() -> None:
    assert movers_from_config((D / "config_show.txt").read_text()) == ["LTO8_12.mover", "LTO8_13.mover"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ((D / "status_only.txt").read_text(), 2),
        ("status=[0, '2024-May-22 10:15:03', -1, -1, -1, 'www-stken.fnal.gov']", 0),
        ("<pre>\nstatus=[4, '?', -1, -1, -1, 'h']\n</pre>", 4),
    ],
)
def test_parse_status_only(text: str, expected: int) -> None:
    assert parse_status_only(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ((D / "garbage.txt").read_text(), "no 'status="),
        ("status=[3, 'x']", "not one of 0, 1, 2, 4"),
        ("status=[{}, 'x']", "not one of 0, 1, 2, 4"),  # unhashable: was a TypeError
        ("status=[0.0, 'x']", "not one of 0, 1, 2, 4"),
    ],
)
def test_parse_status_only_rejects(text: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_status_only(text)


# -- end to end through rexmon ----------------------------------------------------------------------


class _Page(BaseHTTPRequestHandler):
    body = b""
    status = 200

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def saag_page() -> Iterator[str]:
    """An inquisitor serving enstore_status_only.py on loopback."""
    handler = type("StatusPage", (_Page,), {"body": (D / "status_only.txt").read_bytes()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/enstore/enstore_status_only.py"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _fake_enstore(fakes: Fakes) -> Path:
    return fakes.command(
        "enstore",
        {
            "--get-queue": D / "get_queue.txt",
            "--queue-length": D / "queue_length.txt",
            "LTO8_12.mover": D / "mover_LTO8_12.txt",
            "LTO8_13.mover": D / "mover_LTO8_13.txt",
            "LTO8_14.mover": D / "mover_timeout.txt",
            "config --show": D / "config_show.txt",
        },
    )


def _config(
    enstore: Path,
    sid: str,
    status_url: str,
    movers: str = '["LTO8_12", "LTO8_13.mover", "LTO8_14"]',
    timeout: int = 5,
) -> str:
    return f"""
    [[slurper]]
    id = "{sid}"
    type = "enstore"
    timeout = {timeout}
    enstore = "{enstore}"
    library_managers = ["LTO8"]
    movers = {movers}
    status_url = "{status_url}"
    """


def test_end_to_end(fakes, write_config, rexmon_once, saag_page) -> None:  # type: ignore[no-untyped-def]
    run, metrics = rexmon_once(write_config(_config(_fake_enstore(fakes), "tape", saag_page)))
    assert run.exit_code == 0, run.output
    assert metrics["tape/lm.LTO8.pending_reads"] == 1
    assert metrics["tape/lm.LTO8.pending_writes"] == 2
    assert metrics["tape/lm.LTO8.active_reads"] == 1
    assert metrics["tape/lm.LTO8.queue_length"] == 3
    assert metrics["tape/mover.LTO8_12.bytes_read"] == 4294967296
    assert metrics["tape/mover.LTO8_13.bytes_written"] == 18253611008
    assert metrics["tape/mover.LTO8_12.transfers_failed"] == 3
    assert metrics["tape/mover.LTO8_14.bytes_read"] is None  # it did not answer: unknown, not 0
    assert metrics["tape/movers.have_bound"] == 1
    assert metrics["tape/movers.idle"] == 1
    assert metrics["tape/movers.unreachable"] == 1
    assert metrics["tape/movers.total"] == 3
    assert metrics["tape/saag.status"] == 2
    calls = fakes.calls("enstore")
    assert ["library", "--get-queue", "", "LTO8.library_manager"] in calls
    assert ["mover", "--status", "LTO8_13.mover"] in calls


def test_all_movers_come_from_the_config(fakes, write_config, rexmon_once, saag_page) -> None:  # type: ignore[no-untyped-def]
    run, metrics = rexmon_once(write_config(_config(_fake_enstore(fakes), "tape", saag_page, movers='"all"')))
    assert run.exit_code == 0, run.output
    assert metrics["tape/movers.total"] == 2
    assert metrics["tape/movers.unreachable"] == 0
    assert ["config", "--show"] in fakes.calls("enstore")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "enstore command"),
        ("exit1", "library manager LTO8.library_manager: "),
        ("garbage", "LTO8.library_manager --get-queue: no pending_reads"),
        (
            "slow",
            "enstore library --get-queue  LTO8.library_manager did not finish within the timeout of 1 s",
        ),
        ("lm_error", "Enstore answered TIMEDOUT LTO9.library_manager"),
        ("http500", "returned HTTP 500"),
        ("refused", "cannot fetch SAAG status http://127.0.0.1:"),
    ],
)
def test_failures_are_clear_and_isolated(  # type: ignore[no-untyped-def]
    case: str, message: str, fakes, write_config, rexmon_once, saag_page, tmp_path: Path
) -> None:
    bad = Fakes(tmp_path / "bad")
    enstore = _fake_enstore(bad)
    url = saag_page
    if case == "missing":
        enstore.unlink()
    elif case == "exit1":
        bad.command("enstore", code=1, stderr="ENSTORE_CONFIG_HOST is not set\n")
    elif case == "garbage":
        bad.command("enstore", D / "garbage.txt")
    elif case == "slow":
        bad.command("enstore", D / "get_queue.txt", sleep=30)
    elif case == "lm_error":
        bad.command("enstore", D / "get_queue_error.txt")
    server = None
    if case in ("http500", "refused"):
        handler = type("Broken", (_Page,), {"status": 500, "body": b"Internal Server Error"})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/status"
        if case == "refused":
            server.shutdown()
            server.server_close()
            server = None
    try:
        text = _config(enstore, "bad", url, timeout=1) + _config(_fake_enstore(fakes), "good", saag_page)
        run, metrics = rexmon_once(write_config(text))
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    assert run.exit_code == 1
    assert "bad: FAILED:" in run.output and message in run.output
    assert metrics["rexmon/bad.errors"] == 1
    assert not [m for m in metrics if m.startswith("bad/")]
    assert metrics["good/lm.LTO8.queue_length"] == 3


def test_check_needs_something_to_watch(write_config, runner) -> None:  # type: ignore[no-untyped-def]
    from rexmon.cli import cli

    path = write_config('[[slurper]]\nid = "e"\ntype = "enstore"\nmovers = "some"\n')
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2
    assert "[[slurper]] 'e': movers" in result.output
    path = write_config('[[slurper]]\nid = "e"\ntype = "enstore"\n')
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert "set at least one of library_managers, movers, status_url" in result.output
