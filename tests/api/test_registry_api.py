"""Browsing the data center: scoped search, masking, unmasked views logged, sensitive tags hidden."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import NOW
from tests.helpers import bearer

from gridgov.accounts.models import User
from gridgov.geo.models import Region
from gridgov.ingest.models import IngestBatch, SourceRecord
from gridgov.registry.models import (
    AccessLog,
    Address,
    Building,
    KeyPersonTag,
    Organization,
    Person,
    PersonRoom,
    RecordLink,
    Room,
)

ID_IN = "11010519491231002X"
ID_OUT = "330203199001011234"


@dataclass
class Fixture:
    person: Person
    outsider: Person
    room: Room
    org: Organization


def add_person(session: Session, grid: str, name: str, cid: str, phone: str) -> Person:
    p = Person(
        citizen_id=cid,
        name=name,
        sex="1",
        birth_date=date(1949, 12, 31),
        phone=phone,
        registered_address="宁波市海曙区中山西路88号",
        grid_code=grid,
        provenance={"name": {"source": "GA"}},
        sources=1,
        updated_at=NOW,
    )
    session.add(p)
    session.flush()
    return p


def build(session: Session) -> Fixture:
    grid = session.scalar(select(User.region_code).where(User.username == "grid_worker"))
    assert grid is not None
    town = grid[:9]
    far = session.scalar(
        select(Region.code).where(Region.level == 5, Region.code.not_like(town + "%")).limit(1)
    )
    assert far is not None
    person = add_person(session, grid, "张伟", ID_IN, "13805740001")
    outsider = add_person(session, far, "李娜", ID_OUT, "13905740002")
    address = Address(
        key=f"{grid[:12]}|中山西路|88号|3幢|2单元|501室",
        village_code=grid[:12],
        grid_code=grid,
        road="中山西路",
        door_no="88号",
        building="3幢",
        unit="2单元",
        room="501室",
        text="中山西路88号3幢2单元501室",
        lon=121.5,
        lat=29.8,
        source="ZR",
        updated_at=NOW,
    )
    session.add(address)
    session.flush()
    building = Building(
        key=f"{grid[:12]}|中山西路|88号|3幢", village_code=grid[:12], grid_code=grid,
        name="中山西路88号3幢", updated_at=NOW,
    )  # fmt: skip
    session.add(building)
    session.flush()
    room = Room(
        address_id=address.id, building_id=building.id, grid_code=grid, use="rented", updated_at=NOW
    )
    session.add(room)
    session.flush()
    session.add(PersonRoom(person_id=person.id, room_id=room.id, relation="tenant", source="ZJ"))
    session.add_all(
        [
            KeyPersonTag(person_id=person.id, tag_class="service", subtype="elderly_alone", source="MZ", updated_at=NOW),
            KeyPersonTag(
                person_id=person.id, tag_class="control", subtype="community_correction",
                sensitive=True, source="SF", updated_at=NOW,
            ),
        ]
    )  # fmt: skip
    org = Organization(
        credit_code="91330200MA2AAAAAAA",
        name="宁波甲科技有限公司",
        phone="057487654321",
        grid_code=grid,
        updated_at=NOW,
    )
    session.add(org)
    batch = IngestBatch(
        source="GA", dataset="hukou", file_name="ga_hukou.csv", file_sha256="0" * 64, file_bytes=1,
        file_format="csv", status="done", started_at=NOW,
    )  # fmt: skip
    session.add(batch)
    session.flush()
    rec = SourceRecord(
        batch_id=batch.id, source="GA", dataset="hukou", kind="person", row_no=2, record_key="GA0001",
        content_hash="x", as_of=NOW, values={"name": "张伟", "citizen_id": ID_IN, "phone": "13805740001"},
        flags=[], loaded_at=NOW,
    )  # fmt: skip
    session.add(rec)
    session.flush()
    session.add(
        RecordLink(source_record_id=rec.id, entity="person", entity_id=person.id, method="id")
    )
    session.flush()
    return Fixture(person, outsider, room, org)


@pytest.fixture
def data(session: Session) -> Fixture:
    return build(session)


def test_lists_are_scoped_and_masked(client, data) -> None:  # type: ignore[no-untyped-def]
    h = bearer(client, "town_staff")
    r = client.get("/api/v1/persons", headers=h)
    assert r.status_code == 200
    ids = {p["id"] for p in r.json()["items"]}
    assert data.person.id in ids and data.outsider.id not in ids
    mine = next(p for p in r.json()["items"] if p["id"] == data.person.id)
    assert mine["citizen_id"] == "110105********002X" and mine["phone"] == "138****0001"
    # Searching by the full ID finds it (shown masked); the outsider's ID finds nothing.
    assert client.get("/api/v1/persons", params={"q": ID_IN}, headers=h).json()["total"] == 1
    assert client.get("/api/v1/persons", params={"q": ID_OUT}, headers=h).json()["total"] == 0
    assert client.get(f"/api/v1/persons/{data.outsider.id}", headers=h).status_code == 404
    city = bearer(client, "city_staff")
    assert client.get("/api/v1/persons", params={"q": ID_OUT}, headers=city).json()["total"] == 1


def test_unmasked_view_is_logged_and_refused_to_departments(client, session, data) -> None:  # type: ignore[no-untyped-def]
    before = session.scalar(select(func.count()).select_from(AccessLog))
    h = bearer(client, "grid_worker")
    masked = client.get(f"/api/v1/persons/{data.person.id}", headers=h).json()
    assert masked["person"]["citizen_id"] == "110105********002X"
    assert masked["sources"][0]["values"]["citizen_id"] == "110105********002X"
    assert session.scalar(select(func.count()).select_from(AccessLog)) == before
    full = client.get(
        f"/api/v1/persons/{data.person.id}", params={"unmask": True}, headers=h
    ).json()
    assert full["person"]["citizen_id"] == ID_IN and full["person"]["phone"] == "13805740001"
    assert full["sources"][0]["values"]["citizen_id"] == ID_IN
    log = session.scalars(select(AccessLog).order_by(AccessLog.id.desc())).first()
    assert log is not None and log.username == "grid_worker" and log.entity_id == data.person.id
    assert log.action == "view_unmasked" and "citizen_id" in log.fields
    dept = bearer(client, "department_staff")
    r = client.get(f"/api/v1/persons/{data.person.id}", params={"unmask": True}, headers=dept)
    assert r.status_code == 403 and r.json()["detail"][0]["code"] == "unmask_forbidden"


def test_sensitive_tags_shown_only_to_roles_that_act_on_them(client, data) -> None:  # type: ignore[no-untyped-def]
    worker = client.get(
        f"/api/v1/persons/{data.person.id}", headers=bearer(client, "grid_worker")
    ).json()
    assert {t["subtype"] for t in worker["tags"]} == {"elderly_alone", "community_correction"}
    city = client.get(
        f"/api/v1/persons/{data.person.id}", headers=bearer(client, "city_staff")
    ).json()
    assert {t["subtype"] for t in city["tags"]} == {"elderly_alone", "sensitive"}
    assert worker["rooms"][0]["relation"] == "tenant"


def test_house_page_lists_residents(client, data) -> None:  # type: ignore[no-untyped-def]
    h = bearer(client, "village_staff")
    r = client.get(f"/api/v1/houses/{data.room.id}", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["house"]["use"] == "rented" and body["building"] == "中山西路88号3幢"
    assert [(p["name"], p["relation"], p["citizen_id"]) for p in body["residents"]] == [
        ("张伟", "tenant", "110105********002X")
    ]
    listed = client.get("/api/v1/houses", params={"q": "中山西路88号"}, headers=h).json()
    assert listed["total"] == 1
    orgs = client.get("/api/v1/organizations", params={"q": "甲科技"}, headers=h).json()
    assert orgs["total"] == 1 and orgs["items"][0]["phone"].startswith("0574")
    assert "*" in orgs["items"][0]["phone"]
    addrs = client.get("/api/v1/addresses", params={"q": "中山西路88号"}, headers=h).json()
    assert addrs["total"] == 1


def login(client, username: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/login", data={"username": username, "password": "Gridgov@2026"})
    assert r.status_code in (200, 303)


def test_pages_mask_by_default_and_log_unmasked_views(client, session, data) -> None:  # type: ignore[no-untyped-def]
    login(client, "village_staff")
    r = client.get("/registry", params={"kind": "persons", "q": "张"})
    assert r.status_code == 200 and "张伟" in r.text and "110105********002X" in r.text
    assert ID_IN not in r.text and "李娜" not in r.text
    page = client.get(f"/registry/persons/{data.person.id}")
    assert page.status_code == 200 and ID_IN not in page.text and "记入访问日志" in page.text
    assert "公安" in page.text and "GA0001" in page.text
    before = session.scalar(select(func.count()).select_from(AccessLog))
    full = client.get(f"/registry/persons/{data.person.id}", params={"unmask": True})
    assert ID_IN in full.text and "13805740001" in full.text
    assert session.scalar(select(func.count()).select_from(AccessLog)) == before + 1
    house = client.get(f"/registry/houses/{data.room.id}")
    assert house.status_code == 200 and "张伟" in house.text and "承租人" in house.text
    assert ID_IN not in house.text
    org = client.get(f"/registry/organizations/{data.org.id}")
    assert org.status_code == 200 and "宁波甲科技有限公司" in org.text
    client.post("/logout")
    login(client, "department_staff")
    refused = client.get(f"/registry/persons/{data.person.id}", params={"unmask": True})
    assert refused.status_code == 403
