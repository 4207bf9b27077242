"""Bad input at every entry point, property-based: every failure is the module's documented error type
with a message, never another exception, and no parser ever hands over NaN, infinity or a non-number."""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rexmon.cli import cli  # noqa: F401 (imports the sub-command modules in their order)
from rexmon.cli_alarms import parse_when
from rexmon.config import ConfigError, load
from slurpers import enstore, fts_parse, htcondor, munin, netbeam
from slurpers import slurm_parse as sp
from slurpers.api import Reading, SlurperError, metric_name

DATA = Path(__file__).resolve().parents[1] / "data"
BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["NaN", "inf", "-Infinity", "1e999", "12", "3.5%", "", "U", "/Expr(x)/"])
)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)


def _finite(obj: Any, where: str = "result") -> None:
    """Every number reachable from a parser's result is a finite int or float."""
    if isinstance(obj, float):
        assert math.isfinite(obj), f"{where} = {obj!r}"
    elif isinstance(obj, Reading):
        assert obj.value is None or math.isfinite(obj.value), f"{where}: {obj!r}"
        assert obj.time is None or math.isfinite(obj.time), f"{where}: {obj!r}"
        assert metric_name(obj.metric) == obj.metric or "." in obj.metric, f"{where}: {obj.metric!r}"
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _finite(getattr(obj, f.name), f"{where}.{f.name}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _finite(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            _finite(v, f"{where}[{i}]")


def _check(call: Callable[[], Any]) -> None:
    """The call returns sane values or raises SlurperError (PayloadError included) with a message."""
    try:
        result = call()
    except SlurperError as exc:
        assert str(exc).strip(), "an error without a message"
        return
    _finite(result)


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """A real document with one node somewhere replaced by random JSON."""
    doc = json.loads(json.dumps(doc))
    parent: Any = None
    key: Any = None
    node: Any = doc
    for _ in range(draw(st.integers(0, 6))):
        if isinstance(node, dict) and node:
            k: Any = draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            k = draw(st.integers(0, len(node) - 1))
        else:
            break
        parent, key, node = node, k, node[k]
    if parent is None:
        return draw(json_values)
    parent[key] = draw(json_values)
    return doc


def _text_of(doc_strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """JSON text of a document, whole or cut anywhere."""
    return st.tuples(doc_strategy, st.integers(0, 10**6), st.booleans()).map(
        lambda t: (lambda s: s if t[2] else s[: t[1] % (len(s) + 1)])(json.dumps(t[0]))
    )


def _json(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


# -- Munin ------------------------------------------------------------------------------------------

munin_tokens = st.sampled_from(
    [
        "x.value",
        "x.label",
        "x.type",
        "x.min",
        "x.max",
        "x.warning",
        "x.critical",
        "multigraph",
        "graph_title",
        "load.value",
        "a.b.value",
        "U",
        "1e999",
        "-1e999",
        "nan",
        "inf",
        "12",
        "1.5e3",
        ":",
        "1700000000:5",
        "99999999999999999999:1",
        "DERIVE",
        "GAUGE",
        "10:20",
        "~:5",
        "@1:2",
        "#",
        "\t",
        "\r",
        " ",
    ]
)
munin_text = st.lists(st.lists(munin_tokens, max_size=4).map(" ".join), max_size=8).map("\n".join) | st.text()


@BOUNDED
@example("x.value 1e999")
@given(munin_text)
def test_munin_fetch_output(text: str) -> None:
    """Munin fetch output (random lines of plausible tokens, random text): values or PayloadError; no inf/NaN."""  # noqa: E501
    _check(lambda: munin.parse_values(text, "plug"))


@BOUNDED
@example("x.min 1e999")
@given(munin_text)
def test_munin_config_output(text: str) -> None:
    """Munin config output (random lines, random text): graphs or PayloadError; min/max finite."""
    _check(lambda: munin.parse_config(text, "plug"))


# -- HTCondor -----------------------------------------------------------------------------------------

ads = (
    st.lists(json_values, max_size=3)
    | mutated(_json("htcondor/slots.json"))
    | mutated(_json("htcondor/schedds.json"))
    | mutated(_json("htcondor/jobs.json"))
)


@BOUNDED
@given(_text_of(ads) | st.text())
def test_htcondor_json(text: str) -> None:
    """HTCondor condor_status/condor_q -json (mutated real ads, cut anywhere, random text): readings or PayloadError."""  # noqa: E501

    def parse() -> list[Reading]:
        parsed = htcondor.parse_ads(text, "condor_status")
        return [
            *htcondor.schedd_readings(parsed),
            *htcondor.slot_readings(parsed),
            *htcondor.job_readings(parsed, ["Owner"]),
        ]

    _check(parse)


# -- Slurm --------------------------------------------------------------------------------------------

slurm_docs = st.one_of(
    *(
        mutated(_json(f"slurm/{n}"))
        for n in (
            "squeue.json",
            "sinfo_2411.json",
            "sinfo_2108.json",
            "nodes_rest.json",
            "sdiag.json",
            "openapi.json",
        )
    ),
    json_values,
)


@BOUNDED
@example('{"errors": {"": null}}')
@given(_text_of(slurm_docs) | st.text())
def test_slurm_json(text: str) -> None:
    """Slurm JSON and slurmrestd bodies (mutated real payloads, cut, random): readings or Payload/SlurperError."""  # noqa: E501

    def parse() -> list[Any]:
        doc = sp.load(text, "squeue --json")
        out: list[Any] = []
        for step in (
            lambda: sp.job_readings(doc, sp.partition_names(doc), True),
            lambda: sp.node_tally(doc).readings(),
            lambda: sp.sdiag_readings(doc),
            lambda: [sp.newest_api(doc)],
        ):
            try:
                out += step()
            except SlurperError as exc:
                assert str(exc).strip()
        return out

    _check(parse)


# -- Enstore ------------------------------------------------------------------------------------------

enstore_samples = [p.read_text(encoding="utf-8") for p in sorted((DATA / "enstore").glob("*.txt"))]


@st.composite
def enstore_text(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(enstore_samples))
    cut = draw(st.integers(0, len(base)))
    insert = draw(
        st.sampled_from(["", "L", "1e999", "nan", "{", "}", "'", "__import__('os')", "\x00", "(1,"])
    )
    return base[:cut] + insert + base[cut:] if draw(st.booleans()) else base[:cut]


@BOUNDED
@example("²")
@given(enstore_text() | st.text())
def test_enstore_text_and_repr(text: str) -> None:
    """Enstore text and Python repr output (real outputs cut or spliced, random text): values or PayloadError, never eval."""  # noqa: E501
    _check(lambda: enstore.parse_get_queue(text, "LTO8.library_manager"))
    _check(lambda: enstore.parse_queue_length(text, "LTO8.library_manager"))
    _check(lambda: enstore.parse_repr(text, "mover"))
    _check(lambda: enstore.parse_mover_status(text, "LTO8_12.mover"))
    _check(lambda: enstore.parse_status_only(text))
    _check(lambda: enstore.movers_from_config(text))


# -- FTS and Netbeam ------------------------------------------------------------------------------------

fts_docs = json_values | st.fixed_dictionaries(
    {
        "overview": st.fixed_dictionaries(
            {
                "items": st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            [
                                "source_se",
                                "dest_se",
                                "vo_name",
                                "submitted",
                                "active",
                                "finished",
                                "failed",
                                "current",
                            ]
                        ),
                        scalars,
                        max_size=8,
                    ),
                    max_size=3,
                )
            }
        )
    }
)


@BOUNDED
@example('{"items": [{"source_se": "a", "dest_se": "b", "vo_name": "c", "active": "inf"}]}')
@given(_text_of(fts_docs) | st.text())
def test_fts_monitoring_json(text: str) -> None:
    """FTS ftsmon overview and stats bodies (random and near-valid JSON): links or PayloadError; no inf/NaN."""  # noqa: E501
    _check(lambda: fts_parse.parse_overview(text))
    _check(lambda: fts_parse.parse_stats(text))


@BOUNDED
@given(st.binary(max_size=200) | _text_of(json_values).map(lambda s: s.encode() + b"\x04"))
def test_fts_stomp_message_body(body: bytes) -> None:
    """FTS STOMP message bodies (random bytes, JSON with the trailing EOT byte): a message or PayloadError."""

    def parse() -> Any:
        doc = fts_parse.decode_body(body)
        kind = fts_parse.kind_of(doc)
        if kind == "queue":
            return fts_parse.queue_links(doc)
        if kind == "complete":
            return fts_parse.completion(doc)
        return kind

    _check(parse)


netbeam_docs = json_values | st.fixed_dictionaries(
    {
        "name": st.text(max_size=5),
        "columns": st.just(["time", "in", "out"]),
        "points": st.lists(st.lists(scalars, min_size=3, max_size=3), max_size=4),
    }
)


@BOUNDED
@example('{"columns": ["time", "in", "out"], "points": [[1700000000000, Infinity, 1]]}')
@given(_text_of(netbeam_docs) | st.text())
def test_netbeam_series(text: str) -> None:
    """Netbeam pond series (random and near-valid JSON, NaN/Infinity literals): points or PayloadError; no inf/NaN."""  # noqa: E501
    _check(lambda: netbeam.parse_series(text, "GET traffic"))


# -- configuration ----------------------------------------------------------------------------------

toml_values = st.recursive(
    st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(["5m", "1h30m", "-1", "unix:/x", "1/0", "~:5", "@x"]),
    lambda kids: st.lists(kids, max_size=3),
    max_leaves=6,
)
KEYS = [
    "rrd_dir",
    "step",
    "rrdcached",
    "url",
    "workers",
    "jitter",
    "state_dir",
    "shard",
    "listen",
    "public_read",
    "id",
    "type",
    "interval",
    "timeout",
    "plugin",
    "match",
    "warning",
    "critical",
    "for",
    "samples",
    "notify",
    "bogus",
    "enabled",
    "evaluate_alarms",
    "secret_key",
]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(_toml(v) for v in value) + "]"


@st.composite
def config_text(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        head = draw(
            st.sampled_from(
                [
                    "[archive]",
                    "[database]",
                    "[scheduler]",
                    "[web]",
                    "[[slurper]]",
                    "[[alarm]]",
                    "[[notify]]",
                    "[bogus]",
                    "",
                ]
            )
        )
        lines.append(head)
        for key, value in draw(st.dictionaries(st.sampled_from(KEYS), toml_values, max_size=4)).items():
            if key == "type" and draw(st.booleans()):
                value = draw(st.sampled_from(["munin", "slurm", "enstore", "htcondor", "nope"]))
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines)


@BOUNDED
@given(config_text() | st.text())
def test_config_files(text: str) -> None:
    """Config files (random TOML-ish text, random keys and values in every section): a Config or ConfigError naming the file."""  # noqa: E501
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rexmon.toml"
        path.write_text(text, encoding="utf-8")
        try:
            load(path)
        except ConfigError as exc:
            assert exc.errors and all(str(path) in e for e in exc.errors), exc.errors


# -- CLI time expressions ------------------------------------------------------------------------------

time_text = st.text(max_size=30) | st.sampled_from(
    [
        "now",
        "-2h",
        "2h ago",
        "1700000000",
        "2025-01-01",
        "2025-13-45",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+14:00",
        "99999999999999999999w",
        "1e400s",
        "-",
        "ago",
    ]
)


@BOUNDED
@given(time_text)
def test_cli_time_expressions(text: str) -> None:
    """CLI time expressions (rexmon alarms replay --from/--to): a finite time or a click usage error naming the text."""  # noqa: E501
    try:
        when = parse_when(text, 1_763_730_000.0)
    except click.BadParameter as exc:
        assert repr(text) in str(exc.message) or text in str(exc.message)
        return
    assert math.isfinite(when)
