"""Golden records: linked by identifier, fields by survivorship, one check task per conflict."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import NOW

from gridgov.accounts.models import User
from gridgov.geo.models import GridLeader
from gridgov.ingest.models import IngestBatch, SourceRecord
from gridgov.registry.golden import resolve_organizations, resolve_persons
from gridgov.registry.models import (
    CheckTask,
    KeyPersonTag,
    Organization,
    Person,
    PersonOrg,
    RecordLink,
)

CID = "11010519491231002X"
CREDIT = "91330200MA2AAAAAAA"


def at(year: int) -> datetime:
    return datetime(year, 6, 1, tzinfo=UTC)


def add(session: Session, source: str, dataset: str, kind: str, key: str, when: datetime,
        values: dict[str, str], flags: list[str] | None = None, grid: str | None = None) -> SourceRecord:  # fmt: skip
    batch = session.scalar(select(IngestBatch).where(IngestBatch.source == source))
    if batch is None:
        batch = IngestBatch(
            source=source, dataset=dataset, file_name=f"{source}.csv", file_sha256=source * 32,
            file_bytes=1, file_format="csv", status="done", started_at=NOW,
        )  # fmt: skip
        session.add(batch)
        session.flush()
    rec = SourceRecord(
        batch_id=batch.id, source=source, dataset=dataset, kind=kind, row_no=2, record_key=key,
        content_hash=key, as_of=when, values=values, flags=flags or [], grid_code=grid, loaded_at=NOW,
    )  # fmt: skip
    session.add(rec)
    session.flush()
    return rec


def scenario(session: Session) -> str:
    grid = session.scalar(select(User.region_code).where(User.username == "grid_worker"))
    assert grid is not None
    p = {"citizen_id": CID}
    add(session, "GA", "hukou", "person", "GA1", at(2020),
        {**p, "name": "张伟", "sex": "2", "birth_date": "1949-12-31", "phone": "13800000001",
         "registered_address": "宁波市海曙区中山西路88号"})  # fmt: skip
    add(
        session,
        "RS",
        "insured",
        "person",
        "RS1",
        at(2024),
        {**p, "name": "张玮", "phone": "13900000002", "employer_credit_code": CREDIT},
    )
    add(session, "WG", "checks", "check", "WG1", at(2025),
        {**p, "name": "张伟", "phone": "13700000003", "actual_address": "天一家园3幢501室",
         "grid_code": grid, "residence_status": "present"}, grid=grid)  # fmt: skip
    add(
        session,
        "WJ",
        "health_records",
        "person",
        "WJ1",
        at(2026),
        {**p, "name": "张伟", "phone": "13600000004"},
    )
    add(
        session,
        "MZ",
        "assistance",
        "tag",
        "MZ1",
        at(2021),
        {**p, "name": "张伟", "tag_class": "service", "subtype": "elderly_alone"},
    )
    add(
        session,
        "SF",
        "correction",
        "tag",
        "SF1",
        at(2022),
        {**p, "name": "张伟", "tag_class": "control", "subtype": "community_correction"},
    )
    add(
        session,
        "GA",
        "hukou",
        "person",
        "GA2",
        at(2020),
        {"citizen_id": "110105194912310021", "name": "李娜"},
        ["citizen_id:checksum"],
    )
    add(
        session,
        "SJ",
        "enterprises",
        "org",
        CREDIT,
        at(2023),
        {
            "credit_code": CREDIT,
            "name": "宁波甲公司",
            "legal_rep_id": CID,
            "legal_rep_name": "张伟",
        },
    )
    add(
        session,
        "MZ",
        "social_orgs",
        "org",
        CREDIT,
        at(2024),
        {"credit_code": CREDIT, "name": "宁波甲协会"},
    )
    return grid


def test_persons_follow_one_datum_one_source(session: Session) -> None:
    grid = scenario(session)
    leader = session.get(GridLeader, grid)
    stats = resolve_persons(session, now=NOW)
    assert (stats.records, stats.linked, stats.unlinked, stats.created) == (7, 6, 0, 2)
    person = session.scalars(select(Person).where(Person.citizen_id == CID)).one()
    assert person.name == "张伟"  # GA is the authority, RS's newer 张玮 does not win
    assert person.provenance["name"]["source"] == "GA"
    assert person.registered_address == "宁波市海曙区中山西路88号"
    assert person.phone == "13700000003"  # the grid worker's check is the field fact
    assert person.actual_address == "天一家园3幢501室" and person.grid_code == grid
    assert person.sources == 6
    # WJ's phone is newer than the check and differs: one task, for the grid's leader.
    tasks = session.scalars(select(CheckTask).where(CheckTask.entity_id == person.id)).all()
    assert [(t.field, t.kind) for t in tasks] == [("phone", "field_vs_department")]
    assert {c["source"] for c in tasks[0].candidates} == {"WG", "WJ"}
    assert tasks[0].grid_code == grid
    assert leader is not None and tasks[0].assignee_id == leader.user_id
    tags = session.scalars(select(KeyPersonTag).where(KeyPersonTag.person_id == person.id)).all()
    assert {(t.tag_class, t.subtype, t.sensitive) for t in tags} == {
        ("service", "elderly_alone", False),
        ("control", "community_correction", True),
    }
    # The invalid ID number links nobody by ID; no one else resembles her: a person of her own,
    # without an ID number, her record linked by the probabilistic matcher.
    lina = session.scalars(select(Person).where(Person.name == "李娜")).one()
    assert lina.citizen_id is None
    link = session.scalars(select(RecordLink).where(RecordLink.entity_id == lina.id)).one()
    assert link.method == "splink-new"


def test_rerunning_keeps_ids_and_opens_no_second_task(session: Session) -> None:
    scenario(session)
    resolve_persons(session, now=NOW)
    first = session.scalars(select(Person.id).where(Person.citizen_id == CID)).one()
    again = resolve_persons(session, now=NOW)
    assert again.created == 0 and again.tasks_opened == 0 and again.links == 0 and again.tags == 0
    assert session.scalars(select(Person.id).where(Person.citizen_id == CID)).one() == first
    assert session.scalar(select(func.count()).select_from(CheckTask)) == 1
    assert session.scalar(select(func.count()).select_from(RecordLink)) == 7


def test_new_persons_are_written_whole_beside_updated_ones(session: Session) -> None:
    """A second run with one known and one new ID number: the known person is updated in place,
    the new one inserted complete (the model's defaults where no source has a value)."""
    scenario(session)
    resolve_persons(session, now=NOW)
    first = session.scalars(select(Person).where(Person.citizen_id == CID)).one()
    first_id, before = first.id, first.sources
    other = "330203199001010012"
    add(session, "WJ", "health_records", "person", "WJ2", at(2026), {"citizen_id": other})
    add(session, "RS", "insured", "person", "RS2", at(2026), {"citizen_id": CID, "name": "张伟"})
    stats = resolve_persons(session, now=NOW)
    assert stats.created == 1
    session.expire_all()
    known = session.get(Person, first_id)
    assert known is not None and known.sources == before + 1 and known.name == "张伟"
    new = session.scalars(select(Person).where(Person.citizen_id == other)).one()
    assert new.id > first_id
    assert (new.name, new.sex, new.phone, new.residence_status, new.sources) == ("", "0", "", "", 1)
    assert new.provenance == {"citizen_id": {"source": "WJ", "record": new.provenance["citizen_id"]["record"], "as_of": "2026-06-01"}}  # fmt: skip
    links = session.scalars(select(RecordLink).where(RecordLink.entity_id == new.id)).all()
    assert [link.method for link in links] == ["id"]


def test_records_without_valid_ids_are_matched_probabilistically(session: Session) -> None:
    scenario(session)
    grid = session.scalar(select(User.region_code).where(User.username == "grid_worker"))
    # The same person written with a homophone and a mistyped ID, no phone: joins 张伟.
    add(session, "JY", "students", "person", "JY1", at(2025),
        {"citizen_id": "11010519491231003X", "name": "张玮", "birth_date": "1949-12-31", "sex": "2",
         "phone": "13800000001"}, ["citizen_id:checksum"])  # fmt: skip
    # Twins without ID numbers: same birthday, surname and room, other names — two people.
    for key, name in (("WJ2", "王小红"), ("WJ3", "王小兰")):
        add(session, "WJ", "health_records", "person", key, at(2025),
            {"name": name, "birth_date": "2016-02-02", "sex": "2",
             "actual_address": "宁波市海曙区中山西路88号3幢2单元601室"}, grid=grid)  # fmt: skip
    # One child in two departments' records: one new person.
    for key, src in (("WJ4", "WJ"), ("JY4", "JY")):
        add(session, src, "students" if src == "JY" else "health_records", "person", key, at(2025),
            {"name": "张小明", "birth_date": "2015-06-01", "sex": "1",
             "actual_address": "宁波市海曙区中山西路88号3幢2单元501室"})  # fmt: skip
    stats = resolve_persons(session, now=NOW)
    zhang = session.scalars(select(Person).where(Person.citizen_id == CID)).one()
    jy1 = session.scalars(
        select(RecordLink).join(SourceRecord, SourceRecord.id == RecordLink.source_record_id)
        .where(SourceRecord.record_key == "JY1")
    ).one()  # fmt: skip
    assert jy1.entity_id == zhang.id and jy1.method == "splink" and (jy1.score or 0) > 0.99
    assert {p.name for p in session.scalars(select(Person).where(Person.citizen_id.is_(None)))} == {
        "李娜",
        "王小红",
        "王小兰",
        "张小明",
    }
    assert (
        session.scalar(select(func.count()).select_from(Person).where(Person.name == "张小明")) == 1
    )
    assert stats.unlinked == 0
    # A second run links nothing again and creates nobody.
    again = resolve_persons(session, now=NOW)
    assert again.created == 0 and again.links == 0


def test_organizations_conflicting_authorities_and_links(session: Session) -> None:
    scenario(session)
    resolve_persons(session, now=NOW)
    stats = resolve_organizations(session, now=NOW)
    assert (stats.created, stats.tasks_opened) == (1, 1)
    org = session.scalars(select(Organization).where(Organization.credit_code == CREDIT)).one()
    task = session.scalars(select(CheckTask).where(CheckTask.entity == "org")).one()
    assert task.field == "name" and task.kind == "authority_conflict"
    assert {c["value"] for c in task.candidates} == {"宁波甲公司", "宁波甲协会"}
    person = session.scalars(select(Person).where(Person.citizen_id == CID)).one()
    assert org.legal_rep_person_id == person.id
    links = {(x.relation, x.source) for x in session.scalars(select(PersonOrg))}
    assert links == {("legal_rep", "SJ"), ("employee", "RS")}
    assert resolve_organizations(session, now=NOW).tasks_opened == 0


def test_records_without_any_valid_id_make_persons_among_themselves(session: Session) -> None:
    # No golden person exists yet and no record has a valid ID number: the matcher compares the
    # records among themselves (the golden side is empty).
    for key, src in (("WJ9", "WJ"), ("JY9", "JY")):
        add(session, src, "students" if src == "JY" else "health_records", "person", key, at(2025),
            {"name": "陈小雨", "birth_date": "2014-03-05", "sex": "2",
             "actual_address": "宁波市海曙区中山西路88号3幢2单元502室"})  # fmt: skip
    stats = resolve_persons(session, now=NOW)
    assert stats.linked == 0 and stats.extra["golden_compared"] == 0
    people = session.scalars(select(Person).where(Person.name == "陈小雨")).all()
    assert len(people) == 1 and people[0].citizen_id is None
    methods = session.scalars(
        select(RecordLink.method).where(RecordLink.entity_id == people[0].id)
    ).all()
    assert sorted(methods) == ["splink-new", "splink-new"]
