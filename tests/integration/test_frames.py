"""Source records streamed as Polars frames agree with the ORM's view of them, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.integration.test_golden import add, at

from gridgov.ingest.models import SourceRecord
from gridgov.registry.frames import bad_fields, source_frame, source_frames


def test_frames_match_the_orm(session: Session) -> None:
    add(session, "GA", "hukou", "person", "F1", at(2020),
        {"citizen_id": "X1", "name": "王芳", "area": 1.5}, flags=["citizen_id:checksum"])  # fmt: skip
    add(session, "WG", "checks", "check", "F2", at(2024), {"name": '引号"与\\反斜杠'}, grid="g1")
    add(session, "ZJ", "rooms", "room", "F3", at(2021), {"name": "不要"})
    session.flush()
    frame = source_frame(session, ("person", "check"), ("name", "citizen_id", "area", "phone"))
    orm = session.scalars(
        select(SourceRecord)
        .where(SourceRecord.kind.in_(("person", "check")))
        .order_by(SourceRecord.id)
    ).all()
    assert frame.height == len(orm) >= 2
    assert frame["id"].to_list() == [r.id for r in orm]
    for row, rec in zip(frame.iter_rows(named=True), orm, strict=True):
        assert row["name"] == rec.values.get("name")
        assert row["citizen_id"] == rec.values.get("citizen_id")
        assert row["phone"] is None
        assert row["as_of"] == rec.as_of
        assert row["loaded_at"] == rec.loaded_at
        assert row["grid_code"] == rec.grid_code
        assert row["flags"] == rec.flags
        assert row["kind"] == rec.kind and row["source"] == rec.source
    first = frame.filter(frame["name"] == "王芳")
    assert first["area"].to_list() == ["1.5"]
    assert first.select(bad_fields(first["flags"].implode().explode()).alias("b"))["b"][
        0
    ].to_list() == ["citizen_id"]
    # Chunked streaming gives the same rows.
    chunks = list(source_frames(session, ("person", "check"), ("name",), chunk=1))
    assert sum(c.height for c in chunks) == frame.height
    assert source_frame(session, ("nothing",), ("name",)).height == 0


def test_a_stream_closed_early_leaves_the_session_usable(session: Session) -> None:
    for i in range(6):
        add(session, "GA", "hukou", "person", f"E{i}", at(2020), {"name": f"人{i}"})
    session.flush()
    total = session.scalar(select(func.count()).select_from(SourceRecord))
    stream = source_frames(session, ("person",), ("name",), chunk=1)
    first = next(stream)
    assert first.height >= 1
    stream.close()  # the rest unread: the COPY (PostgreSQL) or the cursor (SQLite) is ended
    assert session.scalar(select(func.count()).select_from(SourceRecord)) == total
    # And a stream read to its end after it gives every record again.
    again = list(source_frames(session, ("person",), ("name",), chunk=2))
    assert sum(f.height for f in again) == session.scalar(
        select(func.count()).select_from(SourceRecord).where(SourceRecord.kind == "person")
    )


def test_a_bad_kind_is_refused_in_the_reading_thread_and_raised_here(session: Session) -> None:
    with pytest.raises(ValueError, match="bad record kind"):
        list(source_frames(session, ("person; DROP TABLE x",), ("name",)))


def test_an_in_memory_sqlite_database_is_read_in_its_own_thread() -> None:
    """An in-memory SQLite connection refuses other threads: its records are read without the
    reading thread, and all of them come."""
    from sqlalchemy.orm import sessionmaker

    from gridgov.db.engine import make_engine
    from gridgov.db.migrate import upgrade

    engine = make_engine("sqlite://")
    try:
        upgrade(engine)
        with sessionmaker(bind=engine)() as s:
            for i in range(3):
                add(s, "GA", "hukou", "person", f"M{i}", at(2020), {"name": f"人{i}"})
            s.flush()
            frames = list(source_frames(s, ("person",), ("name",), chunk=1))
            assert sorted(n for f in frames for n in f["name"].to_list()) == ["人0", "人1", "人2"]
    finally:
        engine.dispose()


def test_a_reader_that_fails_midway_leaves_the_session_usable(session: Session) -> None:
    """The steps read the stream under `closing`: when their own work on a frame fails, the
    reading thread lets the connection go at once, so the step's rollback is not left waiting."""
    import threading
    from contextlib import closing

    for i in range(6):
        add(session, "GA", "hukou", "person", f"X{i}", at(2020), {"name": f"人{i}"})
    session.flush()
    with (
        pytest.raises(RuntimeError, match="spill failed"),
        closing(source_frames(session, ("person",), ("name",), chunk=1)) as frames,
    ):
        for _frame in frames:
            raise RuntimeError("spill failed")
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())
    got: list[int] = []
    probe = threading.Thread(
        target=lambda: got.append(
            int(session.scalar(select(func.count()).select_from(SourceRecord)) or 0)
        ),
        daemon=True,
    )
    probe.start()
    probe.join(60)
    assert not probe.is_alive(), "the connection was still held by the reading thread"
    assert got and got[0] >= 6
