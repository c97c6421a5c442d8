"""JSON API of the base data center: scoped, paginated, identifiers masked by default.

`?unmask=true` on a single record shows full ID numbers and phones to roles allowed to see them,
and writes the view to the access log; lists are always masked.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from gridgov.accounts.models import User
from gridgov.core import clock
from gridgov.registry import service
from gridgov.registry.models import Address, Organization, Person, Room
from gridgov.registry.rules import mask_citizen_id, mask_phone, mask_value, may_see_sensitive
from gridgov.registry.schemas import (
    AddressOut,
    AddressPage,
    EventBrief,
    HouseDetailOut,
    HouseOut,
    HousePage,
    OrganizationDetailOut,
    OrganizationOut,
    OrganizationPage,
    OrgLinkOut,
    PersonDetailOut,
    PersonOut,
    PersonPage,
    ResidentOut,
    RoomLinkOut,
    SourceValueOut,
    TagOut,
)
from gridgov.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1", tags=["基础数据"])
PageNo = Annotated[int, Query(ge=1, description="页码")]
Size = Annotated[int, Query(ge=1, le=200, description="每页条数")]
Unmask = Annotated[bool, Query(description="显示完整身份证号和电话 (记入访问日志)")]


def person_out(p: Person, *, masked: bool) -> PersonOut:
    return PersonOut(
        id=p.id,
        name=p.name,
        citizen_id=mask_citizen_id(p.citizen_id) if masked else (p.citizen_id or ""),
        sex=p.sex,
        birth_date=p.birth_date,
        phone=mask_phone(p.phone) if masked else p.phone,
        registered_address=p.registered_address,
        actual_address=p.actual_address,
        residence_status=p.residence_status,
        grid_code=p.grid_code,
        room_id=p.room_id,
        sources=p.sources,
        masked=masked,
    )


def _masked_values(values: dict[str, Any], masked: bool) -> dict[str, Any]:
    if not masked:
        return values
    return {
        k: mask_value(k, v) if isinstance(v, str) and (k.endswith("_id") or "phone" in k) else v
        for k, v in values.items()
    }


def _sources(items: list[service.SourceValue], masked: bool) -> list[SourceValueOut]:
    return [
        SourceValueOut(
            source=s.source,
            dataset=s.dataset,
            record_key=s.record_key,
            batch=s.batch_id,
            row_no=s.row_no,
            as_of=s.as_of,
            loaded_at=s.loaded_at,
            values=_masked_values(s.values, masked),
            flags=s.flags,
            method=s.method,
            score=s.score,
        )
        for s in items
    ]


def unmask_view(
    session: Session, user: User, request: Request, entity: str, entity_id: int, fields: list[str]
) -> None:
    client = request.client.host if request.client else ""
    service.log_unmasked(
        session,
        user,
        entity=entity,
        entity_id=entity_id,
        fields=fields,
        now=clock.now(),
        client=client,
    )


@router.get("/persons", response_model=PersonPage, summary="人员检索 (姓名前缀、身份证号、电话)")
def persons(
    user: CurrentUser,
    session: SessionDep,
    page: PageNo = 1,
    size: Size = 50,
    q: Annotated[str, Query(max_length=60)] = "",
    grid: Annotated[str | None, Query(description="区域或网格代码")] = None,
) -> PersonPage:
    found = service.search_persons(session, user, q=q, grid=grid, page=page, size=size)
    return PersonPage(
        total=found.total,
        more=found.more,
        page=page,
        size=size,
        items=[person_out(p, masked=True) for p in found.items],
    )


@router.get("/persons/{person_id}", response_model=PersonDetailOut, summary="人员详情 (含来源)")
def person(
    person_id: int,
    user: CurrentUser,
    session: SessionDep,
    request: Request,
    unmask: Unmask = False,
) -> PersonDetailOut:
    p = service.access_person(session, user, person_id)
    if unmask:
        unmask_view(session, user, request, "person", p.id, ["citizen_id", "phone"])
    detail = service.person_detail(session, user, p)
    masked = not unmask
    sensitive_ok = may_see_sensitive(user.roles)
    return PersonDetailOut(
        person=person_out(p, masked=masked),
        provenance=dict(p.provenance or {}),
        sources=_sources(detail.sources, masked),
        tags=[
            TagOut(
                tag_class=t.tag_class,
                subtype=t.subtype if (sensitive_ok or not t.sensitive) else "sensitive",
                sensitive=t.sensitive,
                valid_from=t.valid_from,
                valid_to=t.valid_to,
                source=t.source,
            )
            for t in detail.tags
        ],
        rooms=[
            RoomLinkOut(
                room_id=room.id, relation=link.relation, address=addr.text, grid_code=room.grid_code
            )
            for link, room, addr in detail.rooms
        ],
        organizations=[
            OrgLinkOut(org_id=org.id, relation=link.relation, name=org.name)
            for link, org in detail.organizations
        ],
        events=[
            EventBrief(
                tracking_no=e.tracking_no,
                title=e.title,
                status=e.status,
                category=e.category_code,
                reported_at=e.reported_at,
            )
            for e in detail.events
        ],
    )


def org_out(o: Organization, *, masked: bool) -> OrganizationOut:
    return OrganizationOut(
        id=o.id,
        credit_code=o.credit_code,
        name=o.name,
        legal_rep_name=o.legal_rep_name,
        address=o.address,
        phone=mask_phone(o.phone) if masked else o.phone,
        industry=o.industry,
        status=o.status,
        founded_on=o.founded_on,
        hazardous=o.hazardous,
        grid_code=o.grid_code,
        sources=o.sources,
        masked=masked,
    )


@router.get("/organizations", response_model=OrganizationPage, summary="组织检索")
def organizations(
    user: CurrentUser,
    session: SessionDep,
    page: PageNo = 1,
    size: Size = 50,
    q: Annotated[str, Query(max_length=100)] = "",
) -> OrganizationPage:
    found = service.search_organizations(session, user, q=q, page=page, size=size)
    return OrganizationPage(
        total=found.total,
        more=found.more,
        page=page,
        size=size,
        items=[org_out(o, masked=True) for o in found.items],
    )


@router.get("/organizations/{org_id}", response_model=OrganizationDetailOut, summary="组织详情")
def organization(
    org_id: int, user: CurrentUser, session: SessionDep, request: Request, unmask: Unmask = False
) -> OrganizationDetailOut:
    o = service.access_organization(session, user, org_id)
    if unmask:
        unmask_view(session, user, request, "org", o.id, ["phone", "legal_rep_id"])
    return OrganizationDetailOut(
        organization=org_out(o, masked=not unmask),
        provenance=dict(o.provenance or {}),
        sources=_sources(service.source_values(session, "org", o.id), not unmask),
    )


def house_out(room: Room, address: Address) -> HouseOut:
    return HouseOut(
        id=room.id,
        address=address.text,
        grid_code=room.grid_code,
        use=room.use,
        area_m2=room.area_m2,
    )


@router.get("/houses", response_model=HousePage, summary="房屋检索 (以房管人)")
def houses(
    user: CurrentUser,
    session: SessionDep,
    page: PageNo = 1,
    size: Size = 50,
    q: Annotated[str, Query(max_length=100, description="地址包含")] = "",
    use: Annotated[str, Query(description="用途: own, rented, vacant, commercial")] = "",
) -> HousePage:
    found = service.search_houses(session, user, q=q, use=use, page=page, size=size)
    addresses = {
        a.id: a for a in service.addresses_by_id(session, [r.address_id for r in found.items])
    }
    return HousePage(
        total=found.total,
        more=found.more,
        page=page,
        size=size,
        items=[house_out(r, addresses[r.address_id]) for r in found.items],
    )


@router.get("/houses/{room_id}", response_model=HouseDetailOut, summary="房屋详情: 住户")
def house(
    room_id: int, user: CurrentUser, session: SessionDep, request: Request, unmask: Unmask = False
) -> HouseDetailOut:
    room = service.access_house(session, user, room_id)
    if unmask:
        unmask_view(session, user, request, "room", room.id, ["citizen_id", "phone"])
    d = service.house_detail(session, room)
    masked = not unmask
    return HouseDetailOut(
        house=house_out(room, d.address),
        building=d.building.name if d.building else "",
        lon=d.address.lon,
        lat=d.address.lat,
        residents=[
            ResidentOut(
                person_id=p.id,
                name=p.name,
                relation=rel,
                citizen_id=mask_citizen_id(p.citizen_id) if masked else (p.citizen_id or ""),
                phone=mask_phone(p.phone) if masked else p.phone,
            )
            for p, rel in d.residents
        ],
        masked=masked,
    )


@router.get("/addresses", response_model=AddressPage, summary="标准地址检索")
def addresses(
    user: CurrentUser,
    session: SessionDep,
    page: PageNo = 1,
    size: Size = 50,
    q: Annotated[str, Query(max_length=100, description="地址包含")] = "",
) -> AddressPage:
    found = service.search_addresses(session, user, q=q, page=page, size=size)
    return AddressPage(
        total=found.total,
        more=found.more,
        page=page,
        size=size,
        items=[
            AddressOut(
                id=a.id,
                key=a.key,
                text=a.text,
                village_code=a.village_code,
                grid_code=a.grid_code,
                road=a.road,
                door_no=a.door_no,
                compound=a.compound,
                building=a.building,
                unit=a.unit,
                room=a.room,
                lon=a.lon,
                lat=a.lat,
            )
            for a in found.items
        ],
    )
