"""FTS parsers on payloads shaped exactly like ftsmon pages and FTS STOMP bodies (every known trap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurpers import fts_parse
from slurpers.api import PayloadError
from slurpers.fts_stomp import Delivery
from slurpers.fts_totals import apply

DATA = Path(__file__).resolve().parent.parent / "data" / "fts"
MIB = 1024 * 1024


def text(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8")


def links_of(name: str) -> dict[tuple[str, str, str], fts_parse.LinkStatus]:
    return {(li.source, li.dest, li.vo): li for li in fts_parse.parse_overview(text(name))}


# -- ftsmon ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key", "counts", "throughput", "rate"),
    [
        # summary.current is always 0: the per-item current (MiB/s) is what counts
        (
            "overview.json",
            ("davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch", "atlas"),
            (57, 12, 410, 3),
            118.4 * MIB,
            410 * 100 / 413,
        ),
        # per-state keys are absent when zero: absent means 0, not unknown
        (
            "overview.json",
            ("davs://eosatlas.cern.ch", "srm://srm.failing.example.org", "atlas"),
            (0, 2, 10, 40),
            0.5 * MIB,
            20.0,
        ),
        # nothing finished or failed: success rate unknown, never 0
        (
            "overview.json",
            ("root://eoscms.cern.ch", "davs://cmsdcache.fnal.gov", "cms"),
            (5, 0, 0, 0),
            0.0,
            None,
        ),
        (
            "overview_cached.json",
            ("davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch", "atlas"),
            (57, 12, 410, 3),
            118.4 * MIB,
            410 * 100 / 413,
        ),
        # old ftsmon: no overview wrapper, rate null, current a placeholder tuple (= not measured)
        (
            "overview_old.json",
            ("srm://tbn18.nikhef.nl", "srm://grid002.ft.uam.es", "atlas"),
            (3, 4, 9, 1),
            None,
            90.0,
        ),
        (
            "overview_old_constant.json",
            ("srm://tbn18.nikhef.nl", "srm://grid002.ft.uam.es", "atlas"),
            (0, 1, 2, 0),
            4 * MIB,
            100.0,
        ),
    ],
)
def test_overview_links(
    name: str,
    key: tuple[str, str, str],
    counts: tuple[int, ...],
    throughput: float | None,
    rate: float | None,
) -> None:
    link = links_of(name)[key]
    assert (link.submitted, link.active, link.finished, link.failed) == counts
    assert link.throughput == pytest.approx(throughput) if throughput is not None else link.throughput is None
    assert link.success_rate == pytest.approx(rate) if rate is not None else link.success_rate is None


def test_overview_empty_page_has_no_links() -> None:
    assert fts_parse.parse_overview(text("overview_empty.json")) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("overview_only_summary.json", "no 'items' list"),
        ("overview_bad_count.json", "items[0].active: expected a number, got 'many'"),
        ("overview_no_vo.json", "items[0]: vo_name missing"),
        ("login.html", "ftsmon overview: not JSON"),
        ("empty", "ftsmon overview: empty response"),
        ("overview_inf.json", "items[0].active: 'inf' is not a finite number"),
        ("overview_nan.json", "ftsmon overview: NaN at line 1 column 87 is not a finite number"),
    ],
)
def test_overview_rejects_bad_pages(name: str, message: str) -> None:
    body = "" if name == "empty" else text(name)
    with pytest.raises(PayloadError, match=message.replace("(", r"\(").replace("[", r"\[")):
        fts_parse.parse_overview(body)


def test_stats_keeps_last_hour_and_retried() -> None:
    stats = fts_parse.parse_stats(text("stats.json"))
    assert stats["lasthour.queued"] == 62
    assert stats["lasthour.total"] == 463
    assert stats["retried.finished"] == 21


def test_stats_rejects_overview_page() -> None:
    with pytest.raises(PayloadError, match="'lasthour'"):
        fts_parse.parse_stats(text("overview.json"))


# -- STOMP bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("queue_state_op.msg", "queue"),
        ("queue_state_op_eot.msg", "queue"),
        ("queue_status_2011_repeated.msg", "queue"),
        ("queue_status_proposed_vos.msg", "queue"),
        ("queue_status_draft_channels.msg", "queue"),
        ("complete_ok.msg", "complete"),
        ("complete_2016.msg", "complete"),
        ("complete_2017_monit.json", "complete"),
        ("start_2011.msg", "start"),
        ("state.msg", "state"),
    ],
)
def test_message_kind_comes_from_keys(name: str, kind: str) -> None:
    assert fts_parse.kind_of(fts_parse.decode_body(text(name))) == kind


def test_trailing_space_and_eot_are_stripped() -> None:
    assert text("queue_state_op.msg").endswith("} ")
    assert text("complete_2016.msg").endswith("}\x04")
    assert fts_parse.decode_body(text("complete_2016.msg"))["vo"] == "atlas"
    assert fts_parse.decode_body(text("complete_ok.msg").encode())["vo"] == "atlas"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # optimizer message: no VO; ratio = active / allowed connections
        (
            "queue_state_op.msg",
            [("davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch", "all", 12, 340, 1200 / 14)],
        ),
        # every scalar a string (pre-2017)
        (
            "queue_state_op_eot.msg",
            [("davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch", "all", 12, 340, 1200 / 14)],
        ),
    ],
)
def test_optimizer_queue_state(name: str, expected: list[tuple[object, ...]]) -> None:
    got = fts_parse.queue_links(fts_parse.decode_body(text(name)))
    assert [(q.source, q.dest, q.vo, q.active, q.ready, pytest.approx(q.ratio)) for q in got] == expected


@pytest.mark.parametrize(
    ("name", "links", "channels_first_dest"),
    [
        # the original message REPEATS "channel": every one of the 4 channels counts, not only the last
        ("queue_status_2011_repeated.msg", 15, "lxbra2502.cern.ch"),
        ("queue_status_proposed_vos.msg", 10, "lxbra2502.cern.ch"),
        ("queue_status_draft_channels.msg", 4, "any"),
    ],
)
def test_queue_status_shapes_count_every_channel(name: str, links: int, channels_first_dest: str) -> None:
    got = fts_parse.queue_links(fts_parse.decode_body(text(name)))
    assert len(got) == links
    assert got[0].dest == channels_first_dest


def test_repeated_channel_keeps_last_channel_values_too() -> None:
    got = fts_parse.queue_links(fts_parse.decode_body(text("queue_status_2011_repeated.msg")))
    assert {q.vo for q in got} == {"dteam"}
    assert ("galway.desy.de", "lxbra1910.cern.ch") in {(q.source, q.dest) for q in got}  # channel 3
    assert ("dublin.desy.de", "dublin.desy.de") in {(q.source, q.dest) for q in got}  # channel 4 (last)
    assert all(q.ratio == 0.0 and q.active == 0 for q in got)  # "0.000000%" -> 0


def test_draft_and_vos_forms_carry_numbers_as_strings() -> None:
    draft = fts_parse.queue_links(fts_parse.decode_body(text("queue_status_draft_channels.msg")))
    assert [q.active for q in draft] == [512, 24, 47, 6]
    vos = fts_parse.queue_links(fts_parse.decode_body(text("queue_status_proposed_vos.msg")))
    assert {q.vo for q in vos} == {"dteam", "some_other_vo"}


@pytest.mark.parametrize(
    ("name", "link", "state", "nbytes", "throughput", "end"),
    [
        (
            "complete_ok.msg",
            ("davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch", "atlas"),
            "ok",
            2147483648,
            2147483648 / 20,
            1716400020.0,
        ),
        (
            "complete_error.msg",
            ("davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch", "atlas"),
            "error",
            1048576,
            None,
            1716400005.0,
        ),
        # aborted before it started: timestamps 0, no throughput
        (
            "complete_abort.msg",
            ("davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch", "atlas"),
            "aborted",
            0,
            None,
            None,
        ),
        # 2016: strings everywhere, no src_se (hostnames instead), ms timestamps as strings
        (
            "complete_2016.msg",
            ("tbn18.nikhef.nl", "grid002.ft.uam.es", "atlas"),
            "ok",
            10565043,
            10565043 / 3.332,
            1466632865.616,
        ),
        # 2017 inside CERN MONIT's wrapper: typed numbers, t_error_code still a string
        (
            "complete_2017_monit.json",
            ("srm://storm-fe.cr.cnaf.infn.it", "srm://grid002.ft.uam.es", "atlas"),
            "ok",
            10556847,
            10556847 / 2.308,
            1493217334.563,
        ),
    ],
)
def test_completion(
    name: str,
    link: tuple[str, str, str],
    state: str,
    nbytes: float,
    throughput: float | None,
    end: float | None,
) -> None:
    c = fts_parse.completion(fts_parse.decode_body(text(name)))
    assert (c.source, c.dest, c.vo, c.state, c.bytes) == (*link, state, nbytes)
    assert c.throughput == pytest.approx(throughput) if throughput is not None else c.throughput is None
    assert c.time == pytest.approx(end) if end is not None else c.time is None


def test_queue_ratio_string_inf_is_refused() -> None:
    doc = {
        "vo": {
            "voname": "atlas",
            "channel": {"links": [{"source_host": "a", "dest_host": "b", "ratio": "inf"}]},
        }
    }
    with pytest.raises(PayloadError, match=r"links\[0\]\.ratio: 'inf' is not a finite number"):
        fts_parse.queue_links(doc)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad_state.msg", "unknown t_final_transfer_state 'Lost'"),
        ("bad_bytes.msg", "tr_bt_transfered: expected a number, got 'lots'"),
    ],
)
def test_bad_completion(name: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        fts_parse.completion(fts_parse.decode_body(text(name)))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (text("bad_truncated.msg"), "message body is not JSON"),
        ("", "empty message body"),
        (" \x04", "empty message body"),
        ("[1, 2] ", "not a JSON object"),
        ('{"active_count": NaN} \x04', "message body: NaN at line 1 column 18 is not a finite number"),
        ('{"tr_bt_transfered": 1e999}', "message body: 1e999 at line 1 column 22 is not a finite number"),
    ],
)
def test_bad_bodies(body: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        fts_parse.decode_body(body)


def test_unknown_message_kind_names_its_keys() -> None:
    with pytest.raises(PayloadError, match="unknown FTS message .keys: hello"):
        fts_parse.kind_of(fts_parse.decode_body(text("bad_unknown.msg")))


# -- running totals -----------------------------------------------------------------------------------


def delivery(mid: str, name: str) -> Delivery:
    try:
        doc, error = fts_parse.decode_body(text(name)), None
    except PayloadError as exc:
        doc, error = None, str(exc)
    return Delivery(mid, "0", 1, doc, error)


def values(readings: list[object]) -> dict[str, float | None]:
    return {r.metric: r.value for r in readings}  # type: ignore[attr-defined]


LINK = "davs_webdav.echo.stfc.ac.uk__davs_eosatlas.cern.ch.atlas"


def test_totals_count_states_bytes_and_skip_committed_ids() -> None:
    batch = [
        delivery("m1", "complete_ok.msg"),
        delivery("m2", "complete_error.msg"),
        delivery("m3", "complete_abort.msg"),
        delivery("m4", "bad_truncated.msg"),
    ]
    first = apply({}, batch, connected=True)
    got = values(first.readings)
    assert (got[f"bus.link.{LINK}.ok"], got[f"bus.link.{LINK}.error"], got[f"bus.link.{LINK}.aborted"]) == (
        1,
        1,
        1,
    )
    assert got[f"bus.link.{LINK}.bytes"] == 2147483648 + 1048576
    assert got[f"bus.link.{LINK}.throughput_mean"] == pytest.approx(2147483648 / 20)
    assert (got["bus.messages"], got["bus.malformed"]) == (4, 1)
    assert "m4" in first.malformed[0]
    # m1..m4 redelivered after a lost ack plus one new message: only the new one counts
    second = apply(first.state, [*batch, delivery("m5", "complete_ok.msg")], connected=True)
    got = values(second.readings)
    assert got[f"bus.link.{LINK}.ok"] == 2
    assert got["bus.messages"] == 5
    assert f"bus.link.{LINK}.throughput_mean" in got


def test_totals_queue_state_from_all_three_shapes() -> None:
    batch = [
        delivery("q1", "queue_status_2011_repeated.msg"),
        delivery("q2", "queue_status_proposed_vos.msg"),
        delivery("q3", "queue_state_op.msg"),
    ]
    got = values(apply({}, batch, connected=True).readings)
    assert got["bus.queue.galway.desy.de__lxbra1910.cern.ch.dteam.active"] == 0
    assert got["bus.queue.lxbra1910.cern.ch__lxbra2502.cern.ch.some_other_vo.ready"] == 0
    assert got["bus.queue.davs_webdav.echo.stfc.ac.uk__davs_eosatlas.cern.ch.all.ratio"] == pytest.approx(
        1200 / 14
    )
    assert got["bus.connected"] == 1
