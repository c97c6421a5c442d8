"""Bulk UPDATE from a Polars frame: rows loaded into a temporary table, then one UPDATE … FROM.

Per-row UPDATE executemany costs a statement per row; at city scale (millions of golden records)
that dominates resolution. Here the frame goes into a temporary table in one load (PostgreSQL:
COPY of Polars CSV; SQLite: one executemany into a TEMP table) and one `UPDATE … FROM` joins it on
the key (SQLite ≥ 3.33 has UPDATE FROM).

Frame columns are named after the table's. Values: strings, integers, floats, booleans, dates,
UTC datetimes, and JSON columns as ready JSON text. A column named in `keep_null` leaves the stored
value alone where the frame's value is null (a partial update row by row).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import polars as pl
from sqlalchemy import Table
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause


def update_from_frame(
    session: Session,
    table: Table | FromClause,
    frame: pl.DataFrame,
    *,
    key: str = "id",
    keep_null: Sequence[str] = (),
) -> int:
    """Set the frame's columns on the rows whose `key` matches; return the number of rows updated.

    The key must be unique in the frame.
    """
    if frame.is_empty():
        return 0
    target = table if isinstance(table, Table) else cast(Table, table)
    columns = frame.columns
    # Identifiers below come from the model, never from input: checked against it all the same.
    unknown = [c for c in (*columns, key, *keep_null) if c not in target.c]
    if unknown:
        raise ValueError(f"{target.name} has no columns {unknown}")
    if key not in columns:
        raise ValueError(f"the frame has no key column {key!r}")
    sets = [c for c in columns if c != key]
    if not sets:
        return 0
    assignments = ", ".join(
        f'"{c}" = COALESCE(_u."{c}", "{target.name}"."{c}")'
        if c in keep_null
        else f'"{c}" = _u."{c}"'
        for c in sets
    )
    cols = ", ".join(f'"{c}"' for c in columns)
    tmp = f"_upd_{target.name}_{zlib.crc32(cols.encode()):08x}"
    stamps = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    conn = session.connection()
    session.flush()
    if conn.dialect.name == "postgresql":
        pg = conn.connection.driver_connection
        assert pg is not None  # noqa: S101 (an open psycopg connection)
        text = frame.with_columns(
            pl.col(c).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00")
            for c in stamps
        )
        buf = io.BytesIO()
        text.write_csv(buf, include_header=False)
        with pg.cursor() as cur:
            cur.execute(
                f'CREATE TEMP TABLE IF NOT EXISTS "{tmp}" ON COMMIT DROP AS '  # noqa: S608
                f'SELECT {cols} FROM "{target.name}" WITH NO DATA'
            )
            cur.execute(f'TRUNCATE "{tmp}"')
            with cur.copy(f'COPY "{tmp}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
                copy.write(buf.getvalue())
            cur.execute(f'ANALYZE "{tmp}"')
            cur.execute(
                f'UPDATE "{target.name}" SET {assignments} FROM "{tmp}" AS _u '  # noqa: S608
                f'WHERE "{target.name}"."{key}" = _u."{key}"'
            )
            updated = int(cur.rowcount)
            cur.execute(f'TRUNCATE "{tmp}"')
        return updated
    # SQLite: the forms SQLAlchemy stores (dates and times as text, booleans as 0/1).
    text = frame.with_columns(
        *(
            pl.col(c).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
            for c in stamps
        ),
        *(pl.col(c).dt.strftime("%Y-%m-%d") for c, t in frame.schema.items() if t == pl.Date),
        *(pl.col(c).cast(pl.Int8) for c, t in frame.schema.items() if t == pl.Boolean),
    )
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101 (an open sqlite3 connection)
    cur = raw.cursor()
    try:
        cur.execute(f'DROP TABLE IF EXISTS temp."{tmp}"')
        cur.execute(f'CREATE TEMP TABLE "{tmp}" ({cols}, PRIMARY KEY ("{key}"))')
        marks = ", ".join("?" for _ in columns)
        for part in text.iter_slices(100_000):
            cur.executemany(
                f'INSERT INTO temp."{tmp}" ({cols}) VALUES ({marks})',  # noqa: S608
                part.rows(),
            )
        before = raw.total_changes
        cur.execute(
            f'UPDATE "{target.name}" SET {assignments} FROM temp."{tmp}" AS _u '  # noqa: S608
            f'WHERE "{target.name}"."{key}" = _u."{key}"'
        )
        updated = int(raw.total_changes - before)
        cur.execute(f'DROP TABLE temp."{tmp}"')
        return updated
    finally:
        cur.close()


@contextmanager
def write_cache(session: Session, mib: int = 256) -> Iterator[None]:
    """A larger SQLite page cache for this connection while bulk writes run (the default 2 MB
    makes each index update of a city-sized table a read from disk); restored afterwards.
    Nothing on PostgreSQL, whose buffers are the server's."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101 (an open sqlite3 connection)
    before = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = {-int(mib) * 1024}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {int(before)}")


# Memory for each index built again after a bulk load (PostgreSQL; SET LOCAL, this transaction).
INDEX_BUILD_MEMORY = "256MB"


@contextmanager
def deferred_indexes(session: Session, table: str, adding: int) -> Iterator[list[str]]:
    """Build a table's secondary indexes after a bulk load instead of row by row during it.

    When the load at least doubles the table (`adding` rows or more into one holding fewer), its
    plain indexes (neither the primary key nor a unique one: those detect collisions and serve
    ON CONFLICT) are dropped on entry and created again, from their stored definitions, on exit.
    A sorted build of the whole column is a fraction of the cost of millions of inserts at random
    places in the index (at city scale, 5 million persons by name and grid). Both happen in the
    caller's transaction: a failure rolls the drop back with everything else; meanwhile other
    sessions wait to read the table (PostgreSQL) or the database (SQLite) as they would for the
    load itself. Yields the names of the indexes deferred (none when the table is too full)."""
    if not table.isidentifier():  # names come from code; checked all the same
        raise ValueError(f"bad table name {table!r}")
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        ).all()
    else:
        rows = conn.exec_driver_sql(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE t.relname = %(t)s AND n.nspname = current_schema() "
            "AND NOT x.indisunique AND NOT x.indisprimary",
            {"t": table},
        ).all()
    plain = [(str(name), str(sql)) for name, sql in rows if "UNIQUE" not in str(sql).upper()]
    held = int(conn.exec_driver_sql(f'SELECT COUNT(*) FROM "{table}"').scalar() or 0)  # noqa: S608
    if not plain or adding <= held:
        yield []
        return
    for name, _sql in plain:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield [name for name, _sql in plain]
    if not sqlite:
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    for _name, sql in plain:
        conn.exec_driver_sql(sql)
