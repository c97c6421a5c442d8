"""API shapes of the base data center (identifiers masked unless the caller unmasked them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel


class PersonOut(BaseModel):
    id: int
    name: str
    citizen_id: str
    sex: str
    birth_date: date | None
    phone: str
    registered_address: str
    actual_address: str
    residence_status: str
    grid_code: str | None
    room_id: int | None
    sources: int
    masked: bool


class PersonPage(BaseModel):
    total: int
    more: bool
    page: int
    size: int
    items: list[PersonOut]


class SourceValueOut(BaseModel):
    source: str
    dataset: str
    record_key: str
    batch: int
    row_no: int
    as_of: datetime | None
    loaded_at: datetime
    values: dict[str, Any]
    flags: list[str]
    method: str
    score: float | None


class TagOut(BaseModel):
    tag_class: str
    subtype: str  # "sensitive" when the caller may not see what it is
    sensitive: bool
    valid_from: date | None
    valid_to: date | None
    source: str


class RoomLinkOut(BaseModel):
    room_id: int
    relation: str
    address: str
    grid_code: str | None


class OrgLinkOut(BaseModel):
    org_id: int
    relation: str
    name: str


class EventBrief(BaseModel):
    tracking_no: str
    title: str
    status: str
    category: str
    reported_at: datetime


class PersonDetailOut(BaseModel):
    person: PersonOut
    provenance: dict[str, Any]
    sources: list[SourceValueOut]
    tags: list[TagOut]
    rooms: list[RoomLinkOut]
    organizations: list[OrgLinkOut]
    events: list[EventBrief]


class OrganizationOut(BaseModel):
    id: int
    credit_code: str | None
    name: str
    legal_rep_name: str
    address: str
    phone: str
    industry: str
    status: str
    founded_on: date | None
    hazardous: bool
    grid_code: str | None
    sources: int
    masked: bool


class OrganizationPage(BaseModel):
    total: int
    more: bool
    page: int
    size: int
    items: list[OrganizationOut]


class OrganizationDetailOut(BaseModel):
    organization: OrganizationOut
    provenance: dict[str, Any]
    sources: list[SourceValueOut]


class AddressOut(BaseModel):
    id: int
    key: str
    text: str
    village_code: str
    grid_code: str | None
    road: str
    door_no: str
    compound: str
    building: str
    unit: str
    room: str
    lon: float | None
    lat: float | None


class AddressPage(BaseModel):
    total: int
    more: bool
    page: int
    size: int
    items: list[AddressOut]


class HouseOut(BaseModel):
    id: int
    address: str
    grid_code: str | None
    use: str | None
    area_m2: float | None


class HousePage(BaseModel):
    total: int
    more: bool
    page: int
    size: int
    items: list[HouseOut]


class ResidentOut(BaseModel):
    person_id: int
    name: str
    relation: str
    citizen_id: str
    phone: str


class HouseDetailOut(BaseModel):
    house: HouseOut
    building: str
    lon: float | None
    lat: float | None
    residents: list[ResidentOut]
    masked: bool
