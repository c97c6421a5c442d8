"""HTML pages of the base data center: search, person, house and organization pages (Chinese)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from gridgov.accounts.rules import ROLE_LABELS
from gridgov.core import clock
from gridgov.geo.service import region_path
from gridgov.registry import service
from gridgov.registry.api import unmask_view
from gridgov.registry.rules import (
    SOURCE_NAMES,
    mask_citizen_id,
    mask_phone,
    mask_value,
    may_see_sensitive,
    may_unmask,
)
from gridgov.web.deps import PageUser, SessionDep

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
KINDS = {"persons": "人员", "organizations": "组织", "houses": "房屋", "addresses": "标准地址"}
TAG_CLASSES = {"backbone": "骨干", "service": "服务", "control": "管控"}
RELATIONS = {"owner": "产权人", "tenant": "承租人", "member": "家庭成员", "legal_rep": "法定代表人",
             "employee": "职工", "student": "学生"}  # fmt: skip
USES = {"own": "自住", "rented": "出租", "vacant": "空置", "commercial": "商用"}


def _render(request: Request, name: str, session: Any, user: Any, ctx: dict[str, Any]) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    base = {
        "user": user,
        "user_path": region_path(session, user.region_code),
        "role_labels": ROLE_LABELS,
        "source_names": SOURCE_NAMES,
        "tag_classes": TAG_CLASSES,
        "relations": RELATIONS,
        "uses": USES,
        "kinds": KINDS,
        "mask_id": mask_citizen_id,
        "mask_phone": mask_phone,
        "mask_value": mask_value,
        "local": clock.local,
    }
    return templates.TemplateResponse(request, name, {**base, **ctx})


@router.get("/registry")
def search_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    kind: str = "persons",
    q: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    kind = kind if kind in KINDS else "persons"
    search = {
        "persons": service.search_persons,
        "organizations": service.search_organizations,
        "houses": service.search_houses,
        "addresses": service.search_addresses,
    }[kind]
    found = search(session, user, q=q, page=page, size=PAGE_SIZE)
    addresses = (
        {a.id: a for a in service.addresses_by_id(session, [r.address_id for r in found.items])}
        if kind == "houses"
        else {}
    )
    return _render(
        request,
        "registry/search.html",
        session,
        user,
        {
            "kind": kind,
            "q": q,
            "found": found,
            "page": page,
            "pages": max(1, (found.total + PAGE_SIZE - 1) // PAGE_SIZE),
            "addresses": addresses,
        },
    )


@router.get("/registry/persons/{person_id}")
def person_page(
    request: Request, person_id: int, user: PageUser, session: SessionDep, unmask: bool = False
) -> Response:
    person = service.access_person(session, user, person_id)
    if unmask:
        unmask_view(session, user, request, "person", person.id, ["citizen_id", "phone"])
    detail = service.person_detail(session, user, person)
    return _render(
        request,
        "registry/person.html",
        session,
        user,
        {
            "d": detail,
            "p": person,
            "unmasked": unmask,
            "may_unmask": may_unmask(user.roles),
            "may_see_sensitive": may_see_sensitive(user.roles),
        },
    )


@router.get("/registry/houses/{room_id}")
def house_page(
    request: Request, room_id: int, user: PageUser, session: SessionDep, unmask: bool = False
) -> Response:
    room = service.access_house(session, user, room_id)
    if unmask:
        unmask_view(session, user, request, "room", room.id, ["citizen_id", "phone"])
    return _render(
        request,
        "registry/house.html",
        session,
        user,
        {
            "d": service.house_detail(session, room),
            "unmasked": unmask,
            "may_unmask": may_unmask(user.roles),
        },
    )


@router.get("/registry/organizations/{org_id}")
def organization_page(
    request: Request, org_id: int, user: PageUser, session: SessionDep
) -> Response:
    org = service.access_organization(session, user, org_id)
    return _render(
        request,
        "registry/organization.html",
        session,
        user,
        {"o": org, "sources": service.source_values(session, "org", org.id)},
    )
