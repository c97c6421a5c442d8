"""New ids for a table's rows, reserved before the rows are written (so a frame can carry them)."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.registry.address_frames import query_frame


def reserve_ids(session: Session, model: Any, n: int, above: int = 0) -> pl.Series:
    """`n` new ids of `model`'s table, ascending, reserved without writing rows.

    PostgreSQL: from the table's sequence (each value handed out once, so no other writer can
    take them); SQLite: after the largest id, since the session's transaction holds the
    database's write lock (BEGIN IMMEDIATE), and after `above` (reserved, not yet written)."""
    table = model.__tablename__
    session.flush()
    conn = session.connection()
    if n <= 0:
        return pl.Series("key", [], pl.Int64())
    if conn.dialect.name == "postgresql":
        return (
            query_frame(
                session,
                # table comes from the model
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "  # noqa: S608
                f"FROM generate_series(1, {int(n)})",
                {"key": pl.Int64()},
            )
            .get_column("key")
            .sort()
        )
    top = conn.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one()  # noqa: S608
    first = max(int(top), above) + 1
    return pl.int_range(first, first + n, dtype=pl.Int64, eager=True).alias("key")
