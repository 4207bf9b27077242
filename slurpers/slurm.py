"""Slurm jobs, nodes, CPUs and scheduler figures, from ``squeue/sinfo/sdiag --json`` or slurmrestd.

Parsing lives in :mod:`slurpers.slurm_parse`; this module fetches the documents and names the metrics.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Any, Literal

import requests

from slurpers import slurm_parse as sp
from slurpers.api import (
    CollectContext,
    MetricSpec,
    PayloadError,
    Reading,
    Secret,
    Slurper,
    SlurperError,
    request_error_reason,
    run_command,
    settings,
)

log = logging.getLogger(__name__)
_API = re.compile(r"^v\d+\.\d+\.\d+$")


@settings
class SlurmSettings:
    #: "cli" runs squeue/sinfo/sdiag --json; "rest" asks slurmrestd
    mode: Literal["cli", "rest"] = "cli"
    squeue: str = "squeue"
    sinfo: str = "sinfo"
    sdiag: str = "sdiag"
    #: base URL of slurmrestd, e.g. "http://slurmctl:6820" (mode = "rest")
    url: str = ""
    #: e.g. "v0.0.42"; "" = the newest one listed by /openapi/v3
    api_version: str = ""
    #: JWT for X-SLURM-USER-TOKEN, by reference: { env = "SLURM_JWT" }
    token: Secret | None = None
    #: X-SLURM-USER-NAME; "" = the user the token was issued to
    user: str = ""
    #: also count jobs per account (account.<a>.<state>)
    per_account: bool = False
    #: verify the TLS certificate of an https url
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if self.mode == "rest" and not re.match(r"^https?://[^/\s]+", self.url):
            raise ValueError('mode = "rest" needs url = "http(s)://host:port" of slurmrestd')
        if self.mode == "rest" and self.token is None:
            raise ValueError('mode = "rest" needs token = { env = "SLURM_JWT" } (see scontrol token)')
        if self.api_version and not _API.match(self.api_version):
            raise ValueError(f"api_version {self.api_version!r} must look like v0.0.42 (or be empty)")


def specs() -> list[MetricSpec]:
    """The metric families this slurper writes."""
    out = [MetricSpec(f"jobs.{s.lower()}", unit="jobs", min=0, graph="jobs") for s in sp.JOB_STATES]
    for s in sp.JOB_STATES:
        name = s.lower()
        for family, graph in (("partition", "partition.<p>"), ("account", "account.<a>")):
            out.append(
                MetricSpec(f"{family}.*.{name}", unit="jobs", min=0, graph=graph, label=name, when_absent=0)
            )
    out.append(
        MetricSpec(
            "pending.*", unit="jobs", min=0, graph="pending", description="pending by reason", when_absent=0
        )
    )
    out += [
        MetricSpec("nodes.total", unit="nodes", min=0, graph="nodes"),
        # default tolerances (docs/slurpers/slurm.md): any node down warns; drained nodes need a person
        MetricSpec("nodes.down", unit="nodes", min=0, graph="nodes", warning="0", critical="10"),
        MetricSpec("nodes.drained", unit="nodes", min=0, graph="nodes.flag", warning="5", critical="20"),
        MetricSpec("nodes.draining", unit="nodes", min=0, graph="nodes.flag"),
        MetricSpec("nodes.flag.*", unit="nodes", min=0, graph="nodes.flag"),
        MetricSpec("nodes.*", unit="nodes", min=0, graph="nodes"),
    ]
    out += [
        MetricSpec(f"cpus.{k}", unit="cores", min=0, graph="cpus") for k in ("allocated", "idle", "other")
    ]
    out.append(MetricSpec("cpus.total", unit="cores", min=0, graph="cpus"))
    for key, unit in sp.SDIAG_GAUGES.items():
        out.append(MetricSpec(f"sdiag.{key}", unit=unit, min=0, graph=f"sdiag.{unit}"))
    for key, unit in sp.SDIAG_COUNTERS.items():
        out.append(
            MetricSpec(
                f"sdiag.{key}",
                "DERIVE",
                unit=f"{unit}/s",
                min=0,
                graph=f"sdiag.{unit}.rate",
                description="counter since midnight UTC; DERIVE with min 0 drops the reset",
            )
        )
    return out


class SlurmSlurper(Slurper[SlurmSettings]):
    def __init__(self, slurper_id: str, settings: SlurmSettings, *, interval: float, timeout: float) -> None:
        super().__init__(slurper_id, settings, interval=interval, timeout=timeout)
        self._api = settings.api_version
        self._session: requests.Session | None = None
        #: whether the installed sdiag takes --json (None: not asked yet)
        self._sdiag_json: bool | None = None

    def metrics(self) -> Sequence[MetricSpec]:
        return specs()

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        if self.settings.mode == "rest":
            return self._collect_rest(ctx)
        s = self.settings
        jobs = self._run([s.squeue, "--json"], ctx)
        tally = sp.node_tally(self._run([s.sinfo, "-N", "--json"], ctx))
        diag = self._run([s.sdiag, "--json"], ctx) if self._sdiag_has_json(ctx) else None
        return self._readings(jobs, tally, sorted(tally.partitions), diag)

    def _sdiag_has_json(self, ctx: CollectContext) -> bool:
        """``sdiag --json`` exists from Slurm 23.02 on; squeue and sinfo had it from 21.08.

        Asked once (``sdiag --version``): on an older release the scheduler figures are skipped, said
        once in the log, and the job, node and CPU figures are still collected.
        """
        if self._sdiag_json is None:
            out = run_command([self.settings.sdiag, "--version"], timeout=ctx.timeout, check=False)
            release = sp.release(out.stdout)
            self._sdiag_json = release is None or release >= sp.SDIAG_JSON_SINCE
            if not self._sdiag_json:
                log.warning(
                    "slurm %s: %s is Slurm %s, whose sdiag has no --json (23.02 and later have it); "
                    "the sdiag.* scheduler figures are skipped, jobs, nodes and CPUs are collected",
                    self.id, self.settings.sdiag, sp.release_text(release or ()),
                )  # fmt: skip
        return self._sdiag_json

    def _readings(
        self, jobs: dict[str, Any], tally: sp.NodeTally, partitions: list[str], diag: dict[str, Any] | None
    ) -> list[Reading]:
        return [
            *sp.job_readings(jobs, partitions, self.settings.per_account),
            *tally.readings(),
            *(sp.sdiag_readings(diag) if diag is not None else []),
        ]

    def _run(self, argv: list[str], ctx: CollectContext) -> dict[str, Any]:
        result = run_command(argv, timeout=ctx.timeout)
        return sp.load(result.stdout, " ".join([os.path.basename(argv[0]), *argv[1:]]))

    # -- slurmrestd ----------------------------------------------------------------------------------
    def _collect_rest(self, ctx: CollectContext) -> list[Reading]:
        if not self._api:
            self._api = sp.newest_api(self._get("/openapi/v3", ctx))
            log.info("slurm %s: slurmrestd speaks %s", self.id, self._api)
        base = f"/slurm/{self._api}"
        jobs = self._get(f"{base}/jobs", ctx)
        tally = sp.node_tally(self._get(f"{base}/nodes", ctx))
        partitions = sp.partition_names(self._get(f"{base}/partitions", ctx))
        diag = self._get(f"{base}/diag", ctx)
        return self._readings(jobs, tally, partitions, diag)

    def _get(self, path: str, ctx: CollectContext) -> dict[str, Any]:
        s = self.settings
        url = s.url.rstrip("/") + path
        token = s.token.get() if s.token else ""
        headers = {"X-SLURM-USER-TOKEN": token, "Accept": "application/json"}
        # slurmrestd 22.05 and older answer 401 without X-SLURM-USER-NAME; later ones take the token's
        # own user. Sending the user the token names is right for every release.
        user = s.user or sp.token_user(token)
        if user:
            headers["X-SLURM-USER-NAME"] = user
        if self._session is None:
            self._session = requests.Session()
        try:
            resp = self._session.get(url, headers=headers, timeout=ctx.timeout, verify=s.verify_tls)
        except requests.Timeout:
            raise SlurperError(f"slurmrestd {url} timed out after {ctx.timeout:g} s") from None
        except requests.RequestException as exc:
            raise SlurperError(f"cannot reach slurmrestd at {url}: {request_error_reason(exc)}") from None
        if resp.status_code != 200:
            reason = sp.http_error_text(resp.text) or resp.reason
            raise SlurperError(f"slurmrestd {url} returned HTTP {resp.status_code}: {reason}")
        try:
            return sp.load(resp.text, f"GET {path}")
        except PayloadError as exc:
            raise PayloadError(f"slurmrestd {exc}") from None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
