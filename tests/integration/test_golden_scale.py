"""Golden records resolved in many small parts (as at city scale) come out as in one part."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.conftest import NOW
from tests.integration import test_golden as golden_tests
from tests.integration.test_golden import CID, scenario

from gridgov.ingest.models import SourceRecord
from gridgov.registry import golden
from gridgov.registry.models import Person


@pytest.fixture
def tiny_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    # One record per part and two per streamed chunk: every key's records must still meet.
    monkeypatch.setattr(golden, "PART_RECORDS", 1)
    monkeypatch.setattr(golden, "CHUNK", 2)
    monkeypatch.setattr(golden, "GOLDEN_SLICE", 1)  # the matcher's golden side a person at a time


@pytest.mark.usefixtures("tiny_parts")
def test_persons_in_tiny_parts(session: Session) -> None:
    golden_tests.test_persons_follow_one_datum_one_source(session)


@pytest.mark.usefixtures("tiny_parts")
def test_rerun_in_tiny_parts(session: Session) -> None:
    golden_tests.test_rerunning_keeps_ids_and_opens_no_second_task(session)


@pytest.mark.usefixtures("tiny_parts")
def test_matching_in_tiny_parts(session: Session) -> None:
    golden_tests.test_records_without_valid_ids_are_matched_probabilistically(session)


@pytest.mark.usefixtures("tiny_parts")
def test_organizations_in_tiny_parts(session: Session) -> None:
    golden_tests.test_organizations_conflicting_authorities_and_links(session)


@pytest.mark.usefixtures("tiny_parts")
def test_provenance_shape(session: Session) -> None:
    scenario(session)
    golden.resolve_persons(session, now=NOW)
    person = session.scalars(select(Person).where(Person.citizen_id == CID)).one()
    ga1 = session.scalars(select(SourceRecord.id).where(SourceRecord.record_key == "GA1")).one()
    assert person.provenance["name"] == {"source": "GA", "record": ga1, "as_of": "2020-06-01"}
    assert set(person.provenance) >= {"citizen_id", "name", "phone", "birth_date"}
    for entry in person.provenance.values():
        assert set(entry) == {"source", "record", "as_of"}
        assert isinstance(entry["record"], int)
