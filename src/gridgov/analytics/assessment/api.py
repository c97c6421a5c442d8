"""JSON API of the assessment: ranked tables per level with the method, and their XLSX export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gridgov.accounts.access import access_region
from gridgov.analytics.assessment import service
from gridgov.analytics.assessment.config import (
    AssessmentConfig,
    AssessmentConfigError,
    cached_config,
)
from gridgov.analytics.assessment.export import to_xlsx
from gridgov.core import clock
from gridgov.core.errors import Unavailable
from gridgov.events.api import Ctx
from gridgov.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def get_config(settings: SettingsDep) -> AssessmentConfig:
    try:
        return cached_config(settings.assessment_file)
    except AssessmentConfigError as exc:
        raise Unavailable(str(exc), code="assessment_config") from None


Config = Annotated[AssessmentConfig, Depends(get_config)]
Region = Annotated[str | None, Query(max_length=15, description="区域或网格代码; 默认本人辖区")]
From = Annotated[str, Query(alias="from", max_length=10, description="起始日期 (含), 默认上月")]
To = Annotated[str, Query(alias="to", max_length=10, description="截止日期 (含), 默认上月")]


@router.get(
    "/assessment",
    summary="考核: 网格员、网格、村社区、乡镇、部门的排名表 (各指标比率与得分) 和考核方法",
)
def get_assessment(
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    config: Config,
    region: Region = None,
    start: From = "",
    end: To = "",
    level: Annotated[list[str] | None, Query(description="只看这些层级")] = None,
) -> dict[str, Any]:
    now = clock.now()
    period = service.make_period(start, end, now=now)
    result = service.compute(
        session, region=access_region(session, user, region or user.region_code), period=period, config=config, ctx=ctx, now=now,
        levels=level or None,
    )  # fmt: skip
    return result.as_dict()


@router.get("/assessment.xlsx", summary="考核结果导出 XLSX (每个层级一张工作表, 另附考核方法)")
def get_assessment_xlsx(
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    config: Config,
    region: Region = None,
    start: From = "",
    end: To = "",
) -> Response:
    now = clock.now()
    period = service.make_period(start, end, now=now)
    result = service.compute(
        session,
        region=access_region(session, user, region or user.region_code),
        period=period,
        config=config,
        ctx=ctx,
        now=now,
    )
    name = f"assessment-{result.region.code}-{period.first}-{period.last}.xlsx"
    return Response(
        to_xlsx(result),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
