"""The page tables of the configuration: ``[[dashboard]]`` and ``[[experiment]]``.

A dashboard is a title and rows of graphs, each row the metrics whose ids match its globs; an
experiment names, per system, the globs that pick its share: HTCondor accounting groups, Slurm
accounts, FTS VOs, Enstore storage groups, dCache VOs, plus any metric ids. Types and single keys are
checked by pydantic; :func:`page_errors` checks what spans tables (names used twice).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import field

from pydantic import ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass as pdataclass

_STRICT = ConfigDict(extra="forbid")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: the periods a dashboard row may show (those of the graph pages' period links)
PERIODS = ("hour", "day", "week", "month", "year")
#: graphs drawn per dashboard row at most (a glob matching thousands would make the page useless)
MAX_ROW_GRAPHS = 48


def _name(v: str) -> str:
    if not _NAME.fullmatch(v):
        raise ValueError(
            f"{v[:70]!r} is not a page name: 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (it is the page's address)"
        )
    return v


def _period(v: str) -> str:
    if v not in PERIODS:
        raise ValueError(f"{v[:20]!r} is not one of {', '.join(PERIODS)}")
    return v


def _globs(v: list[str]) -> list[str]:
    for g in v:
        if not g.strip() or len(g) > 400 or any(ord(c) < 32 for c in g):
            raise ValueError(f"{g[:70]!r} is not a glob (empty, over 400 characters or a control character)")
    return v


@pdataclass(frozen=True, config=_STRICT)
class DashboardRow:
    """One ``rows`` entry: graphs of the metrics whose ids match ``match``."""

    match: list[str] = Field(min_length=1)
    title: str = ""
    #: the row's time span; None: the dashboard's
    period: str | None = None

    @field_validator("match")
    @classmethod
    def _match(cls, v: list[str]) -> list[str]:
        return _globs(v)

    @field_validator("period")
    @classmethod
    def _period(cls, v: str | None) -> str | None:
        return None if v is None else _period(v)


@pdataclass(frozen=True, config=_STRICT)
class Dashboard:
    """``[[dashboard]]``: a page of graphs at ``/dashboards/<name>``."""

    name: str
    rows: list[DashboardRow] = Field(min_length=1)
    title: str = ""
    period: str = "day"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _name(v)

    @field_validator("period")
    @classmethod
    def _period(cls, v: str) -> str:
        return _period(v)


@pdataclass(frozen=True, config=_STRICT)
class Experiment:
    """``[[experiment]]``: one page at ``/experiments/<name>`` gathering an experiment's share."""

    name: str
    title: str = ""
    #: globs over HTCondor accounting groups (``jobs.<group>.*`` of htcondor slurpers)
    condor_groups: list[str] = field(default_factory=list)
    #: globs over Slurm accounts (``account.<account>.*`` of slurm slurpers)
    slurm_accounts: list[str] = field(default_factory=list)
    #: globs over FTS VOs (``ftsmon.vo.<vo>.*`` and ``ftsmon.link.*.<vo>.*`` of fts slurpers)
    fts_vos: list[str] = field(default_factory=list)
    #: globs over Enstore storage groups (``lm.<name>.*`` and ``mover.<name>.*`` of enstore slurpers)
    storage_groups: list[str] = field(default_factory=list)
    #: globs over dCache VOs (``vo.<vo>.*`` of dcache slurpers)
    dcache_vos: list[str] = field(default_factory=list)
    #: any further metric ids (``slurper/metric`` globs)
    match: list[str] = field(default_factory=list)
    period: str = "day"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _name(v)

    @field_validator("condor_groups", "slurm_accounts", "fts_vos", "storage_groups", "dcache_vos", "match")
    @classmethod
    def _lists(cls, v: list[str]) -> list[str]:
        return _globs(v)

    @field_validator("period")
    @classmethod
    def _period(cls, v: str) -> str:
        return _period(v)

    def patterns(self, slurpers: Iterable[tuple[str, str]]) -> list[str]:
        """Metric id globs for ``(slurper id, slurper type)`` pairs: the experiment's share of each."""
        out = list(self.match)
        for sid, kind in slurpers:
            for name_glob in self._names(kind):
                out.append(f"{sid}/{name_glob}")
        return out

    def _names(self, kind: str) -> list[str]:
        if kind == "htcondor":
            return [f"jobs.{g}.*" for g in self.condor_groups]
        if kind == "slurm":
            return [f"account.{g}.*" for g in self.slurm_accounts]
        if kind == "fts":
            return [p for g in self.fts_vos for p in (f"ftsmon.vo.{g}.*", f"ftsmon.link.*.{g}.*")]
        if kind == "enstore":
            return [p for g in self.storage_groups for p in (f"lm.{g}.*", f"mover.{g}.*")]
        if kind == "dcache":
            return [f"vo.{g}.*" for g in self.dcache_vos]
        return []


def page_errors(
    dashboards: Iterable[tuple[Dashboard, Callable[[str], str]]],
    experiments: Iterable[tuple[Experiment, Callable[[str], str]]],
) -> list[str]:
    """Names used twice (each page has one address), and experiments that pick nothing."""
    errors = []
    for kind, pages in (("[[dashboard]]", dashboards), ("[[experiment]]", experiments)):
        seen: set[str] = set()
        for page, where in pages:
            if page.name in seen:
                errors.append(f"{where('name')}: {page.name!r} is already the name of another {kind}")
            seen.add(page.name)
    for exp, where in experiments:
        lists = (exp.condor_groups, exp.slurm_accounts, exp.fts_vos, exp.storage_groups, exp.dcache_vos)
        if not any(lists) and not exp.match:
            errors.append(
                f"{where('(table)')}: picks no metric: give condor_groups, slurm_accounts, fts_vos, "
                "storage_groups, dcache_vos or match"
            )
    return errors
