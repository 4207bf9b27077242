"""The traps of a dCache billing database, one by one, against a real PostgreSQL with dCache's own DDL.

The rows are the research rows of tests/data/dcache/rows.sql (real formats) plus rows written here for
what they lack. Each test polls the slurper as rexmon would (``collect`` with the committed state) and
looks at what it would archive.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from typing import Any

import pytest

from slurpers.api import CollectContext, SlurperError
from slurpers.dcache import DCacheSettings, DCacheSlurper
from tests.dcache.conftest import DATA, BillingDB

STEP = 60
NIGHT = 1729990800  # 2024-10-27 01:00:00Z: 03:00 CEST became 02:00 CET


class Polls:
    """Runs a slurper every ``STEP`` seconds of fake time, committing its state as rexmon does."""

    def __init__(self, db: BillingDB, **settings: Any) -> None:
        self.slurper = DCacheSlurper("dc", DCacheSettings(url=db.url, **settings), interval=STEP, timeout=60)
        self.state: dict[str, Any] = {}
        self.totals: Counter[str] = Counter()
        self.at: dict[str, dict[int, float | None]] = defaultdict(dict)

    def run(self, now: float) -> None:
        ctx = CollectContext(now=now, timeout=60, state=self.state)
        for r in self.slurper.collect(ctx):
            assert r.time is not None and r.time % STEP == 0
            self.at[r.metric][int(r.time)] = r.value
            if isinstance(r.value, int):
                self.totals[r.metric] += r.value
        assert ctx.new_state is not None
        self.state = ctx.new_state

    def span(self, start: float, end: float) -> Polls:
        now = start
        while now <= end:
            self.run(now)
            now += STEP
        return self

    def close(self) -> None:
        self.slurper.close()


@pytest.fixture
def research(billing: BillingDB) -> BillingDB:
    billing.script(DATA / "rows.sql")
    return billing


def test_research_rows_of_the_dst_night_are_counted_by_their_instant(research: BillingDB) -> None:
    """Fresh schema: DST fall-back night, equal datestamps, per-login doors, p2p, sizes past 2^32."""
    polls = Polls(research, backfill="1h").span(NIGHT + 600, NIGHT + 1800)
    polls.close()
    t, at = polls.totals, polls.at
    # 02:59:59.999+02 (00:59:59.999Z) and 02:00:00.000+01 (01:00:00Z, on an edge: the later bucket)
    assert at["proto.DCap.read.transfers"][NIGHT] == 1
    assert at["proto.NFS4.read.transfers"][NIGHT + STEP] == 1
    # two movers share 02:55:01.120+02 and both count; > 2^31 and > 2^32 sizes are exact
    assert at["write.bytes"][NIGHT - 240] == 4831838208 and at["read.bytes"][NIGHT - 240] == 524288000
    assert t["proto.GFtp.write.bytes"] == 4831838208 + 1073741824 + 1073741824
    # per-login FTP and DCap cells are one door each; the per-login names never become series
    assert t["door.GFTP-dcdoor01.requests"] == 2 and t["door.GFTP-dcdoor01.failed"] == 1
    assert t["door.DCap-dcdoor04.requests"] == 1 and not any("AAYl" in name for name in at)
    assert t["door.errors.10004"] == 1 and t["door.WebDAV-dcdoor02.removes"] == 1
    # transfersize -35: 0 bytes, an anomaly; the transfer itself succeeded
    assert t["anomaly.negative_size"] == 1 and t["proto.Xrootd.read.transfers"] >= 1
    # p2p flagged true is p2p, its failure is an error code of its own
    assert t["p2p.transfers"] == 1 and t["p2p.failed"] == 1 and t["errors.666"] == 2
    # the <undefined> and NULL initiators are plain reads, not lost (Gratia's INNER JOIN drops them)
    assert t["proto.GFtp.read.transfers"] == 2 and t["proto.unknown.read.transfers"] == 1
    # VO from the FQAN, else the storage class's store
    assert t["vo.atlas.write.bytes"] > 0 and t["vo.lsst.read.bytes"] == 262144
    # connection time of ok non-p2p transfers, in seconds; unknown where a bucket has none
    assert at["conn_time.write.max"][NIGHT - 240] == pytest.approx(61.234)
    assert at["conn_time.write.mean"][NIGHT + 1200] is None


def test_tape_rows_count_when_they_complete(research: BillingDB) -> None:
    """A restore created 8 h before completing, a flush created 3 days before: bucketed by completion."""
    created = NIGHT - 3 * 86400
    research.execute(
        "INSERT INTO storageinfo (datestamp, cellname, action, transaction, fullsize, queuedtime,"
        " connectiontime, errorcode, errormessage) VALUES (to_timestamp(%s), 'rw-tape01_1@rw-tape01Domain',"
        " 'store', 'pool:rw-tape01_1@rw-tape01Domain:1-1', 7, %s, 30000, 0, '')",
        (created, 3 * 86400_000 + 90_000 - 30_000),
    )
    polls = Polls(research, backfill="1h").span(NIGHT + 600, NIGHT + 1800)
    polls.close()
    at = polls.at
    # created 2024-10-26 19:02:33.100+02, queued 28500 s, moved 212 s: completes 01:01:05.1Z
    assert at["tape.restore.bytes"][NIGHT + 2 * STEP] == 5368709120
    assert at["tape.restore.wait.max"][NIGHT + 2 * STEP] == pytest.approx(28500.0)
    assert at["tape.store.files"][NIGHT + 2 * STEP] == 1  # completes 01:01:30Z, three days on
    assert polls.totals["tape.restore.failed"] == 1 and polls.totals["tape.store.failed"] == 1


def test_a_naive_datestamp_needs_local_timezone(research: BillingDB) -> None:
    """2007-upgraded schema without local_timezone: refused, naming the column and the setting."""
    slurper = DCacheSlurper(
        "dc", DCacheSettings(url=research.url, schema="billing_upgraded"), interval=STEP, timeout=60
    )
    with pytest.raises(SlurperError, match=r"billing_upgraded\.billinginfo\.datestamp .*local_timezone"):
        slurper.collect(CollectContext(now=NIGHT, timeout=60))
    slurper.close()


def test_upgraded_2007_schema_numeric_counters_and_ambiguous_local_times(research: BillingDB) -> None:
    """numeric (Decimal) sizes, no p2p flag on old rows, and the 2007-11-04 US fall-back hour."""
    fallback = 1194163200  # 2007-11-04 08:00Z = 01:00 PDT, the first of two 01:00-02:00 hours
    polls = Polls(
        research, schema="billing_upgraded", local_timezone="America/Los_Angeles", backfill="2h"
    ).span(fallback + 3 * 3600, fallback + 3 * 3600 + 4 * STEP)
    polls.close()
    t = polls.totals
    # 01:40 and 01:10 local happened twice that night: counted (as standard time) and flagged
    assert t["anomaly.ambiguous_time"] == 2
    assert t["read.bytes"] == 3000000000 and t["write.bytes"] == 734003200
    assert t["proto.GFtp.read.transfers"] == 1 and t["vo.cms.write.bytes"] == 734003200


def test_older_dcache_without_p2p_fqan_owner_columns(research: BillingDB) -> None:
    """Columns added by 2.7 and 2.16 missing: p2p from the initiator, VO from the storage class."""
    research.execute("ALTER TABLE billinginfo DROP COLUMN p2p, DROP COLUMN fqan, DROP COLUMN owner")
    research.execute(
        "INSERT INTO billinginfo (datestamp, cellname, action, transaction, transfersize, storageclass,"
        " isnew, connectiontime, errorcode, errormessage, protocol, initiator) VALUES (to_timestamp(%s),"
        " 'dcpool03_1', 'transfer', 'pool:dcpool03_1:1-1', 734003200, 'cms:default@osm', false, 4100, 0, '',"
        " 'Http-1.1',"
        " 'pool:dcpool12_3@dcpool12Domain')",
        (NIGHT + 30,),
    )
    polls = Polls(research, backfill="1h").span(NIGHT + 600, NIGHT + 1800)
    polls.close()
    assert polls.at["p2p.bytes"][NIGHT + STEP] == 734003200
    assert polls.totals["vo.cms.read.bytes"] > 0 and "vo.unknown.read.bytes" not in polls.totals


def test_exact_duplicates_count_once_and_late_rows_reach_a_later_bucket(research: BillingDB) -> None:
    """A row delivered twice counts once; rows committed after their bucket closed are added later."""
    copy = "INSERT INTO billinginfo SELECT * FROM billinginfo WHERE transaction = %s"  # the same row again
    research.execute(copy, ("pool:dcpool07_1@dcpool07Domain:1729991250250-4472051",))
    polls = Polls(research, backfill="1h", reconcile_every=0)
    polls.span(NIGHT + 600, NIGHT + 1200)
    assert polls.totals["slurper.duplicates"] == 2  # the research file's own duplicate, and this one
    before = polls.totals["read.bytes"]
    late = (
        "INSERT INTO billinginfo (datestamp, cellname, action, transaction, transfersize, isnew, errorcode,"
        " errormessage, protocol, initiator, p2p) VALUES (to_timestamp(%s), 'dcpool07_1@dcpool07Domain',"
        " 'transfer', %s, 1000, false, 0, '', 'Http-1.1', '<undefined>', false)"
    )
    research.execute(late, (NIGHT + 300, "pool:late:1"))  # 15 minutes late, inside late_horizon
    research.execute(late, (NIGHT - 3 * 3600, "pool:late:2"))  # past late_horizon: lost, by design
    polls.span(NIGHT + 1260, NIGHT + 1500)
    polls.close()
    assert polls.totals["read.bytes"] == before + 1000
    assert polls.totals["slurper.late"] == 1
    assert polls.at["read.bytes"][NIGHT + 300 + STEP] != 1000  # not rewritten into the past


def test_a_count_that_falls_is_logged_never_subtracted(research: BillingDB, caplog: Any) -> None:
    """Truncation (billing.enable.db-truncate) or a manual delete lowers a count: nothing is subtracted."""
    polls = Polls(research, backfill="1h", reconcile_every=0)
    polls.span(NIGHT + 600, NIGHT + 900)
    before = Counter(polls.totals)
    research.execute("DELETE FROM billinginfo WHERE datestamp >= to_timestamp(%s)", (NIGHT - 300,))
    with caplog.at_level(logging.WARNING, logger="slurpers.dcache_buckets"):
        polls.span(NIGHT + 960, NIGHT + 1200)
    polls.close()
    assert "lost rows" in caplog.text and "nothing is subtracted" in caplog.text
    assert all(polls.totals[k] >= v for k, v in before.items())


def test_every_session_is_read_only_utc_with_a_timeout_and_a_name(research: BillingDB) -> None:
    """application_name rexmon-dcache, read only, UTC and statement_timeout on the slurper's session."""
    polls = Polls(research, statement_timeout="7s")
    polls.run(NIGHT)
    rows = research.query(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rexmon-dcache'"
        " AND datname = current_database()"
    )
    engine = polls.slurper._engine_for()  # the pooled session the slurper used
    with engine.connect() as conn:
        shown = {k: conn.exec_driver_sql(f"SHOW {k}").scalar() for k in ("TimeZone", "statement_timeout")}
        read_only = conn.exec_driver_sql("SHOW transaction_read_only").scalar()
    polls.close()
    assert rows == [(1,)]
    assert shown == {"TimeZone": "UTC", "statement_timeout": "7s"} and read_only == "on"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"schema": "nosuch"}, "schema 'nosuch' has no table billinginfo"),
        ({"url": "postgresql://postgres@127.0.0.1:1/billing"}, "billing database query failed: .*connection"),
    ],
)
def test_errors_name_what_is_wrong(billing: BillingDB, settings: dict[str, Any], message: str) -> None:
    """A wrong schema or an unreachable server: a SlurperError saying which."""
    if "url" in settings:
        billing.database, settings = "postgres", {}
        billing.server = type(billing.server)(billing.server.data_dir, 1, billing.server.proc)
    polls = Polls(billing, **settings)
    with pytest.raises(SlurperError, match=message):
        polls.run(NIGHT)
    polls.close()


def test_a_checkpoint_of_another_step_is_not_reused(research: BillingDB, caplog: Any) -> None:
    """[archive] step changed from 60 to 300: old buckets are not read as 300 s ones; counting restarts."""
    polls = Polls(research, backfill="1h")
    polls.span(NIGHT + 600, NIGHT + 900)
    polls.close()
    wider = Polls(research, step=300, backfill="1h")
    wider.state = polls.state
    with caplog.at_level(logging.WARNING, logger="slurpers.dcache_buckets"):
        wider.span(NIGHT + 1200, NIGHT + 1200 + 2 * 300)
    wider.close()
    assert "checkpoint made with another step" in caplog.text
    assert wider.state["step"] == 300 and wider.state["W"] % 300 == 0
    assert all(t % 300 == 0 for series in wider.at.values() for t in series)
