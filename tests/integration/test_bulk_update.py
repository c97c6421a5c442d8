"""Bulk UPDATE from a frame: types as the ORM stores them, partial rows, both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.conftest import NOW

from gridgov.db.bulk_update import update_from_frame, write_cache
from gridgov.registry.models import Organization, Person


def _people(session: Session, n: int) -> list[Person]:
    people = [
        Person(name=f"人{i}", phone=f"1380000000{i}", grid_code=None, updated_at=NOW)
        for i in range(n)
    ]
    session.add_all(people)
    session.flush()
    return people


def test_update_sets_typed_columns_and_keeps_null_ones(session: Session) -> None:
    a, b, c = _people(session, 3)
    later = datetime(2027, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "id": [a.id, b.id],
            "name": ["张伟", "李娜"],
            "birth_date": [date(1949, 12, 31), None],
            "phone": [None, "13900000002"],
            "provenance": ['{"name": {"source": "GA", "record": 1, "as_of": null}}', "{}"],
            "sources": [3, 1],
            "updated_at": [later, later],
        },
        schema_overrides={"updated_at": pl.Datetime("us", "UTC")},
    )
    updated = update_from_frame(session, Person.__table__, frame, keep_null=("birth_date", "phone"))
    assert updated == 2
    session.expire_all()
    got = {
        p.id: p for p in session.scalars(select(Person).where(Person.id.in_([a.id, b.id, c.id])))
    }
    assert got[a.id].name == "张伟"
    assert got[a.id].birth_date == date(1949, 12, 31)
    assert got[a.id].phone == "13800000000"  # null in the frame: kept
    assert got[a.id].provenance == {"name": {"source": "GA", "record": 1, "as_of": None}}
    assert got[a.id].sources == 3
    assert got[a.id].updated_at == later
    assert got[b.id].birth_date is None
    assert got[b.id].phone == "13900000002"
    assert got[b.id].provenance == {}
    assert got[c.id].name == "人2"  # not in the frame: untouched
    assert got[c.id].updated_at == NOW


def test_update_booleans_and_unknown_keys(session: Session) -> None:
    org = Organization(credit_code="91330200MA2AAAAAAA", name="", updated_at=NOW)
    session.add(org)
    session.flush()
    frame = pl.DataFrame(
        {
            "id": [org.id, org.id + 1_000_000],
            "name": ["甬港化工", "无此单位"],
            "hazardous": [True, False],
        }
    )
    assert update_from_frame(session, Organization.__table__, frame) == 1
    # Twice in one transaction: the temporary table is reused.
    assert update_from_frame(session, Organization.__table__, frame.head(1)) == 1
    session.expire_all()
    got = session.get(Organization, org.id)
    assert got is not None
    assert got.name == "甬港化工"
    assert got.hazardous is True


def test_update_refuses_unknown_columns(session: Session) -> None:
    with pytest.raises(ValueError, match="no columns"):
        update_from_frame(session, Person.__table__, pl.DataFrame({"id": [1], "nope": ["x"]}))
    assert update_from_frame(session, Person.__table__, pl.DataFrame({"id": []})) == 0


def test_write_cache_is_restored(session: Session) -> None:
    raw = session.connection().connection.driver_connection
    sqlite = session.connection().dialect.name == "sqlite"
    before = raw.execute("PRAGMA cache_size").fetchone()[0] if sqlite else None
    with write_cache(session, mib=64):
        if sqlite:
            assert raw.execute("PRAGMA cache_size").fetchone()[0] == -64 * 1024
        _people(session, 1)  # writes work inside
    if sqlite:
        assert raw.execute("PRAGMA cache_size").fetchone()[0] == before


def _plain_indexes(session: Session, table: str) -> dict[str, str]:
    """The table's non-unique indexes and their definitions, as the database holds them."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        ).all()
    else:
        rows = conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %(t)s",
            {"t": table},
        ).all()
    return {str(n): str(d) for n, d in rows if "UNIQUE" not in str(d).upper()}


def _links(n: int, start: int = 1) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source_record_id": list(range(start, start + n)),
            "entity": ["person"] * n,
            "entity_id": [i % 7 for i in range(n)],
            "method": ["id"] * n,
            "score": [None] * n,
        },
        schema_overrides={"score": pl.Float64()},
    )


def test_deferred_indexes_are_built_again_after_a_first_load(session: Session) -> None:
    from gridgov.db.bulk import copy_frame
    from gridgov.db.bulk_update import deferred_indexes
    from gridgov.registry.models import RecordLink

    before = _plain_indexes(session, "record_links")
    assert "ix_record_links_entity" in before
    with deferred_indexes(session, "record_links", 50) as deferred:
        assert deferred == ["ix_record_links_entity"]
        assert _plain_indexes(session, "record_links") == {}  # dropped while loading
        copy_frame(session, RecordLink.__table__, _links(50), conflict=("source_record_id",))
    assert _plain_indexes(session, "record_links") == before  # the same definitions again
    found = session.execute(
        select(RecordLink.source_record_id).where(
            RecordLink.entity == "person", RecordLink.entity_id == 3
        )
    ).all()
    assert sorted(r for (r,) in found) == [4, 11, 18, 25, 32, 39, 46]
    # Now the table holds 50: a load of no more than that keeps the indexes where they are.
    with deferred_indexes(session, "record_links", 50) as deferred:
        assert deferred == []
        assert _plain_indexes(session, "record_links") == before
        copy_frame(session, RecordLink.__table__, _links(10, 51), conflict=("source_record_id",))
    assert _plain_indexes(session, "record_links") == before


def test_deferred_indexes_come_back_when_the_load_fails(session: Session) -> None:
    from gridgov.db.bulk_update import deferred_indexes

    before = _plain_indexes(session, "record_links")
    nested = session.begin_nested()
    with (
        pytest.raises(RuntimeError, match="load failed"),
        deferred_indexes(session, "record_links", 1_000),
    ):
        assert _plain_indexes(session, "record_links") == {}
        raise RuntimeError("load failed")
    nested.rollback()  # as the step's transaction is rolled back when it fails
    assert _plain_indexes(session, "record_links") == before


def test_deferred_indexes_refuse_a_bad_table_name(session: Session) -> None:
    from gridgov.db.bulk_update import deferred_indexes

    with (
        pytest.raises(ValueError, match="bad table name"),
        deferred_indexes(session, "persons; DROP TABLE persons", 1),
    ):
        pass
