"""One Alembic head; upgrade from empty on SQLite and PostgreSQL; models and migrations in sync."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from gridgov.db.engine import make_engine
from gridgov.db.migrate import alembic_config, current_revision, head_revision, upgrade
from gridgov.db.models import Base


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1


@pytest.mark.parametrize("backend", ["sqlite", "pg"])
def test_upgrade_from_empty_and_in_sync(backend: str, empty_db_url) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(empty_db_url(backend))
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"regions", "users", "user_roles", "auth_tokens", "grid_leaders", "meta"} <= tables
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        upgrade(engine)  # idempotent
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_sqlite_pragmas(empty_db_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(empty_db_url("sqlite"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -256 * 1024  # KiB
    engine.dispose()
    monkeypatch.setenv("GRIDGOV_SQLITE_CACHE_MIB", "32")
    engine = make_engine(empty_db_url("sqlite"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -32 * 1024
    engine.dispose()
