"""Golden records of the base data center: addresses, buildings, rooms, persons, organizations.

Every golden record belongs to a grid (`grid_code`, with its village for address keys), so the
jurisdiction scope of accounts applies to it as to events. Field values carry their provenance
(`provenance`: field → source, dataset, record, batch, as-of), decided by the survivorship table.

The references the bulk steps write by the million (a room's address and building, a person's
room, person–room and person–organization links) carry no foreign key: a key checks each row as
it is written and locks the row it points at, which at city scale cost more than writing the rows
(migration 0008). `registry.integrity` checks them set-wise when a step has written them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.db.base import Base
from gridgov.db.types import UTCDateTime, code_string, json_text_type, json_type

BigId = BigInteger().with_variant(Integer, "sqlite")


class Address(Base):
    """The standard address library (标准地址库): one row per room-level (or door-level) address.

    Keyed as DOMAIN.md §4: village code + road + door number + building + unit + room.
    """

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    code: Mapped[str | None] = mapped_column(String(40), unique=True)  # the authority's code
    village_code: Mapped[str] = mapped_column(code_string(12))
    grid_code: Mapped[str | None] = mapped_column(code_string(), index=True)
    road: Mapped[str] = mapped_column(String(60), default="")
    door_no: Mapped[str] = mapped_column(String(20), default="")
    compound: Mapped[str] = mapped_column(String(60), default="")
    building: Mapped[str] = mapped_column(String(20), default="")
    unit: Mapped[str] = mapped_column(String(20), default="")
    room: Mapped[str] = mapped_column(String(20), default="")
    text: Mapped[str] = mapped_column(String(300))  # the normalised full address
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    building_id: Mapped[int | None] = mapped_column(BigId, index=True)
    source: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_addresses_village_road", "village_code", "road", "door_no"),)


class Building(Base):
    """A building (楼幢) with its point; rooms belong to it; its point places it in a grid."""

    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # village + road + door + building
    village_code: Mapped[str] = mapped_column(code_string(12))
    grid_code: Mapped[str | None] = mapped_column(code_string(), index=True)
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    rooms: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Room use (以房管人): what the housing department registered or a grid worker found.
ROOM_USES = ("own", "rented", "vacant", "commercial")


class Room(Base):
    """A room (户室): the unit of 以房管人. People live in rooms; rooms are in buildings."""

    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    address_id: Mapped[int] = mapped_column(BigId, unique=True)
    building_id: Mapped[int | None] = mapped_column(BigId, index=True)
    grid_code: Mapped[str | None] = mapped_column(code_string(), index=True)
    use: Mapped[str | None] = mapped_column(String(12))
    area_m2: Mapped[float | None] = mapped_column(Float)
    owner_person_id: Mapped[int | None] = mapped_column(BigId, index=True)
    cert_no: Mapped[str] = mapped_column(String(60), default="")
    provenance: Mapped[dict[str, Any]] = mapped_column(json_text_type(), default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Person(Base):
    """A golden person record. `citizen_id` holds the 18-digit form when a valid one is known."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    citizen_id: Mapped[str | None] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    sex: Mapped[str] = mapped_column(String(1), default="0")  # GB/T 2261.1
    birth_date: Mapped[date | None] = mapped_column(Date)
    ethnicity: Mapped[str] = mapped_column(String(2), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    registered_address: Mapped[str] = mapped_column(String(300), default="")
    actual_address: Mapped[str] = mapped_column(String(300), default="")
    room_id: Mapped[int | None] = mapped_column(BigId, index=True)
    residence_status: Mapped[str] = mapped_column(String(12), default="")
    grid_code: Mapped[str | None] = mapped_column(code_string(), index=True)
    provenance: Mapped[dict[str, Any]] = mapped_column(json_text_type(), default=dict)
    sources: Mapped[int] = mapped_column(Integer, default=0)  # source records merged here
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_persons_name_birth", "name", "birth_date"),)


class Organization(Base):
    """A golden organization record (enterprise, social organization, school …)."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_rep_person_id: Mapped[int | None] = mapped_column(BigId, index=True)
    legal_rep_name: Mapped[str] = mapped_column(String(60), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    address_id: Mapped[int | None] = mapped_column(BigId, index=True)
    phone: Mapped[str] = mapped_column(String(20), default="")
    industry: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(12), default="")
    founded_on: Mapped[date | None] = mapped_column(Date)
    hazardous: Mapped[bool] = mapped_column(Boolean, default=False)
    grid_code: Mapped[str | None] = mapped_column(code_string(), index=True)
    provenance: Mapped[dict[str, Any]] = mapped_column(json_text_type(), default=dict)
    sources: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# How a person is tied to a room and to an organization.
ROOM_RELATIONS = ("owner", "tenant", "member")
ORG_RELATIONS = ("legal_rep", "employee", "student")


class PersonRoom(Base):
    __tablename__ = "person_rooms"

    person_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    room_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    relation: Mapped[str] = mapped_column(String(10), primary_key=True)
    source: Mapped[str] = mapped_column(String(8))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (Index("ix_person_rooms_room", "room_id"),)


class PersonOrg(Base):
    __tablename__ = "person_orgs"

    person_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    relation: Mapped[str] = mapped_column(String(10), primary_key=True)
    source: Mapped[str] = mapped_column(String(8))

    __table_args__ = (Index("ix_person_orgs_org", "org_id"),)


KEY_CLASSES = ("backbone", "service", "control")  # 骨干, 服务, 管控 (DOMAIN.md §8)


class KeyPersonTag(Base):
    """A key-person tag. Control and health tags are sensitive (PIPL art. 28)."""

    __tablename__ = "key_person_tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("persons.id"), index=True)
    tag_class: Mapped[str] = mapped_column(String(10))
    subtype: Mapped[str] = mapped_column(String(40))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str] = mapped_column(String(200), default="")
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    responsible_user_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(8))
    source_record_id: Mapped[int | None] = mapped_column(BigId)
    grid_code: Mapped[str | None] = mapped_column(code_string(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("person_id", "tag_class", "subtype", "source"),)


class RecordLink(Base):
    """Which golden record a source record was merged into, and how (identifier or model)."""

    __tablename__ = "record_links"

    source_record_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entity: Mapped[str] = mapped_column(String(12))  # person, org, room, address
    entity_id: Mapped[int] = mapped_column(BigId)
    method: Mapped[str] = mapped_column(String(12))  # id, credit_code, splink, address, new
    score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_record_links_entity", "entity", "entity_id"),)


# Check-task states: open until a grid worker confirms a value or enters the one found on site;
# "referred" when the worker reported that no candidate of a legal fact is right: still open,
# but back with the owning department (with the worker's note), no longer in the worker's list.
TASK_OPEN, TASK_RESOLVED, TASK_REFERRED = "open", "resolved", "referred"


class CheckTask(Base):
    """A conflict for a grid worker to settle on site: the candidates, their sources, the outcome.

    At most one open task per record and field (a partial unique index on PostgreSQL; the service
    checks on SQLite), so a conflict seen again by a later import does not open a second one.
    """

    __tablename__ = "check_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entity: Mapped[str] = mapped_column(String(12))
    entity_id: Mapped[int] = mapped_column(BigId)
    field: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))  # authority_conflict, field_vs_department, …
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(json_type())
    grid_code: Mapped[str | None] = mapped_column(code_string(), index=True)
    assignee_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), default=TASK_OPEN)
    open_key: Mapped[str | None] = mapped_column(String(80), unique=True)  # set while open
    resolution: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_check_tasks_entity", "entity", "entity_id"),)


class AccessLog(Base):
    """Every unmasked view of personal identifiers (PIPL art. 51, 55; kept ≥ 3 years)."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))  # view_unmasked, export, …
    entity: Mapped[str] = mapped_column(String(12))
    entity_id: Mapped[int] = mapped_column(BigId)
    fields: Mapped[list[str]] = mapped_column(json_type(), default=list)
    client: Mapped[str] = mapped_column(String(64), default="")


__all__ = [
    "ROOM_RELATIONS",
    "ROOM_USES",
    "Address",
    "Building",
    "CheckTask",
    "KeyPersonTag",
    "Organization",
    "Person",
    "PersonOrg",
    "PersonRoom",
    "RecordLink",
    "Room",
]
