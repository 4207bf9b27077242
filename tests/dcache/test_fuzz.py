"""Hypothesis fuzzing of row contents: no crash, every name archivable, anomalies counted.

First the pure classification with any value a column's type can hold (Decimal NaN, fractions and
infinities of 2007 ``numeric`` columns, sizes past 2^63, NULLs, odd text); then the same through a real
PostgreSQL, in the 2007-upgraded schema whose ``numeric`` and unbounded ``varchar`` columns accept
the most.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rrd.names import clean_part
from slurpers.api import CollectContext
from slurpers.dcache import DCacheSettings, DCacheSlurper
from slurpers.dcache_classify import TABLES, Tally, add_row
from tests.dcache.conftest import BillingDB

numbers = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.sampled_from([Decimal("NaN"), Decimal("-0"), Decimal("1.5"), Decimal("1E+30"), -35, 2**32 + 1]),
)
samples = st.sampled_from(
    ["<unknown>", "<undefined>", "pool:dcpool12_3@dcpool12Domain", "GFtp-2.0", "", "/atlas/Role=production",
     "GFTP-dcdoor01-AAYlasmRVVA@gridftp-dcdoor01Domain", "a.b.c@enstore", ":@osm", "/", "//x", "-1.0"]
)  # fmt: skip
texts = st.one_of(st.none(), st.text(max_size=40), samples)
rows = st.fixed_dictionaries(
    {
        "rowhash": st.integers(0, 5),
        "isnew": st.one_of(st.none(), st.booleans()),
        "p2p": st.one_of(st.none(), st.booleans()),
        "filecached": st.one_of(st.none(), st.booleans()),
        "initiator": texts,
        "protocol": texts,
        "storageclass": texts,
        "fqan": texts,
        "cellname": texts,
        "action": st.one_of(texts, st.sampled_from(["request", "remove", "store", "restore", "check"])),
        "transfersize": numbers,
        "connectiontime": numbers,
        "errorcode": numbers,
        "fullsize": numbers,
        "queuedtime": numbers,
        "datestamp": st.one_of(st.none(), st.datetimes(min_value=datetime(2000, 1, 1))),
    }
)


@settings(max_examples=300, deadline=None)
@given(table=st.sampled_from(TABLES), batch=st.lists(rows, max_size=8))
def test_classification_never_crashes_and_names_are_archivable(
    table: str, batch: list[dict[str, Any]]
) -> None:
    """Any values: no exception, clean names, non-negative integer sums, negative sizes counted."""
    from zoneinfo import ZoneInfo

    tally = Tally()
    for row in batch:
        add_row(table, row, tally, ZoneInfo("Europe/Berlin"))
    assert tally.unique == len({r["rowhash"] for r in batch}) and tally.raw == len(batch)
    for name, value in tally.sums.items():
        assert clean_part(name) == name and isinstance(value, int) and value >= 0, (name, value)
    if table == "billinginfo":
        first: dict[int, dict[str, Any]] = {}
        for r in batch:  # the first copy of each row is the one counted
            first.setdefault(r["rowhash"], r)
        expected = sum(1 for r in first.values() if _whole(r["transfersize"]) and r["transfersize"] < 0)
        assert tally.sums["anomaly.negative_size"] == expected


def _whole(value: object) -> bool:
    """An integer, or an integral finite Decimal (what a size column can validly hold)."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return False
    return not isinstance(value, Decimal) or (value.is_finite() and value == value.to_integral_value())


MOVER = (
    "INSERT INTO billing_upgraded.billinginfo (datestamp, cellname, action, transaction, transfersize, isnew,"
    " connectiontime, errorcode, errormessage, protocol, initiator, storageclass)"
    " VALUES (%s, %s, 'transfer', %s, %s, %s, %s, %s, '', %s, %s, %s)"
)
db_numbers = st.one_of(
    st.none(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([Decimal("NaN"), Decimal("1.5"), Decimal("-35"), Decimal("1E+40")]),
)
db_texts = st.one_of(
    st.none(), st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30), samples
)


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batch=st.lists(
        st.tuples(st.integers(0, 3599), db_texts, db_texts, db_numbers, st.one_of(st.none(), st.booleans()),
                  db_numbers, db_numbers, db_texts, db_texts, db_texts),
        min_size=1, max_size=12,
    )
)  # fmt: skip
def test_any_row_in_a_real_database_is_counted_or_flagged(
    billing: BillingDB, batch: list[tuple[Any, ...]]
) -> None:
    """Rows of any content in numeric/varchar columns: the slurper runs, counts every row, flags the odd."""
    base = datetime(2024, 10, 27, 2, 0)  # local wall time, Europe/Berlin: the hour that happens twice
    billing.execute("TRUNCATE billing_upgraded.billinginfo")
    billing.executemany(MOVER, [(base + timedelta(seconds=r[0]), *r[1:]) for r in batch])
    slurper = DCacheSlurper(
        "dc",
        DCacheSettings(
            url=billing.url, schema="billing_upgraded", local_timezone="Europe/Berlin", backfill="3h"
        ),
        interval=60,
        timeout=60,
    )
    now, state, totals = 1729990800.0 + 3 * 3600, {}, {}  # 04:00Z: the whole night has closed
    try:
        for i in range(4):
            ctx = CollectContext(now=now + 60 * i, timeout=60, state=state)
            for r in slurper.collect(ctx):
                if isinstance(r.value, int):
                    totals[r.metric] = totals.get(r.metric, 0) + r.value
            assert ctx.new_state is not None
            state = ctx.new_state
    finally:
        slurper.close()
    ((distinct, negative, odd),) = billing.query(
        "SELECT count(*), count(*) FILTER (WHERE transfersize < 0),"
        " count(*) FILTER (WHERE transfersize = 'NaN' OR transfersize <> trunc(transfersize)"
        " OR connectiontime = 'NaN' OR connectiontime <> trunc(connectiontime)"
        " OR errorcode = 'NaN' OR errorcode <> trunc(errorcode))"
        " FROM (SELECT DISTINCT * FROM billing_upgraded.billinginfo) b"
    )
    assert totals["slurper.rows"] == distinct
    assert (
        totals["read.transfers"]
        + totals["read.failed"]
        + totals["write.transfers"]
        + totals["write.failed"]
        + totals["p2p.transfers"]
        + totals["p2p.failed"]
        == distinct
    )
    assert totals["anomaly.negative_size"] == negative - _negative_fractions(billing)
    assert totals["anomaly.bad_number"] == odd


def _negative_fractions(db: BillingDB) -> int:
    """Negative sizes that are also fractions: a bad number, not counted as a negative size."""
    ((n,),) = db.query(
        "SELECT count(*) FROM (SELECT DISTINCT * FROM billing_upgraded.billinginfo) b"
        " WHERE transfersize < 0 AND transfersize <> trunc(transfersize)"
    )
    return int(n)
