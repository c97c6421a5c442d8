"""Source records streamed as Polars frames agree with the ORM's view of them, on both databases."""

from __future__ import annotations

from sqlalchemy import select
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
