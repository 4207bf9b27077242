"""The rexmon database: one SQLAlchemy ``Base`` for downtimes and alarm state, engines, migrations.

SQLite (the default, a file under ``var/``) runs in WAL mode with a busy timeout so that the collector,
the web site and the CLI can write concurrently. Every PostgreSQL session gets a ``lock_timeout`` and a
``statement_timeout`` and every connection attempt a ``connect_timeout``: a table locked by someone else
or a server that does not answer is an error after seconds (the collector says so once and keeps
archiving), never a thread stuck for as long as the lock is held. The schema is owned by
Alembic (``downtime/migrations``): :func:`upgrade` brings any database to the newest revision.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock key held while migrating (any constant unique to rexmon)
MIGRATION_LOCK = 0x7265786D6F6E
#: seconds a statement waits for a lock (PostgreSQL lock_timeout, SQLite busy_timeout)
LOCK_TIMEOUT = 10
#: seconds a PostgreSQL statement may run at most
STATEMENT_TIMEOUT = 60
#: seconds to establish a PostgreSQL connection
CONNECT_TIMEOUT = 10


class Base(DeclarativeBase):
    """Declarative base of every table in the rexmon database."""


class DatabaseError(Exception):
    """The database cannot be opened or migrated; the message names the URL (password masked)."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout, PostgreSQL lock,
    statement and connect timeouts (``LOCK_TIMEOUT``, ``STATEMENT_TIMEOUT``, ``CONNECT_TIMEOUT``)."""
    try:
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": LOCK_TIMEOUT})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if url.startswith("postgresql"):
            engine = create_engine(url, pool_pre_ping=True, connect_args=_postgres_args(url))
            event.listen(engine, "connect", _postgres_timeouts)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # bad URL, missing driver
        raise DatabaseError(f"cannot open database {mask(url)}: {exc}") from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT * 1000}")  # first: WAL itself may wait for a lock
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _postgres_args(url: str) -> dict[str, Any]:
    """connect_timeout for the drivers that take it as a keyword (psycopg2 and psycopg 3: libpq's)."""
    from sqlalchemy.engine import make_url

    driver = make_url(url).get_driver_name()
    return {"connect_timeout": CONNECT_TIMEOUT} if driver in ("psycopg2", "psycopg") else {}


def _postgres_timeouts(dbapi_conn: Any, _record: Any) -> None:
    """Per session: wait for a lock at most LOCK_TIMEOUT s, run a statement at most STATEMENT_TIMEOUT s."""
    cur = dbapi_conn.cursor()
    cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}s'")
    cur.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}s'")
    cur.close()
    dbapi_conn.commit()  # psycopg opens a transaction for the SETs; keep them out of the first one


#: the schemes of database URLs (SQLAlchemy dialects, with or without a +driver)
_DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql"})


def mask(url: str) -> str:
    """The one URL masker: a URL fit for logs and pages. A database URL with its password as ***; a
    notification URL as apprise shows it with privacy on (tokens in the path hidden too); a URL neither
    can read keeps only its scheme, so masking never fails open."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    try:
        if scheme.split("+", 1)[0].lower() in _DATABASE_SCHEMES:
            from sqlalchemy.engine import make_url

            return make_url(url).render_as_string(hide_password=True)
        import apprise

        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin:
            return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
    except Exception as exc:  # a URL that cannot be parsed: say so, never show it
        log.debug("cannot mask a URL of scheme %r: %s", scheme, type(exc).__name__)
    return f"{scheme}://***" if scheme else "<unreadable URL>"


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(target: str | Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent; safe to run at every start)."""
    from alembic import command

    engine = make_engine(target) if isinstance(target, str) else target
    cfg = alembic_config(engine)
    try:
        with engine.begin() as conn:
            _lock_for_migration(conn)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except Exception as exc:
        raise DatabaseError(f"cannot migrate database {mask(str(engine.url))}: {exc}") from exc
    finally:
        if isinstance(target, str):
            engine.dispose()


def _lock_for_migration(conn: Connection) -> None:
    """Serialise concurrent first uses: the second process waits, then finds the schema at head."""
    if conn.dialect.name == "sqlite":
        # pysqlite runs DDL outside a transaction; take the write lock before Alembic reads its version
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        # a second process waits for the first one's whole migration, however long: no timeouts here
        conn.execute(text("SET LOCAL lock_timeout = 0"))
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
        return rev


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
