"""JSON API of early warning under /api/v1/analytics/warnings: list, detail, handling."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from gridgov.analytics.warnings import rules, service
from gridgov.analytics.warnings.models import EarlyWarning
from gridgov.analytics.warnings.schemas import (
    ActIn,
    ActionOut,
    WarningDetailOut,
    WarningOut,
    WarningPage,
)
from gridgov.core import clock
from gridgov.geo.service import region_path
from gridgov.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1/analytics/warnings", tags=["预警"])


def warning_out(w: EarlyWarning) -> dict[str, Any]:
    return {
        "id": w.id,
        "kind": w.kind,
        "kind_name": service.kind_label(w.kind),
        "region_code": w.region_code,
        "region_level": w.region_level,
        "category_code": w.category_code,
        "day": w.day,
        "title": w.title,
        "reason": w.reason,
        "evidence": w.evidence,
        "link": w.link,
        "status": w.status,
        "status_name": rules.STATUS_LABELS.get(rules.Status(w.status), w.status),
        "raised_at": w.raised_at,
        "updated_at": w.updated_at,
        "acknowledged_at": w.acknowledged_at,
        "closed_at": w.closed_at,
    }


def detail_out(session: Session, w: EarlyWarning) -> WarningDetailOut:
    return WarningDetailOut(
        **warning_out(w),
        region_path=[r.as_dict() for r in region_path(session, w.region_code)],
        actions=rules.actions_for(w.status),
        history=[
            ActionOut(
                seq=a.seq,
                at=a.at,
                actor_name=a.actor_name,
                action=a.action,
                action_name=rules.ACTION_LABELS.get(rules.Action(a.action), a.action),
                from_status=a.from_status,
                to_status=a.to_status,
                note=a.note,
            )
            for a in service.history(session, w)
        ],
    )


@router.get("", response_model=WarningPage, summary="预警列表 (管辖范围内)")
def list_warnings(
    session: SessionDep,
    user: CurrentUser,
    kind: Annotated[str, Query(description="rise, hotspot, dispute, visit")] = "",
    status: Annotated[
        str, Query(description="open, acknowledged, followed_up, closed, active (未关闭)")
    ] = "",
    region: Annotated[str, Query(description="区域或网格代码 (管辖范围内)")] = "",
    category: Annotated[str, Query(max_length=8)] = "",
    start: date | None = None,
    end: date | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    f = service.WarningFilter(kind, status, region, category, start, end)
    found = service.list_warnings(session, user, f, page=page, size=size)
    return WarningPage(
        total=found.total,
        page=page,
        size=size,
        active_by_kind=found.counts,
        items=[WarningOut(**warning_out(w)) for w in found.items],
    )


@router.get(
    "/{warning_id}", response_model=WarningDetailOut, summary="预警详情: 理由、证据、处置记录"
)
def get_warning(warning_id: int, session: SessionDep, user: CurrentUser) -> Any:
    return detail_out(session, service.access_warning(session, user, warning_id))


@router.post(
    "/{warning_id}/actions", response_model=WarningDetailOut, summary="签收、跟进或关闭预警"
)
def act(warning_id: int, body: ActIn, session: SessionDep, user: CurrentUser) -> Any:
    w = service.act(
        session, user=user, warning_id=warning_id, action=body.action, note=body.note,
        now=clock.now(),
    )  # fmt: skip
    return detail_out(session, w)
