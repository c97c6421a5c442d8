"""Bulk writes that differ by dialect (the only place besides engine setup that knows them)."""

from __future__ import annotations

import functools
import io
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import polars as pl
from sqlalchemy import Connection, Table, bindparam
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


def copy_new(
    session: Session,
    table: Table | FromClause,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    conflict: Sequence[str],
    json_columns: Sequence[str] = (),
    raw: bool = False,
) -> int:
    """`insert_new` for bulk loads: rows as tuples, JSON columns as ready-made JSON text.

    PostgreSQL: COPY into a temporary table, then one INSERT … SELECT … ON CONFLICT DO NOTHING.
    SQLite: one executemany of INSERT … ON CONFLICT DO NOTHING. Values go through each column
    type's own bind processing (so timestamps are stored exactly as the ORM stores them), except
    the JSON columns, which are sent as the text given (`raw`: every value is sent as given,
    already in the database's form). Returns the number of new rows.
    """
    if not rows:
        return 0
    target = table if isinstance(table, Table) else cast(Table, table)
    # Identifiers below come from the model, never from input: checked against it all the same.
    unknown = [c for c in (*columns, *conflict) if c not in target.c]
    if unknown:
        raise ValueError(f"{target.name} has no columns {unknown}")
    conn = session.connection()
    dialect = conn.dialect
    cols = ", ".join(f'"{c}"' for c in columns)
    keys = ", ".join(f'"{c}"' for c in conflict)
    if dialect.name == "postgresql":
        pg = conn.connection.driver_connection
        assert pg is not None  # noqa: S101 (an open psycopg connection)
        with pg.cursor() as cur:
            tmp = _staging_table(cur, target.name, cols)
            with cur.copy(f'COPY "{tmp}" ({cols}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            return _insert_staged(cur, target.name, tmp, cols, keys)
    if raw:
        prepared = rows
    else:
        processors = [
            None if c in json_columns else target.c[c].type.bind_processor(dialect) for c in columns
        ]
        prepared = [
            tuple(
                p(v) if p is not None and v is not None else v
                for p, v in zip(processors, row, strict=True)
            )
            for row in rows
        ]
    marks = ", ".join("?" for _ in columns)
    raw_conn = conn.connection.driver_connection
    assert raw_conn is not None  # noqa: S101 (an open sqlite3 connection)
    cursor = raw_conn.cursor()
    try:
        before = raw_conn.total_changes
        on_conflict = f" ON CONFLICT ({keys}) DO NOTHING" if conflict else ""
        cursor.executemany(
            f'INSERT INTO "{target.name}" ({cols}) VALUES ({marks}){on_conflict}',  # noqa: S608
            prepared,
        )
        return int(raw_conn.total_changes - before)
    finally:
        cursor.close()


COPY_SLICE = 200_000  # rows of a frame sent at a time


def copy_frame(
    session: Session,
    table: Table | FromClause,
    frame: pl.DataFrame,
    *,
    conflict: Sequence[str],
    optimistic: bool = False,
) -> int:
    """`copy_new` for a Polars frame whose columns are named after the table's: JSON columns as
    ready JSON text, timestamps as UTC datetimes. Returns the number of new rows.

    PostgreSQL: each slice is written as CSV by Polars and sent in one COPY (no Python per row),
    into a temporary table, then moved by one INSERT … ON CONFLICT DO NOTHING. `optimistic`,
    for writes where collisions are rare (a first load): the slices are copied straight into
    the table under one savepoint, and only if a row collides are they rolled back and sent
    again the checked way; straight in, each row is written once, not twice. No `conflict`
    columns: the rows are new by construction (ids reserved, keys checked beforehand) and are
    copied straight in; a collision is a fault and raises.
    SQLite: one executemany per slice, timestamps in the text form SQLAlchemy stores. Slices
    keep a city-sized frame (millions of record links) from becoming millions of Python tuples
    or one huge buffer at once.
    """
    if frame.is_empty():
        return 0
    target = table if isinstance(table, Table) else cast(Table, table)
    columns = frame.columns
    stamps = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        text = frame.with_columns(
            pl.col(c).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00")
            for c in stamps
        )

        def slices() -> Iterator[bytes]:
            for part in text.iter_slices(COPY_SLICE):
                buf = io.BytesIO()
                part.write_csv(buf, include_header=False)
                yield buf.getvalue()

        if not conflict:
            return sum(_copy_plain(session, target, columns, data) for data in slices())
        if optimistic:
            direct = _copy_direct(session, target, columns, slices())
            if direct is not None:
                return direct
        return sum(_copy_csv(session, target, columns, conflict, data) for data in slices())
    text = frame.with_columns(
        *(
            pl.col(c).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
            for c in stamps
        ),
        *(pl.col(c).dt.strftime("%Y-%m-%d") for c, t in frame.schema.items() if t == pl.Date),
    )
    made = 0
    for part in text.iter_slices(COPY_SLICE):
        made += copy_new(session, target, columns, part.rows(), conflict=conflict, raw=True)
    return made


def _staging_table(cur: Any, name: str, cols: str) -> str:
    """A per-connection temporary table of just the loaded columns, emptied (PostgreSQL).

    No constraints or defaults: a serial default would draw ids for rows only passing through.
    """
    tmp = f"_copy_{name}_{zlib.crc32(cols.encode()):08x}"
    cur.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{tmp}" ON COMMIT DELETE ROWS AS '  # noqa: S608
        f'SELECT {cols} FROM "{name}" WITH NO DATA'
    )
    cur.execute(f'TRUNCATE "{tmp}"')
    return tmp


def _insert_staged(cur: Any, name: str, tmp: str, cols: str, keys: str) -> int:
    cur.execute(
        f'INSERT INTO "{name}" ({cols}) SELECT {cols} FROM "{tmp}" '  # noqa: S608
        f"ON CONFLICT ({keys}) DO NOTHING"
    )
    return int(cur.rowcount)


def _copy_csv(
    session: Session, target: Table, columns: Sequence[str], conflict: Sequence[str], data: bytes
) -> int:
    unknown = [c for c in (*columns, *conflict) if c not in target.c]
    if unknown:
        raise ValueError(f"{target.name} has no columns {unknown}")
    cols = ", ".join(f'"{c}"' for c in columns)
    keys = ", ".join(f'"{c}"' for c in conflict)
    raw = session.connection().connection.driver_connection
    assert raw is not None  # noqa: S101 (an open psycopg connection)
    with raw.cursor() as cur:
        tmp = _staging_table(cur, target.name, cols)
        with cur.copy(f'COPY "{tmp}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
            copy.write(data)
        return _insert_staged(cur, target.name, tmp, cols, keys)


def _copy_plain(session: Session, target: Table, columns: Sequence[str], data: bytes) -> int:
    """COPY straight into the table (a collision raises, and fails the transaction)."""
    cols = ", ".join(f'"{c}"' for c in columns)
    raw = session.connection().connection.driver_connection
    assert raw is not None  # noqa: S101 (an open psycopg connection)
    with raw.cursor() as cur:
        with cur.copy(f'COPY "{target.name}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
            copy.write(data)
        return int(cur.rowcount)


def _copy_direct(
    session: Session, target: Table, columns: Sequence[str], slices: Iterable[bytes]
) -> int | None:
    """COPY the slices straight into the table under one savepoint: the rows written, or None
    (nothing written) when a row collides with a unique key."""
    import psycopg

    raw = session.connection().connection.driver_connection
    assert raw is not None  # noqa: S101 (an open psycopg connection)
    with raw.cursor() as cur:
        cur.execute("SAVEPOINT gridgov_copy")
        try:
            made = sum(_copy_plain(session, target, columns, data) for data in slices)
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT gridgov_copy")
            return None
        cur.execute("RELEASE SAVEPOINT gridgov_copy")
        return made


def refresh_statistics(session: Session, *tables: str) -> None:
    """PostgreSQL: ANALYZE the tables after a bulk load, so the planner knows their size (before
    autovacuum gets to it, a freshly loaded table of millions of rows looks empty, and a read of
    it in key order becomes a sort of the whole table on disk instead of an index scan).
    Nothing on SQLite, whose planner goes by the indexes."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        if not table.isidentifier():  # names come from code; checked all the same
            raise ValueError(f"bad table name {table!r}")
        conn.exec_driver_sql(f'ANALYZE "{table}"')


def add_counts(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """Add each row's counters to the row with the same key, creating it if absent: one
    multi-row INSERT … ON CONFLICT (keys) DO UPDATE SET c = c + excluded.c (the keys must be
    distinct). Works on a Connection, so it can run inside a flush (the rollups' change hook).

    The SQL for n rows is compiled once and sent with exec_driver_sql: SQLAlchemy does not
    cache multi-row VALUES statements, and compiling one per event change cost more than
    running it. Values must be of types the driver takes as they are (str, int, date).
    """
    if not rows:
        return
    columns = tuple(rows[0])
    sql, order = _add_counts_sql(conn.dialect, table, tuple(keys), columns, len(rows))
    flat = [row[c] for row in rows for c in columns]
    if order is None:
        conn.exec_driver_sql(sql, {f"p{i}": v for i, v in enumerate(flat)})
    else:
        conn.exec_driver_sql(sql, tuple(flat[i] for i in order))


@functools.lru_cache(maxsize=256)
def _add_counts_sql(
    dialect: Any, table: Table, keys: tuple[str, ...], columns: tuple[str, ...], n: int
) -> tuple[str, tuple[int, ...] | None]:
    insert = pg_insert if dialect.name == "postgresql" else sqlite_insert
    width = len(columns)
    stmt = insert(table).values(
        [
            {
                c: bindparam(f"p{i * width + j}", type_=table.c[c].type)
                for j, c in enumerate(columns)
            }
            for i in range(n)
        ]
    )
    values = [c for c in columns if c not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: table.c[c] + stmt.excluded[c] for c in values}
    )
    compiled = stmt.compile(dialect=dialect)
    if compiled.positiontup is None:
        return str(compiled), None
    return str(compiled), tuple(int(name[1:]) for name in compiled.positiontup)
