"""HTML pages of early warning (Chinese): the scoped list with filters, a warning's detail with
reason, evidence and link, and the acknowledge / follow-up / close form."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gridgov.accounts.rules import ROLE_LABELS
from gridgov.analytics.warnings import rules, service
from gridgov.core import clock
from gridgov.core.errors import Rejected
from gridgov.geo.service import region_path
from gridgov.web.deps import PageUser, SessionDep

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


def _render(request: Request, name: str, session: Any, user: Any, ctx: dict[str, Any]) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    base = {
        "user": user,
        "user_path": region_path(session, user.region_code),
        "role_labels": ROLE_LABELS,
        "kind_labels": {k.value: v for k, v in rules.KIND_LABELS.items()},
        "status_labels": {k.value: v for k, v in rules.STATUS_LABELS.items()},
        "action_labels": {k.value: v for k, v in rules.ACTION_LABELS.items()},
        "local": clock.local,
    }
    return templates.TemplateResponse(request, name, {**base, **ctx})


def _date(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Rejected(
            f"{field} 日期格式无效: {value!r} (例: 2026-11-28)", code="bad_date"
        ) from None


@router.get("/analytics/warnings")
def list_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    kind: str = "",
    status: str = "active",
    region: str = "",
    category: Annotated[str, Query(max_length=8)] = "",
    start: str = "",
    end: str = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    f = service.WarningFilter(
        kind, status, region.strip(), category.strip(), _date(start, "起始日期"),
        _date(end, "截止日期"),
    )  # fmt: skip
    found = service.list_warnings(session, user, f, page=page, size=PAGE_SIZE)
    query = {k: v for k, v in {"kind": kind, "status": status, "region": region,
             "category": category, "start": start, "end": end}.items() if v}  # fmt: skip
    return _render(
        request,
        "analytics/warnings/list.html",
        session,
        user,
        {
            "found": found,
            "q": {
                "kind": kind,
                "status": status,
                "region": region,
                "category": category,
                "start": start,
                "end": end,
            },
            "query_string": urlencode(query),
            "page": page,
            "pages": max(1, (found.total + PAGE_SIZE - 1) // PAGE_SIZE),
        },
    )


@router.get("/analytics/warnings/{warning_id}")
def detail_page(request: Request, warning_id: int, user: PageUser, session: SessionDep) -> Response:
    w = service.access_warning(session, user, warning_id)
    return _render(
        request,
        "analytics/warnings/detail.html",
        session,
        user,
        {
            "w": w,
            "path": region_path(session, w.region_code),
            "evidence_json": json.dumps(w.evidence, ensure_ascii=False, indent=2),
            "history": service.history(session, w),
            "actions": rules.actions_for(w.status),
        },
    )


@router.post("/analytics/warnings/{warning_id}", response_model=None)
def act_page(
    warning_id: int,
    user: PageUser,
    session: SessionDep,
    action: Annotated[str, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    service.act(
        session, user=user, warning_id=warning_id, action=action, note=note, now=clock.now()
    )
    return RedirectResponse(f"/analytics/warnings/{warning_id}", status_code=303)
