"""A real dCache billing database: PostgreSQL 15 (tests/fixtures/postgres.py) with dCache's own DDL.

Every test gets a fresh database holding both variants: schema ``public`` as a fresh dCache creates it
(timestamptz, bigint) and schema ``billing_upgraded`` as a 2007 database after every upgrade (naive
local time, numeric), both loaded unchanged from tests/data/dcache/.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fixtures.postgres import PostgresServer, _bin

DATA = Path(__file__).resolve().parent.parent / "data" / "dcache"


@dataclass
class BillingDB:
    server: PostgresServer
    database: str

    @property
    def url(self) -> str:
        """What a user writes in ``url``: a plain libpq URL."""
        return f"postgresql://{self.server.user}@127.0.0.1:{self.server.port}/{self.database}"

    def script(self, path: Path) -> None:
        subprocess.run(
            [str(_bin("psql")), "-h", "127.0.0.1", "-p", str(self.server.port), "-U", self.server.user,
             "-d", self.database, "-v", "ON_ERROR_STOP=1", "-q", "-f", str(path)],
            check=True, stdin=subprocess.DEVNULL, capture_output=True,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )  # fmt: skip

    def execute(self, sql: str, params: Mapping[str, Any] | tuple[Any, ...] | None = None) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql, params)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with psycopg.connect(self.url) as conn, conn.cursor() as cur:
            cur.executemany(sql, rows)  # type: ignore[arg-type]

    def query(self, sql: str, params: Mapping[str, Any] | tuple[Any, ...] | None = None) -> list[Any]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]


@pytest.fixture
def billing(postgres_server: PostgresServer) -> Iterator[BillingDB]:
    db = BillingDB(postgres_server, postgres_server.create_database())
    db.script(DATA / "fresh.sql")
    db.script(DATA / "upgraded_2007.sql")
    yield db
