"""Bulk writes that differ by dialect (the only place besides engine setup that knows them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause


def insert_new(
    session: Session,
    table: Table | FromClause,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
) -> int:
    """Insert rows, skipping those that collide on the unique `conflict` columns; count the new.

    One multi-row statement per batch (SQLAlchemy's insertmanyvalues), with RETURNING so the
    count is exact on both databases.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    target = table if isinstance(table, Table) else cast(Table, table)
    stmt = insert(target).on_conflict_do_nothing(index_elements=list(conflict))
    pk = next(iter(target.primary_key.columns))
    result = session.execute(stmt.returning(pk), list(rows))
    return len(result.all())
