"""ESnet Netbeam interface series (traffic, errors, discards, unicast packets), fetched in bounded windows.

Each run fetches, per interface and series, from the checkpointed ``until`` to ``now - lag`` in windows of
at most ``chunk`` and writes every point with its own timestamp, oldest first. The checkpoint is
committed by the service only after the values are archived, so no window is fetched twice and none
is skipped, across restarts too.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

import requests

from slurpers.api import (
    CollectContext,
    Duration,
    MetricSpec,
    PayloadError,
    Reading,
    Slurper,
    SlurperError,
    load_json,
    metric_name,
    request_error_reason,
    settings,
    to_float,
)

log = logging.getLogger(__name__)
DEFAULT_BASE = "https://esnet-netbeam.appspot.com/api/network/esnet/prod"
Series = Literal["traffic", "errors", "discards", "unicast_packets"]
UNITS = {"traffic": "bit/s", "errors": "errors", "discards": "packets", "unicast_packets": "packets"}
#: share of the run's timeout spent starting new windows; the rest is left for the last request
BUDGET = 0.6


@settings
class NetbeamSettings:
    base_url: str = DEFAULT_BASE
    #: resource paths exactly as Netbeam lists them (already percent-encoded: "gr-0%2F0%2F0")
    interfaces: tuple[str, ...] = ()
    series: tuple[Series, ...] = ("traffic",)
    #: how far back the first run starts
    backfill: Duration = 86400.0
    #: longest span of one request (less than a day)
    chunk: Duration = 21600.0
    #: stay this far behind real time: the newest points are incomplete
    lag: Duration = 900.0
    #: most requests per interface and series in one run (the rest follows next run)
    max_windows: int = 16

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^/\s]+", self.base_url):
            raise ValueError(f"base_url {self.base_url!r} must be an http(s):// URL")
        if not self.interfaces:
            raise ValueError(
                'interfaces: list at least one resource, e.g. "devices/albq-asw1/interfaces/ae10"'
            )
        for res in self.interfaces:
            if not res or res.startswith("/") or "//" in res or re.search(r"[\s?#]", res):
                raise ValueError(
                    f"interfaces: {res!r} is not a resource path like devices/<dev>/interfaces/<if>"
                )
        if not 60 <= self.chunk < 86400:
            raise ValueError('chunk must be at least 1m and less than a day (e.g. "6h")')
        if self.max_windows < 1:
            raise ValueError("max_windows must be at least 1")


@dataclass(frozen=True)
class Point:
    time: float  # epoch seconds
    column: str
    value: float


def parse_series(text: str, what: str) -> list[Point]:
    """A pond ``{name, columns, points}`` body; an empty body or missing/empty points means no update."""
    if not text.strip():
        return []
    doc = load_json(text, what)  # NaN/Infinity literals are a PayloadError here, not a point
    if not isinstance(doc, dict):
        raise PayloadError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    points = doc.get("points")
    if points is None and "data" in doc:
        raise PayloadError(f"{what}: this is the old ESnet SNMP API format (data, seconds), not Netbeam's")
    if not points:
        return []
    columns = doc.get("columns") or ["time", "in", "out"]  # esnet-collector's reading of a bare body
    if not isinstance(points, list) or not isinstance(columns, list) or "time" not in columns:
        raise PayloadError(f"{what}: 'points' must be a list and 'columns' must name 'time'")
    ti = columns.index("time")
    out = []
    for i, row in enumerate(points):
        if not isinstance(row, list) or len(row) != len(columns):
            raise PayloadError(f"{what}: points[{i}] does not have the {len(columns)} columns {columns}")
        t = to_float(row[ti], f"{what}: points[{i}] time") / 1000.0  # ms at the edge
        for name, value in zip(columns, row, strict=True):
            if name != "time" and value is not None:
                out.append(Point(t, str(name), to_float(value, f"{what}: points[{i}] {name}")))
    return out


def resource_name(resource: str) -> str:
    """``devices/albq-asw1/interfaces/gr-0%2F0%2F0`` -> ``albq-asw1.interfaces.gr-0_0_0``."""
    parts = [unquote(p) for p in resource.split("/") if p]
    if parts and parts[0] == "devices":
        parts = parts[1:]
    return metric_name(*parts)


class NetbeamSlurper(Slurper[NetbeamSettings]):
    """Backfills and follows Netbeam series per interface, with a per-series checkpoint."""

    def __init__(
        self, slurper_id: str, settings: NetbeamSettings, *, interval: float, timeout: float
    ) -> None:
        super().__init__(slurper_id, settings, interval=interval, timeout=timeout)
        self._session: requests.Session | None = None

    def metrics(self) -> Sequence[MetricSpec]:
        return [
            MetricSpec(f"*.{s}.*", "GAUGE", UNITS[s], 0, graph=s, description=f"Netbeam {s} (in/out)")
            for s in ("traffic", "errors", "discards", "unicast_packets")
        ]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        s = self.settings
        until: dict[str, float] = dict(ctx.state.get("until") or {})
        end = float(int(ctx.now - s.lag))
        deadline = time.monotonic() + ctx.timeout * BUDGET
        readings: list[Reading] = []
        for resource in s.interfaces:
            for series in s.series:
                key = f"{resource}|{series}"
                start = float(until.get(key, end - s.backfill))
                done, got = self._follow(resource, series, start, end, deadline, ctx)
                until[key] = done
                readings += got
        ctx.new_state = {"until": until}
        return readings

    def _follow(
        self, resource: str, series: str, start: float, end: float, deadline: float, ctx: CollectContext
    ) -> tuple[float, list[Reading]]:
        """Fetch windows from ``start`` towards ``end``; return how far it got and the readings."""
        s = self.settings
        name = resource_name(resource)
        out: list[Reading] = []
        windows = 0
        while start < end and windows < s.max_windows and (windows == 0 or time.monotonic() < deadline):
            stop = min(start + s.chunk, end)
            for p in self._window(resource, series, start, stop, ctx):
                if start <= p.time < stop:  # each point belongs to exactly one window
                    out.append(Reading(metric_name(name, series, p.column), p.value, p.time))
            start, windows = stop, windows + 1
        return start, out

    def _window(
        self, resource: str, series: str, start: float, stop: float, ctx: CollectContext
    ) -> list[Point]:
        url = f"{self.settings.base_url.rstrip('/')}/{resource}/{series}"
        params = {"begin": str(int(start * 1000)), "end": str(int(stop * 1000))}
        if self._session is None:
            self._session = requests.Session()
        try:
            resp = self._session.get(url, params=params, timeout=ctx.timeout * (1 - BUDGET) + 1)
        except requests.Timeout:
            raise SlurperError(f"netbeam {url} timed out") from None
        except requests.RequestException as exc:
            raise SlurperError(f"cannot reach netbeam at {url}: {request_error_reason(exc)}") from None
        if resp.status_code == 404:
            log.warning("netbeam %s: 404, no data for %d..%d", url, start, stop)
            return []
        if resp.status_code != 200:
            body = " ".join(resp.text.split())[:200]
            raise SlurperError(f"netbeam {url} returned HTTP {resp.status_code}: {body or resp.reason}")
        return parse_series(resp.text, f"netbeam {resource}/{series}")
