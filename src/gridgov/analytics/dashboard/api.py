"""JSON and XLSX of a unit's dashboard (/api/v1/analytics/dashboard/...)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gridgov.accounts.access import access_region
from gridgov.analytics.dashboard import export
from gridgov.analytics.dashboard import service as dash
from gridgov.core import clock
from gridgov.events.catalog import cached_catalog
from gridgov.events.service import CHANNELS
from gridgov.registry.rules import may_see_sensitive
from gridgov.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

DateQuery = Annotated[str | None, Query(description="YYYY-MM-DD (含当日); 默认最近 30 天")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def build(
    session: Any, settings: Any, user: Any, code: str, start: str | None, end: str | None
) -> dash.Dashboard:
    """Check access, parse the period and read the dashboard (shared by the API and the page)."""
    region = access_region(session, user, code)
    period = dash.parse_period(start, end, today=clock.local(clock.now()).date())
    catalog = cached_catalog(settings.catalog_file)
    return dash.dashboard(
        session,
        region=region,
        period=period,
        category_names={c: cat.name for c, cat in catalog.categories.items()},
        channel_names=CHANNELS,
        show_sensitive=may_see_sensitive(user.roles),
    )


@router.get(
    "/dashboard/{code}",
    summary="驾驶舱数据: 基础数据、事件 (类别/状态/渠道/逐日)、闭环指标、与上期对比、各下级",
)
def get_dashboard(
    code: str,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    start: DateQuery = None,
    end: DateQuery = None,
) -> Response:
    # Serialised here: the payload is plain JSON types already, and FastAPI's generic encoder
    # walking a year of daily figures costs more than the rollup queries themselves.
    body = json.dumps(
        build(session, settings, user, code, start, end).as_dict(), ensure_ascii=False
    )
    return Response(body, media_type="application/json")


@router.get("/dashboard/{code}/export.xlsx", summary="驾驶舱数据导出 XLSX (每个图表一个工作表)")
def get_dashboard_xlsx(
    code: str,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    start: DateQuery = None,
    end: DateQuery = None,
) -> Response:
    d = build(session, settings, user, code, start, end)
    name = f"dashboard-{d.region.code}-{d.period.start}-{d.period.end}.xlsx"
    return Response(
        export.workbook(d),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
