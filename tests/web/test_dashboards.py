"""Dashboards and experiment pages (issue #15 item 6): config validation naming file and key, and the
pages over a real archive and database."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from alarms.engine import MetricRecord
from alarms.store import AlarmStore
from downtime.db import make_engine
from rexmon.config import ConfigError, load
from rrd.archive import Update
from tests.web.conftest import NOW, SPEC, Site

#: an experiment's share in three systems, and one metric of another experiment in each
PAGES = """
[[slurper]]
id = "condor"
type = "htcondor"
interval = 60

[[slurper]]
id = "slurm"
type = "slurm"
interval = 60

[[slurper]]
id = "fts"
type = "fts"
interval = 60
ftsmon_url = "http://127.0.0.1:9/fts3/ftsmon"

[[dashboard]]
name = "batch"
title = "Batch at a glance"
period = "week"
[[dashboard.rows]]
title = "schedd s1"
match = ["condor/schedd.s1.*"]
[[dashboard.rows]]
match = ["df/*"]
period = "day"

[[experiment]]
name = "mu2e"
title = "Mu2e"
condor_groups = ["group_mu2e*"]
slurm_accounts = ["mu2e"]
fts_vos = ["mu2e"]
"""
SHARE = {
    "condor/jobs.group_mu2e.running": 120.0,
    "condor/jobs.group_mu2e_pro.held": 3.0,
    "slurm/account.mu2e.running": 40.0,
    "fts/ftsmon.vo.mu2e.success_rate": 12.0,
    "fts/ftsmon.link.a__b.mu2e.active": 5.0,
}
OTHERS = {
    "condor/jobs.group_dune.running": 7.0,
    "slurm/account.dune.running": 8.0,
    "fts/ftsmon.vo.cms.active": 9.0,
}


@pytest.fixture
def pages_site(make_site: Callable[..., Site]) -> Site:
    site = make_site(extra=PAGES)
    site.archive.write([Update(m, NOW, v, SPEC) for m, v in {**SHARE, **OTHERS}.items()])
    engine = make_engine(site.config.database_url)
    rec = MetricRecord(
        "fts/ftsmon.vo.mu2e.success_rate", "CRITICAL", NOW - 300, 12.0, NOW, rule="fts default"
    )
    AlarmStore(engine).commit([rec], now=NOW)
    engine.dispose()
    return site


def test_an_experiment_page_gathers_its_metrics_from_three_systems(pages_site: Site) -> None:
    html = pages_site.client().get("/experiments/mu2e").get_data(as_text=True)
    assert "<h1>Mu2e" in html and "5 metrics in 3 systems" in html
    assert re.findall(r'<section class="system" data-slurper="([^"]+)"', html) == ["condor", "fts", "slurm"]
    for mid in SHARE:
        assert f'data-id="{mid}"' in html
    for mid in OTHERS:
        assert mid not in html
    problems = html.split('id="h-problems"')[1].split("</section>")[0]
    assert 'data-id="fts/ftsmon.vo.mu2e.success_rate"' in problems and "CRITICAL" in problems
    assert "/img/fts/ftsmon.vo.mu2e.success_rate.png?period=day&amp;size=small" in html


def test_an_experiment_page_lists_the_downtimes_of_its_metrics(pages_site: Site) -> None:
    from downtime.store import DowntimeStore

    engine = make_engine(pages_site.config.database_url)
    DowntimeStore(engine).add(
        ["slurm/account.mu2e.*"], NOW + 3600, NOW + 7200, "slurm upgrade", "alice", now=NOW
    )
    DowntimeStore(engine).add(["slurm/account.dune.*"], NOW + 3600, NOW + 7200, "only dune", "bob", now=NOW)
    engine.dispose()
    html = pages_site.client().get("/experiments/mu2e").get_data(as_text=True)
    section = html.split('id="h-downtimes"')[1].split("</section>")[0]
    assert "slurm upgrade" in section and "(alice)" in section and "only dune" not in section


def test_a_dashboard_has_rows_of_graphs_chosen_by_globs(pages_site: Site) -> None:
    html = pages_site.client().get("/dashboards/batch").get_data(as_text=True)
    assert "<h1>Batch at a glance</h1>" in html
    rows = html.split('<section class="dash-row">')[1:]
    assert len(rows) == 2 and "schedd s1" in rows[0] and "week" in rows[0] and "day" in rows[1]
    assert re.findall(r'data-id="(condor/[^"]+)"', rows[0]) == [
        "condor/schedd.s1.held",
        "condor/schedd.s1.idle",
        "condor/schedd.s1.running",
    ]
    assert "/img/condor/schedd.s1.running.png?period=week&amp;size=small" in rows[0]
    assert "/img/df/_dev_sda1.png?period=day&amp;size=small" in rows[1]


def test_the_overview_links_every_dashboard_and_experiment(pages_site: Site) -> None:
    html = pages_site.client().get("/").get_data(as_text=True)
    assert (
        'href="/dashboards/batch">Batch at a glance</a>' in html
        and 'href="/experiments/mu2e">Mu2e</a>' in html
    )
    assert pages_site.client().get("/dashboards/").status_code == 200
    assert pages_site.client().get("/dashboards/nope").status_code == 404
    assert pages_site.client().get("/experiments/nope").status_code == 404


D = '[[dashboard]]\nname = "a"\n'
ROW = '[[dashboard.rows]]\nmatch = ["x/*"]\n'
E = '[[experiment]]\nname = "e"\n'
BAD_PAGES = [
    ('[[dashboard]]\nname = "a b"\n' + ROW, "[[dashboard]] #1: name: Value error, 'a b' is not a page name"),
    (D, "[[dashboard]] #1: rows: required key is missing"),
    (D + "rows = []", "[[dashboard]] #1: rows: List should have at least 1 item"),
    (
        D + ROW + 'period = "fortnight"',
        "[[dashboard]] #1: rows.0.period: Value error, 'fortnight' is not one",
    ),
    (D + '[[dashboard.rows]]\nmach = ["x/*"]', "[[dashboard]] #1: rows.0.mach: unknown key"),
    (E + 'condor_group = ["x"]', "[[experiment]] #1: condor_group: unknown key"),
    (E, "[[experiment]] #1: (table): picks no metric"),
    (E + 'match = ["a/*"]\n' + E + 'match = ["b/*"]', "[[experiment]] #2: name: 'e' is already the name"),
    (E + 'fts_vos = [""]', "[[experiment]] #1: fts_vos: Value error, '' is not a glob"),
]


@pytest.mark.parametrize(("toml", "error"), BAD_PAGES)
def test_page_tables_are_validated_naming_file_and_key(tmp_path: Path, toml: str, error: str) -> None:
    path = tmp_path / "rexmon.toml"
    path.write_text(toml + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load(path)
    assert any(e.startswith(f"{path}: ") and error in e for e in exc.value.errors), exc.value.errors
