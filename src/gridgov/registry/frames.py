"""Source records as Polars frames, streamed from the database in chunks (no ORM objects).

Resolution at city scale reads millions of source records; building a `SourceRecord` object and
a Python dict per row costs more than the rest of the work together. Here rows come straight
from the driver: PostgreSQL sends CSV through `COPY (SELECT …) TO STDOUT`, SQLite's cursor is read
in slices; each chunk becomes one frame, and the JSON `values` are decoded by Polars into just
the fields asked for, as strings (numbers too, in their JSON spelling), nulls where absent.

Frame columns: id, source, dataset, kind, as_of, loaded_at (UTC datetimes), grid_code, flags
(list of "field:code" strings), then one column per requested field.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from typing import TypeVar, cast

import polars as pl
from sqlalchemy import Connection
from sqlalchemy.orm import Session

CHUNK = 200_000
T = TypeVar("T")
META = ("id", "source", "dataset", "kind", "as_of", "loaded_at", "grid_code", "values", "flags")
_RAW_SCHEMA = {
    "id": pl.Int64(),
    "source": pl.String(),
    "dataset": pl.String(),
    "kind": pl.String(),
    "as_of": pl.String(),
    "loaded_at": pl.String(),
    "grid_code": pl.String(),
    "values": pl.String(),
    "flags": pl.String(),
}
_UTC = pl.Datetime("us", "UTC")


def _kinds_sql(kinds: Sequence[str]) -> str:
    for k in kinds:  # kinds come from code, never from input; checked all the same
        if not k.isidentifier():
            raise ValueError(f"bad record kind {k!r}")
    return ", ".join(f"'{k}'" for k in kinds)


def _raw_chunks(conn: Connection, kinds: Sequence[str], chunk: int) -> Iterator[pl.DataFrame]:
    where = f"kind IN ({_kinds_sql(kinds)})"
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None  # noqa: S101 (an open psycopg connection)
        sql = (
            "COPY (SELECT id, source, dataset, kind, as_of, loaded_at, grid_code, "  # noqa: S608
            f"values::text, flags::text FROM source_records WHERE {where} ORDER BY id) "
            "TO STDOUT (FORMAT csv)"
        )
        buf = io.BytesIO()
        lines = 0
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for data in copy:
                buf.write(data)
                # One COPY row is one line: JSON text has no raw newlines (they are escaped).
                lines += bytes(data).count(b"\n")
                if lines >= chunk:
                    yield _read_csv(buf)
                    buf, lines = io.BytesIO(), 0
        if buf.tell():
            yield _read_csv(buf)
        return
    raw_conn = conn.connection.driver_connection
    assert raw_conn is not None  # noqa: S101 (an open sqlite3 connection)
    cur = raw_conn.cursor()
    try:
        cur.execute(
            'SELECT id, source, dataset, kind, as_of, loaded_at, grid_code, "values", flags '  # noqa: S608
            f"FROM source_records WHERE {where} ORDER BY id"
        )
        while rows := cur.fetchmany(chunk):
            yield pl.DataFrame(rows, schema=_RAW_SCHEMA, orient="row")
    finally:
        cur.close()


def _read_csv(buf: io.BytesIO) -> pl.DataFrame:
    buf.seek(0)
    return pl.read_csv(buf, has_header=False, new_columns=list(META), schema=_RAW_SCHEMA)


def _timestamp(col: str) -> pl.Expr:
    # PostgreSQL: "2024-05-01 00:00:00+00"; SQLite (SQLAlchemy): "2024-05-01 00:00:00.000000".
    text = pl.col(col).str.replace(r"\+00(:00)?$", "").str.replace("T", " ")
    return text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC", strict=False).alias(col)


def source_frames(
    session: Session, kinds: Sequence[str], fields: Sequence[str], *, chunk: int = CHUNK
) -> Generator[pl.DataFrame, None, None]:
    """The source records of the given kinds, in id order, one frame per chunk.

    The next chunk is read and decoded by a thread of its own while the caller works on this
    one (the database sends, Polars decodes, the caller spills: on two cores these overlap
    instead of taking turns). The session's connection is busy until the frames are all read or
    the iterator is closed: the caller must not use the session in between, and should close the
    iterator when it stops early or fails (`with closing(source_frames(…)) as frames:`); else the
    reading thread keeps the connection until the iterator is collected."""
    dtype = pl.Struct({f: pl.String() for f in fields})
    conn = session.connection()  # here: the producer thread only uses the driver's connection

    def decoded() -> Generator[pl.DataFrame, None, None]:
        for raw in _raw_chunks(conn, kinds, chunk):
            if raw.is_empty():
                continue
            values = (
                raw.get_column("values").str.json_decode(dtype).struct.unnest() if fields else None
            )
            frame = raw.select(
                "id",
                "source",
                "dataset",
                "kind",
                _timestamp("as_of"),
                _timestamp("loaded_at"),
                "grid_code",
                pl.col("flags").str.json_decode(pl.List(pl.String())),
            )
            yield frame.hstack(values) if values is not None else frame

    # An in-memory SQLite connection may be used only by the thread that made it.
    database = conn.engine.url.database or ""
    in_memory = conn.dialect.name == "sqlite" and (
        database in ("", ":memory:") or "memory" in database
    )
    return decoded() if in_memory else prefetched(decoded())


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def prefetched(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """`items`, produced by a thread of their own up to `depth` ahead of the consumer. An error
    in the producer is raised in the consumer; closing the iterator early stops the producer
    and closes `items` (in the producer's thread, which is the one that used it)."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def consume() -> Generator[T, None, None]:
        worker = threading.Thread(target=produce, name="prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield cast(T, item)
        finally:
            stop.set()
            worker.join()

    return consume()


def source_frame(session: Session, kinds: Sequence[str], fields: Sequence[str]) -> pl.DataFrame:
    """All of them in one frame (for modest sizes; stream `source_frames` at city scale)."""
    with closing(source_frames(session, kinds, fields)) as stream:
        frames = list(stream)
    if not frames:
        empty = {c: t for c, t in _RAW_SCHEMA.items() if c != "values"}
        schema = pl.Schema(
            {**empty, "as_of": _UTC, "loaded_at": _UTC, "flags": pl.List(pl.String())}
            | {f: pl.String() for f in fields}
        )
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="vertical")


def bad_fields(flags: pl.Expr) -> pl.Expr:
    """The field names of a flags list ("citizen_id:checksum" → "citizen_id")."""
    return flags.list.eval(pl.element().str.split(":").list.first())
