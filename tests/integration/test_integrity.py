"""References written in bulk without a foreign key are checked set-wise (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

import gridgov.db.models  # noqa: F401 (every table in the metadata)
from gridgov.db.base import Base
from gridgov.registry.integrity import REFERENCES, DanglingReference, check_references, dangling
from gridgov.registry.models import Organization, Person, PersonOrg

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)
ALL = sorted({t for t, _, _ in REFERENCES})


def test_the_checked_references_are_exactly_those_without_a_foreign_key() -> None:
    for table, column, target in REFERENCES:
        col = Base.metadata.tables[table].c[column]
        assert not col.foreign_keys, f"{table}.{column}"
        assert target in Base.metadata.tables
    # The golden tables' other references to each other keep their keys (tags, tasks' users).
    tags = Base.metadata.tables["key_person_tags"].c["person_id"]
    assert {fk.column.table.name for fk in tags.foreign_keys} == {"persons"}


def test_a_dangling_reference_fails_the_check_naming_table_column_and_ids(
    session: Session,
) -> None:
    check_references(session, ALL)  # the seeded city: nothing dangles
    person = Person(name="张三", room_id=987_654_321, updated_at=NOW)
    org = Organization(name="某公司", updated_at=NOW)
    session.add_all([person, org])
    session.flush()
    assert dangling(session, "persons", "room_id", "rooms") == [987_654_321]
    with pytest.raises(DanglingReference) as err:
        check_references(session, ["persons"])
    assert "persons.room_id" in str(err.value)
    assert "987654321" in str(err.value)
    check_references(session, ["person_orgs"])  # only the tables asked for are checked

    session.add(PersonOrg(person_id=person.id, org_id=org.id + 1000, relation="employee",
                          source="RS"))  # fmt: skip
    session.flush()
    with pytest.raises(DanglingReference) as err:
        check_references(session, ["person_orgs"])
    assert "person_orgs.org_id" in str(err.value)
    assert "person_orgs.person_id" not in str(err.value)  # the person exists


def test_unknown_references_are_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown reference"):
        dangling(session, "persons", "name", "rooms")
