"""Browsing the base data center within a user's jurisdiction; unmasked views are logged.

Every golden record carries the grid it was placed in; a user sees records whose grid lies in
their subtree (city-level users also see records not yet placed in any grid). Records outside are
NotFound, as for regions and events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import Session

from gridgov.accounts.access import Scope, scope_of
from gridgov.accounts.models import User
from gridgov.core.errors import Forbidden, NotFound
from gridgov.geo.divisions import CITY, GRID, prefix_range
from gridgov.ingest.models import SourceRecord
from gridgov.registry.models import (
    AccessLog,
    Address,
    Building,
    KeyPersonTag,
    Organization,
    Person,
    PersonOrg,
    PersonRoom,
    RecordLink,
    Room,
)
from gridgov.registry.rules import may_unmask

COUNT_CAP = 10_000  # totals beyond this show as "10,000+": counting millions per page is waste


def in_scope(column: Any, scope: Scope) -> ColumnElement[bool]:
    """Rows whose grid code lies in the scope (a range on the indexed code column)."""
    if scope.level == CITY:
        return true()
    if scope.level == GRID:
        return column == scope.root_code  # type: ignore[no-any-return]
    low, high = prefix_range(scope.prefix)
    return and_(column >= low, column < high)


def _count(session: Session, stmt: Select[Any]) -> tuple[int, bool]:
    capped = stmt.order_by(None).limit(COUNT_CAP + 1).subquery()
    n = session.scalar(select(func.count()).select_from(capped)) or 0
    return min(n, COUNT_CAP), n > COUNT_CAP


@dataclass
class Page:
    total: int
    more: bool  # the total is a lower bound (COUNT_CAP reached)
    items: list[Any]


def _page(session: Session, stmt: Select[Any], page: int, size: int) -> Page:
    total, more = _count(session, stmt)
    items = list(session.scalars(stmt.offset((page - 1) * size).limit(size)))
    return Page(total, more, items)


# ------------------------------------------------------------------------------ persons


def search_persons(
    session: Session, user: User, *, q: str = "", grid: str | None = None, page: int, size: int
) -> Page:
    scope = scope_of(user)
    stmt = select(Person).where(in_scope(Person.grid_code, scope))
    if grid:
        if not scope.contains(grid):
            raise NotFound(f"区域或网格 {grid} 不存在或不在您的管辖范围内", code="region_not_found")
        stmt = stmt.where(in_scope(Person.grid_code, scope_for_code(grid)))
    q = q.strip()
    if q:
        # An ID number or phone matches exactly (they are shown masked, but may be searched);
        # anything else is a name prefix.
        upper = q.upper()
        stmt = stmt.where(
            or_(Person.citizen_id == upper, Person.phone == q, Person.name.startswith(q))
        )
    return _page(session, stmt.order_by(Person.name, Person.id), page, size)


def scope_for_code(code: str) -> Scope:
    from gridgov.geo.divisions import level_of_code, scope_prefix

    level = level_of_code(code)
    return Scope(code, level, scope_prefix(code, level))


def access_person(session: Session, user: User, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None or not _visible(user, person.grid_code):
        raise NotFound(f"人员 {person_id} 不存在或不在您的管辖范围内", code="person_not_found")
    return person


def _visible(user: User, grid_code: str | None) -> bool:
    scope = scope_of(user)
    if scope.level == CITY:
        return True
    return grid_code is not None and scope.contains(grid_code)


@dataclass
class SourceValue:
    source: str
    dataset: str
    record_key: str
    batch_id: int
    row_no: int
    as_of: datetime | None
    loaded_at: datetime
    values: dict[str, Any]
    flags: list[str]
    method: str
    score: float | None


@dataclass
class PersonDetail:
    person: Person
    sources: list[SourceValue] = field(default_factory=list)
    tags: list[KeyPersonTag] = field(default_factory=list)
    rooms: list[tuple[PersonRoom, Room, Address]] = field(default_factory=list)
    organizations: list[tuple[PersonOrg, Organization]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)


def source_values(session: Session, entity: str, entity_id: int) -> list[SourceValue]:
    rows = session.execute(
        select(SourceRecord, RecordLink.method, RecordLink.score)
        .join(RecordLink, RecordLink.source_record_id == SourceRecord.id)
        .where(RecordLink.entity == entity, RecordLink.entity_id == entity_id)
        .order_by(SourceRecord.as_of.desc().nulls_last(), SourceRecord.id.desc())
    ).all()
    return [
        SourceValue(
            source=r.source,
            dataset=r.dataset,
            record_key=r.record_key,
            batch_id=r.batch_id,
            row_no=r.row_no,
            as_of=r.as_of,
            loaded_at=r.loaded_at,
            values=dict(r.values),
            flags=list(r.flags or []),
            method=method,
            score=score,
        )
        for r, method, score in rows
    ]


def person_detail(session: Session, user: User, person: Person) -> PersonDetail:
    from gridgov.events import service as events

    detail = PersonDetail(person, source_values(session, "person", person.id))
    detail.tags = list(
        session.scalars(
            select(KeyPersonTag)
            .where(KeyPersonTag.person_id == person.id)
            .order_by(KeyPersonTag.tag_class, KeyPersonTag.subtype)
        )
    )
    detail.rooms = [
        (link, room, address)
        for link, room, address in session.execute(
            select(PersonRoom, Room, Address)
            .join(Room, Room.id == PersonRoom.room_id)
            .join(Address, Address.id == Room.address_id)
            .where(PersonRoom.person_id == person.id)
        )
    ]
    detail.organizations = [
        (link, org)
        for link, org in session.execute(
            select(PersonOrg, Organization)
            .join(Organization, Organization.id == PersonOrg.org_id)
            .where(PersonOrg.person_id == person.id)
        )
    ]
    detail.events = events.events_naming(session, user, name=person.name, phone=person.phone)
    return detail


def log_unmasked(
    session: Session,
    user: User,
    *,
    entity: str,
    entity_id: int,
    fields: Sequence[str],
    now: datetime,
    client: str = "",
) -> None:
    """Refuse roles that may not unmask; record every view of full identifiers."""
    if not may_unmask(user.roles):
        raise Forbidden("您的角色不能查看完整的身份证号和电话", code="unmask_forbidden")
    session.add(
        AccessLog(
            at=now,
            user_id=user.id,
            username=user.username,
            action="view_unmasked",
            entity=entity,
            entity_id=entity_id,
            fields=list(fields),
            client=client[:64],
        )
    )


# ------------------------------------------------------------------------ organizations


def search_organizations(
    session: Session, user: User, *, q: str = "", page: int, size: int
) -> Page:
    stmt = select(Organization).where(in_scope(Organization.grid_code, scope_of(user)))
    q = q.strip()
    if q:
        stmt = stmt.where(or_(Organization.credit_code == q.upper(), Organization.name.contains(q)))
    return _page(session, stmt.order_by(Organization.name, Organization.id), page, size)


def access_organization(session: Session, user: User, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None or not _visible(user, org.grid_code):
        raise NotFound(f"组织 {org_id} 不存在或不在您的管辖范围内", code="organization_not_found")
    return org


# ------------------------------------------------------------------------- houses, addresses


@dataclass
class HouseDetail:
    room: Room
    address: Address
    building: Building | None
    residents: list[tuple[Person, str]]  # person and relation (owner, tenant, member)


def search_houses(
    session: Session, user: User, *, q: str = "", use: str = "", page: int, size: int
) -> Page:
    stmt = (
        select(Room)
        .join(Address, Address.id == Room.address_id)
        .where(in_scope(Room.grid_code, scope_of(user)))
    )
    if use:
        stmt = stmt.where(Room.use == use)
    q = q.strip()
    if q:
        stmt = stmt.where(Address.text.contains(q))
    return _page(session, stmt.order_by(Address.key), page, size)


def access_house(session: Session, user: User, room_id: int) -> Room:
    room = session.get(Room, room_id)
    if room is None or not _visible(user, room.grid_code):
        raise NotFound(f"房屋 {room_id} 不存在或不在您的管辖范围内", code="house_not_found")
    return room


def house_detail(session: Session, room: Room) -> HouseDetail:
    address = session.get_one(Address, room.address_id)
    building = session.get(Building, room.building_id) if room.building_id else None
    linked = session.execute(
        select(Person, PersonRoom.relation)
        .join(PersonRoom, PersonRoom.person_id == Person.id)
        .where(PersonRoom.room_id == room.id)
        .order_by(PersonRoom.relation, Person.name)
    )
    residents = [(p, rel) for p, rel in linked]
    seen = {p.id for p, _ in residents}
    for p in session.scalars(select(Person).where(Person.room_id == room.id)):
        if p.id not in seen:
            residents.append((p, "member"))
    return HouseDetail(room, address, building, residents)


def search_addresses(session: Session, user: User, *, q: str = "", page: int, size: int) -> Page:
    stmt = select(Address).where(in_scope(Address.grid_code, scope_of(user)))
    q = q.strip()
    if q:
        stmt = stmt.where(Address.text.contains(q))
    return _page(session, stmt.order_by(Address.key), page, size)


def addresses_by_id(session: Session, ids: Sequence[int]) -> list[Address]:
    if not ids:
        return []
    return list(session.scalars(select(Address).where(Address.id.in_(set(ids)))))
