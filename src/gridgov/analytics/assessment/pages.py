"""The assessment page (考核): ranking tables per level, the method beside them, XLSX link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from gridgov.accounts.access import access_region
from gridgov.analytics.assessment import rules, service
from gridgov.analytics.assessment.api import Config
from gridgov.core import clock
from gridgov.events.api import Ctx
from gridgov.events.pages import _render, _user_ctx
from gridgov.geo.service import region_path
from gridgov.web.deps import PageUser, SessionDep

router = APIRouter(include_in_schema=False)


@router.get("/analytics/assessment", response_class=HTMLResponse)
def assessment_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    ctx: Ctx,
    config: Config,
    code: Annotated[str | None, Query(max_length=15)] = None,
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
    level: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    now = clock.now()
    period = service.make_period(start, end, now=now)
    result = service.compute(
        session,
        region=access_region(session, user, code or user.region_code),
        period=period,
        config=config,
        ctx=ctx,
        now=now,
    )
    shown = level if level in result.levels else next(iter(result.levels))
    return _render(
        request,
        "analytics/assessment/index.html",
        {
            **_user_ctx(session, user),
            "a": result,
            "level": shown,
            "rows": result.levels[shown],
            "level_labels": rules.LEVEL_LABELS,
            "method_rules": rules.method_text(config),
            "method_lines": rules.method_lines(config),
            "path": region_path(session, result.region.code),
            "root": user.region_code,
        },
    )
