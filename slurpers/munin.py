"""Run any Munin plugin exactly as munin-node would: ``plugin config``, then ``plugin`` for values.

Metric names: ``<field>`` for a single-graph plugin, ``<graph>.<field>`` inside ``multigraph`` sections
(the plugin's own name is the first graph). Munin's ``warning``/``critical`` become default tolerances,
translated to the Nagios grammar (``80`` -> ``~:80``).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alarms.ranges import RangeError, from_munin
from slurpers.api import (
    DS_TYPES,
    CollectContext,
    CommandTimeout,
    MetricSpec,
    PayloadError,
    Reading,
    Slurper,
    SlurperError,
    run_command,
    settings,
)

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CDEF_MAX = 300
_NUMBER = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")


@settings
class MuninSettings:
    #: path of the plugin (a wildcard plugin's symlink, e.g. /etc/munin/plugins/if_eth0)
    plugin: str
    #: environment for the plugin, as env.* in munin-node's plugin-conf.d
    env: dict[str, str] = field(default_factory=dict)
    #: MUNIN_PLUGSTATE directory; default: a per-slurper folder under the system temp dir
    plugstate: str = ""


@dataclass
class FieldConfig:
    label: str = ""
    type: str = "GAUGE"
    min: float | None = None
    max: float | None = None
    warning: str | None = None
    critical: str | None = None
    info: str = ""
    #: ``cdef``: rrdtool RPN over the graph's field names, applied where values are drawn
    cdef: str = ""
    #: ``negative``: the field drawn mirrored below the axis with this one
    negative: str = ""


@dataclass
class GraphConfig:
    name: str
    title: str = ""
    vlabel: str = ""
    category: str = ""
    #: ``graph_args --base 1024``: binary multiples (the only graph_args that changes what a value means)
    base: int = 1000
    fields: dict[str, FieldConfig] = field(default_factory=dict)


def _lines(text: str) -> list[tuple[int, str]]:
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append((n, line))
    return out


def parse_config(text: str, plugin_name: str) -> dict[str, GraphConfig]:
    """Parse ``plugin config`` output into graphs (the first one named after the plugin)."""
    graphs: dict[str, GraphConfig] = {}
    current = graphs.setdefault(plugin_name, GraphConfig(plugin_name))
    for n, line in _lines(text):
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "multigraph":
            if not value or not re.fullmatch(r"[A-Za-z0-9_.]+", value):
                raise PayloadError(f"config line {n}: bad multigraph name {value!r:.60}")
            current = graphs.setdefault(value, GraphConfig(value))
            continue
        if key.startswith("graph_"):
            if key == "graph_title":
                current.title = value
            elif key == "graph_vlabel":
                current.vlabel = value
            elif key == "graph_category":
                current.category = value
            elif key == "graph_args":
                current.base = 1024 if re.search(r"--base\s+1024\b", value) else 1000
            continue  # graph_args, graph_order, graph_info, ...: presentation only
        if key in ("host_name", "update_rate"):
            continue
        fname, dot, attr = key.partition(".")
        if not dot or not _FIELD.match(fname):
            raise PayloadError(f"config line {n}: expected 'field.attribute value', got {line[:80]!r}")
        fc = current.fields.setdefault(fname, FieldConfig())
        _set_attr(fc, attr, value, n)
    return {name: g for name, g in graphs.items() if g.fields or name == plugin_name}


def _set_attr(fc: FieldConfig, attr: str, value: str, n: int) -> None:
    if attr == "label":
        fc.label = value
    elif attr == "type":
        if value.upper() not in DS_TYPES:
            raise PayloadError(f"config line {n}: type {value!r} is not one of {', '.join(DS_TYPES)}")
        fc.type = value.upper()
    elif attr in ("min", "max"):
        if value in ("", "U"):
            return
        if not _NUMBER.match(value):
            raise PayloadError(f"config line {n}: {attr} {value!r} is not a number")
        setattr(fc, attr, _finite(value, f"config line {n}: {attr}"))
    elif attr in ("warning", "critical"):
        try:
            setattr(fc, attr, from_munin(value))
        except RangeError as exc:
            raise PayloadError(f"config line {n}: {attr}: {exc}") from None
    elif attr == "info":
        fc.info = value
    elif attr == "cdef":
        fc.cdef = value[:_CDEF_MAX]  # checked where it is drawn: a bad one draws the raw value
    elif attr == "negative":
        if not _FIELD.match(value):
            raise PayloadError(f"config line {n}: negative {value[:40]!r} is not a field name")
        fc.negative = value
    # draw, colour, graph, value (dirtyconfig), ...: not needed to archive or draw


def _finite(number: str, what: str) -> float:
    """A number token as a float; one that overflows (``1e999``) is refused, never archived as inf."""
    value = float(number)
    if not math.isfinite(value):
        raise PayloadError(f"{what}: {number[:40]!r} is not a finite number")
    return value


def parse_values(text: str, plugin_name: str) -> list[tuple[str, str, float | None, float | None]]:
    """Parse fetch output into (graph, field, value or None for U, timestamp or None)."""
    graph = plugin_name
    out: list[tuple[str, str, float | None, float | None]] = []
    for n, line in _lines(text):
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "multigraph":
            graph = value
            continue
        fname, dot, attr = key.partition(".")
        if not dot or attr != "value" or not _FIELD.match(fname):
            raise PayloadError(f"fetch line {n}: expected 'field.value N', got {line[:80]!r}")
        when: float | None = None
        if ":" in value:
            ts, _, value = value.partition(":")
            if not re.fullmatch(r"[0-9]+", ts):
                raise PayloadError(f"fetch line {n}: bad timestamp in {line[:80]!r}")
            when = _finite(ts, f"fetch line {n}: timestamp of {fname}")
        if value == "U":
            out.append((graph, fname, None, when))
        elif _NUMBER.match(value):
            out.append((graph, fname, _finite(value, f"fetch line {n}: value of {fname}"), when))
        else:
            raise PayloadError(f"fetch line {n}: value {value[:40]!r} of {fname} is not a number or U")
    return out


class MuninSlurper(Slurper[MuninSettings]):
    def __init__(self, slurper_id: str, settings: MuninSettings, *, interval: float, timeout: float) -> None:
        super().__init__(slurper_id, settings, interval=interval, timeout=timeout)
        self.plugin_name = Path(settings.plugin).name
        self._graphs: dict[str, GraphConfig] = {}
        self._specs: list[MetricSpec] | None = None

    def metrics(self) -> Sequence[MetricSpec]:
        # built once per config the plugin prints, not per lookup (a plugin may have thousands of fields)
        if self._specs is None:
            self._specs = self._build_specs()
        return self._specs

    def _build_specs(self) -> list[MetricSpec]:
        specs = []
        for gname, g in self._graphs.items():
            for fname, fc in g.fields.items():
                specs.append(
                    MetricSpec(
                        name=self._metric(gname, fname),
                        ds_type=fc.type,  # type: ignore[arg-type]
                        unit=g.vlabel,
                        base=g.base,
                        min=fc.min,
                        max=fc.max,
                        label=fc.label or fname,
                        warning=fc.warning,
                        critical=fc.critical,
                        graph=gname,
                        description=fc.info or g.title,
                        cdef=fc.cdef,
                        negative=self._metric(gname, fc.negative) if fc.negative else "",
                    )
                )
        return specs

    def _metric(self, graph: str, fname: str) -> str:
        return fname if graph == self.plugin_name else f"{graph}.{fname}"

    def _env(self) -> dict[str, str]:
        state = self.settings.plugstate or os.path.join(tempfile.gettempdir(), "rexmon-munin", self.id)
        os.makedirs(state, exist_ok=True)
        env = {
            "MUNIN_PLUGSTATE": state,
            "MUNIN_STATEFILE": os.path.join(state, f"{self.plugin_name}-state"),
            "MUNIN_LIBDIR": "/usr/share/munin",
            "MUNIN_CAP_MULTIGRAPH": "1",
            "MUNIN_MASTER_IP": "127.0.0.1",
        }
        env.update(self.settings.env)
        return env

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        if not os.access(self.settings.plugin, os.X_OK):
            raise SlurperError(f"munin plugin {self.settings.plugin} does not exist or is not executable")
        env = self._env()
        deadline = time.monotonic() + ctx.timeout
        cfg = run_command([self.settings.plugin, "config"], timeout=ctx.timeout, env=env)
        try:
            graphs = parse_config(cfg.stdout, self.plugin_name)
        except PayloadError as exc:
            raise PayloadError(f"{self.plugin_name} config: {exc}") from None
        if graphs != self._graphs:  # min/max/type may change between runs: the specs follow
            self._graphs, self._specs = graphs, None
            self.specs_changed()
        # the fetch gets what is left of the timeout, like munin-node's per-plugin timeout
        try:
            fetch = run_command(
                [self.settings.plugin], timeout=max(deadline - time.monotonic(), 0.0), env=env
            )
        except CommandTimeout:
            raise CommandTimeout(f"{self.settings.plugin} timed out after {ctx.timeout:g} s") from None
        try:
            values = parse_values(fetch.stdout, self.plugin_name)
        except PayloadError as exc:
            raise PayloadError(f"{self.plugin_name}: {exc}") from None
        return [Reading(self._metric(g, f), v, when) for g, f, v, when in values]
