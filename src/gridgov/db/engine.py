"""Engine and session factories; the only module with dialect-specific connection setup."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from gridgov.config import Settings


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, cache_mib: int = 2) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin, so that SAVEPOINTs
    # and rollbacks behave as on PostgreSQL (SQLAlchemy's documented pysqlite recipe).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    # SQLite's own default is 2 MiB: at city scale nearly every index page an insert touches
    # would be read from the file again (the cache grows only as pages are used).
    cur.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024:d}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front (readers are not blocked under WAL). A deferred
    # transaction that reads and then writes fails at once with "database is locked" when another
    # connection wrote in between, without waiting for the busy timeout.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite make the folder and turn on WAL, foreign keys, busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        cache_mib = Settings().sqlite_cache_mib
        event.listen(
            engine, "connect", lambda conn, record: _sqlite_pragmas(conn, record, cache_mib)
        )
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Unit of work for the CLI and jobs: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
