"""FTS3 transfers: ftsmon's ``overview``/``stats`` pages and/or the STOMP monitoring messages.

Parsing lives in :mod:`slurpers.fts_parse`, the STOMP consumer in :mod:`slurpers.fts_stomp` and the
running totals of bus messages in :mod:`slurpers.fts_totals`; this module fetches and names metrics.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import requests

from slurpers import fts_parse, fts_tls, fts_totals
from slurpers.api import (
    CollectContext,
    Duration,
    MetricSpec,
    PayloadError,
    Reading,
    Secret,
    Slurper,
    SlurperError,
    metric_name,
    request_error_reason,
    settings,
)
from slurpers.fts_stomp import BrokerAddress, BusConsumer, Delivery

log = logging.getLogger(__name__)
LINK_FIELDS = ("submitted", "active", "finished", "failed")
#: a run waits at most this long for a burst of messages to end
SETTLE_QUIET = 0.5


@settings
class StompSettings:
    host: str
    port: int = 61613
    user: str = ""
    #: by reference: { env = "FTS_STOMP_PASSWORD" }
    password: Secret | None = None
    ssl: bool = False
    #: e.g. ["/topic/transfer.fts_monitoring_complete", "/topic/transfer.fts_monitoring_queue_state"]
    destinations: tuple[str, ...] = (
        "/topic/transfer.fts_monitoring_complete",
        "/topic/transfer.fts_monitoring_queue_state",
    )
    #: durable subscription name (client-id): topics keep messages for it while rexmon is down
    durable: str = ""
    #: unacknowledged messages the broker may send ahead (must exceed the messages of one interval)
    prefetch: int = 10000
    #: longest pause between reconnect attempts
    backoff_max: Duration = 60.0

    def __post_init__(self) -> None:
        if not self.destinations or any(not re.match(r"^/(topic|queue)/\S+$", d) for d in self.destinations):
            raise ValueError('destinations must be a non-empty list of "/topic/NAME" or "/queue/NAME"')
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port")


@settings
class FTSSettings:
    #: FTS3 web monitoring base URL, e.g. "https://fts3.example.org:8449/fts3/ftsmon"
    ftsmon_url: str = ""
    #: X.509 client certificate and key (PEM files) for ftsmon and STOMP over SSL
    cert: str = ""
    key: str = ""
    #: CA bundle or directory; "" = the system default
    ca: str = ""
    #: only this VO (ftsmon ``vo=``)
    vo: str = ""
    #: window of ftsmon's finished/failed counts, whole hours
    time_window: Duration = 3600.0
    stomp: StompSettings | None = None

    def __post_init__(self) -> None:
        if not self.ftsmon_url and self.stomp is None:
            raise ValueError("set ftsmon_url, a [stomp] table, or both")
        if self.ftsmon_url and not re.match(r"^https?://[^/\s]+", self.ftsmon_url):
            raise ValueError(f"ftsmon_url {self.ftsmon_url!r} must be an http(s):// URL")
        if self.time_window < 3600 or self.time_window % 3600:
            raise ValueError('time_window must be whole hours (ftsmon counts in hours), e.g. "1h"')
        if self.key and not self.cert:
            raise ValueError("key needs cert")


@dataclass
class _Inflight:
    batch: list[Delivery]


class FTSSlurper(Slurper[FTSSettings]):
    """Per-link and per-VO transfer figures from ftsmon, running totals from the STOMP bus."""

    def __init__(self, slurper_id: str, settings: FTSSettings, *, interval: float, timeout: float) -> None:
        super().__init__(slurper_id, settings, interval=interval, timeout=timeout)
        self._session: requests.Session | None = None
        self._bus: BusConsumer | None = None
        self._inflight: dict[int, _Inflight] = {}

    def metrics(self) -> Sequence[MetricSpec]:
        return [*_ftsmon_specs(), *_bus_specs()]

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        st = self.settings.stomp
        if st is None or self._bus is not None:
            return
        s = self.settings
        address = BrokerAddress(
            st.host,
            st.port,
            st.user,
            st.password.get() if st.password else "",
            tuple(st.destinations),
            st.durable,
            st.ssl,
            s.cert,
            s.key,
            s.ca,
            st.prefetch,
            st.backoff_max,
        )
        self._bus = BusConsumer(address, self.id, connect_timeout=min(10.0, self.timeout))
        self._bus.start()

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        readings: list[Reading] = []
        self._inflight.clear()  # a run that was never archived: its deliveries are still pending
        if self.settings.ftsmon_url:
            readings += self._ftsmon(ctx)
        if self.settings.stomp is not None:
            readings += self._consume(ctx)
        return readings

    def on_archived(self, ctx: CollectContext) -> None:
        inflight = self._inflight.pop(id(ctx), None)
        if inflight is not None and self._bus is not None:
            self._bus.ack(inflight.batch)

    # -- STOMP --------------------------------------------------------------------------------------
    def _consume(self, ctx: CollectContext) -> list[Reading]:
        if self._bus is None:
            self.start()
        bus = self._bus
        assert bus is not None
        if not bus.connected:
            raise SlurperError(f"FTS STOMP consumer: {bus.last_error} (retrying with backoff)")
        bus.settle(SETTLE_QUIET, ctx.timeout / 2)
        batch = bus.pending()
        run = fts_totals.apply(ctx.state.get("bus") or {}, batch, bus.connected)
        ctx.new_state = {**(ctx.new_state or {}), "bus": run.state}
        self._inflight[id(ctx)] = _Inflight(batch)
        return run.readings

    # -- ftsmon -------------------------------------------------------------------------------------
    def _ftsmon(self, ctx: CollectContext) -> list[Reading]:
        s = self.settings
        params = {"time_window": str(int(s.time_window // 3600))}
        if s.vo:
            params["vo"] = s.vo
        links = fts_parse.parse_overview(self._get("overview", {**params, "page": "all"}, ctx))
        stats = fts_parse.parse_stats(self._get("stats", params, ctx))
        readings = [Reading(metric_name("ftsmon.stats", k), v) for k, v in sorted(stats.items())]
        by_vo: dict[str, list[fts_parse.LinkStatus]] = defaultdict(list)
        for link in links:
            by_vo[link.vo].append(link)
            name = metric_name("ftsmon.link", fts_totals.link_part(link.source, link.dest), link.vo)
            readings += _link_readings(name, link)
        for vo, rows in sorted(by_vo.items()):
            total = _vo_total(vo, rows)
            readings += _link_readings(metric_name("ftsmon.vo", vo), total)
        return readings

    def _get(self, page: str, params: dict[str, str], ctx: CollectContext) -> str:
        s = self.settings
        url = f"{s.ftsmon_url.rstrip('/')}/{page}"
        if self._session is None:
            self._session = requests.Session()
            if s.cert:
                self._session.cert = (s.cert, s.key) if s.key else s.cert
        try:
            if url.startswith("https:"):
                fts_tls.check_files(s.cert, s.key, s.ca)
            # verify per request: a Session's verify loses to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in the
            # environment; a directory is passed on as OpenSSL's capath
            resp = self._session.get(
                url,
                params=params,
                timeout=ctx.timeout,
                headers={"Accept": "application/json"},
                verify=s.ca or True,
            )
        except fts_tls.TLSSetupError as exc:
            raise SlurperError(f"cannot reach ftsmon at {url}: {exc}") from None
        except requests.Timeout:
            raise SlurperError(f"ftsmon {url} timed out after {ctx.timeout:g} s") from None
        except requests.ConnectionError as exc:  # SSLError is one, and a refused certificate may reset
            https = url.startswith("https:")
            reason = self._tls_failure(url, exc, ctx.timeout) if https else request_error_reason(exc)
            raise SlurperError(f"cannot reach ftsmon at {url}: {reason}") from None
        except requests.RequestException as exc:
            raise SlurperError(f"cannot reach ftsmon at {url}: {request_error_reason(exc)}") from None
        if resp.status_code != 200:
            body = " ".join(resp.text.split())[:200]
            raise SlurperError(f"ftsmon {url} returned HTTP {resp.status_code}: {body or resp.reason}")
        return resp.text

    def _tls_failure(self, url: str, exc: requests.ConnectionError, timeout: float) -> str:
        """The TLS reason behind a failed HTTPS request; if requests saw only an EOF or reset, a probe's."""
        s = self.settings
        try:
            fts_tls.check_ca(s.ca)  # an unhashed CA directory fails as "not trusted"; say why
        except fts_tls.TLSSetupError as problem:
            return str(problem)
        err = fts_tls.ssl_error_in(exc)
        host = urllib.parse.urlsplit(url).hostname or url
        if fts_tls.conclusive(err):
            return fts_tls.describe(err, peer="server", host=host, cert=s.cert, ca=s.ca)
        # the server certificate passed (or the failure would be conclusive): ask only about ours
        port = urllib.parse.urlsplit(url).port or 443
        found = fts_tls.probe(
            host, port, cert=s.cert, key=s.key, ca=s.ca, peer="server", verify=False, timeout=timeout
        )
        return found or request_error_reason(exc)


def _ftsmon_specs() -> list[MetricSpec]:
    out = [MetricSpec("ftsmon.stats.*", "GAUGE", "transfers", 0, description="ftsmon stats (last hour)")]
    for prefix, what in (("ftsmon.link.*.", "link (source, destination, VO)"), ("ftsmon.vo.*.", "VO")):
        out += [
            MetricSpec(
                f"{prefix}{f}",
                "GAUGE",
                "transfers",
                0,
                graph=f"{prefix}counts",
                description=f"{f} transfers of a {what}",
                when_absent=0,  # ftsmon lists only links and VOs with transfers
            )
            for f in LINK_FIELDS
        ]
        out.append(
            MetricSpec(f"{prefix}throughput", "GAUGE", "B/s", 0, description=f"throughput of a {what}")
        )
        # default tolerances for a link (docs/slurpers/fts.md): below 90 % finished warns, below 50 % is
        # critical; a VO's rate mixes its links, so it is left unjudged unless a rule asks
        link = prefix.startswith("ftsmon.link")
        out.append(
            MetricSpec(
                f"{prefix}success_rate",
                "GAUGE",
                "%",
                0,
                100,
                description="finished/(finished+failed)",
                warning="90:" if link else None,
                critical="50:" if link else None,
            )
        )
    return out


def _bus_specs() -> list[MetricSpec]:
    out = [
        MetricSpec("bus.connected", "GAUGE", "", 0, 1, critical="1:", description="1 when consuming"),
        MetricSpec("bus.messages", "DERIVE", "messages", 0, description="FTS messages consumed"),
        MetricSpec("bus.malformed", "DERIVE", "messages", 0, description="messages not understood"),
        MetricSpec("bus.link.*.throughput_mean", "GAUGE", "B/s", 0, description="mean of finished transfers"),
        MetricSpec("bus.link.*.bytes", "DERIVE", "B", 0, description="bytes transferred (running total)"),
        MetricSpec("bus.queue.*.ratio", "GAUGE", "%", 0, description="active / allowed connections"),
        MetricSpec("bus.queue.*", "GAUGE", "transfers", 0, description="active or ready transfers"),
    ]
    out += [
        MetricSpec(
            f"bus.link.*.{s}",
            "DERIVE",
            "transfers",
            0,
            graph="bus.link.final",
            description=f"transfers that ended {s} (running total)",
        )
        for s in ("ok", "error", "aborted")
    ]
    return out


def _vo_total(vo: str, rows: list[fts_parse.LinkStatus]) -> fts_parse.LinkStatus:
    """The sum of a VO's links; its throughput is unknown only when no link's was measured."""
    rates = [r.throughput for r in rows if r.throughput is not None]
    return fts_parse.LinkStatus(
        "*",
        "*",
        vo,
        sum(r.submitted for r in rows),
        sum(r.active for r in rows),
        sum(r.finished for r in rows),
        sum(r.failed for r in rows),
        sum(rates) if rates else None,
    )


def _link_readings(prefix: str, link: fts_parse.LinkStatus) -> list[Reading]:
    out = [Reading(f"{prefix}.{f}", getattr(link, f)) for f in LINK_FIELDS]
    if link.throughput is not None:
        out.append(Reading(f"{prefix}.throughput", link.throughput))
    if link.success_rate is not None:
        out.append(Reading(f"{prefix}.success_rate", link.success_rate))
    return out


__all__ = ["FTSSettings", "FTSSlurper", "PayloadError", "StompSettings"]
