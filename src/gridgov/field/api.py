"""JSON API of the field app under /api/field: session, home, targets, tasks, patrols, sync."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from gridgov.accounts import service as accounts
from gridgov.core import clock
from gridgov.core.errors import Unauthorized
from gridgov.events.api import Ctx
from gridgov.events.models import Event
from gridgov.events.rules import STATUS_LABELS
from gridgov.field import rules, service
from gridgov.field.models import Patrol, PatrolDay
from gridgov.field.schemas import (
    EventBrief,
    HomeOut,
    PatrolDayOut,
    PatrolOut,
    SessionOut,
    SyncIn,
    SyncOut,
    SyncResultOut,
    TargetOut,
    TaskOut,
)
from gridgov.registry.models import CheckTask
from gridgov.web.deps import CurrentUser, SessionDep, SettingsDep


def _no_store(response: Response) -> None:
    # Answers carry personal data: no browser or proxy cache may keep them.
    response.headers["Cache-Control"] = "no-store"


router = APIRouter(prefix="/api/field", tags=["field"], dependencies=[Depends(_no_store)])

FIELD_NAMES = rules.FACT_NAMES


@router.post("/session", response_model=SessionOut, summary="移动端登录 (会话令牌, 闲置超时)")
def open_session(
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Any:
    now = clock.now()
    try:
        user = accounts.sign_in(
            session, settings=settings, username=username, password=password, now=now
        )
    except Unauthorized as exc:
        # Answered, not raised, so the failure count is committed.
        return JSONResponse({"detail": [{"code": exc.code, "msg": exc.msg}]}, status_code=401)
    # A session token: the idle limit (GB/T 22239) applies to it as to a page login.
    token, row = accounts.issue_token(
        session,
        user=user,
        kind=accounts.TOKEN_SESSION,
        now=now,
        lifetime=timedelta(hours=settings.session_hours),
    )
    return SessionOut(
        access_token=token,
        expires_at=row.expires_at.isoformat(),
        idle_minutes=settings.idle_minutes,
        username=user.username,
        display_name=user.display_name,
        region_code=user.region_code,
        roles=user.roles,
    )


def event_brief(ev: Event) -> EventBrief:
    return EventBrief(
        tracking_no=ev.tracking_no,
        title=ev.title,
        category_name=ev.category_name,
        status=ev.status,
        status_name=STATUS_LABELS.get(ev.status, ev.status),
        version=ev.version,
        deadline_at=ev.deadline_at,
        warning_level=ev.warning_level,
        lon=ev.lon,
        lat=ev.lat,
        description=ev.description,
        photos=list(ev.photos or []),
    )


def task_out(session: Session, task: CheckTask, user: Any) -> TaskOut:
    return TaskOut(
        id=task.id,
        entity=task.entity,
        entity_id=task.entity_id,
        subject=service.task_subject(session, task),
        field=task.field,
        field_name=FIELD_NAMES.get(task.field, task.field),
        legal=service.is_legal_fact(task),
        kind=task.kind,
        candidates=service.task_candidates(task, user),
        grid_code=task.grid_code,
        created_at=task.created_at,
    )


def day_out(d: PatrolDay, username: str, display_name: str) -> PatrolDayOut:
    return PatrolDayOut(
        day=d.day,
        username=username,
        display_name=display_name,
        grid_code=d.grid_code,
        patrols=d.patrols,
        distance_m=d.distance_m,
        duration_s=d.duration_s,
        buildings=d.buildings,
        buildings_covered=d.buildings_covered,
        coverage=d.coverage,
    )


@router.get("/home", response_model=HomeOut, summary="首页: 我的网格与今日工作")
def home(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> HomeOut:
    h = service.home(session, user=user, now=clock.now())
    return HomeOut(
        username=user.username,
        display_name=user.display_name,
        grid=h.grid,
        counts=h.counts,
        todo=[event_brief(e) for e in h.todo],
        due_soon=[event_brief(e) for e in h.due_soon],
        overdue=[event_brief(e) for e in h.overdue],
        tasks=[task_out(session, t, user) for t in h.tasks],
        due_visits=h.due_visits,
        today=day_out(h.today, user.username, user.display_name) if h.today else None,
        idle_minutes=settings.idle_minutes,
    )


@router.get("/categories", summary="事件类别 (我常用的在前)")
def categories(user: CurrentUser, session: SessionDep, ctx: Ctx) -> list[dict[str, Any]]:
    return service.categories_for(session, ctx=ctx, user=user)


@router.get("/targets", response_model=list[TargetOut], summary="走访对象: 搜索或离我最近")
def targets(
    user: CurrentUser,
    session: SessionDep,
    kind: Annotated[str, Query(description="house, person, organization")] = "house",
    q: Annotated[str, Query(max_length=100)] = "",
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[TargetOut]:
    found = service.search_targets(
        session, user=user, kind=kind, q=q, lon=lon, lat=lat, limit=limit
    )
    return [TargetOut(**vars(t)) for t in found]


@router.get("/check-tasks", response_model=list[TaskOut], summary="我的核查任务")
def check_tasks(user: CurrentUser, session: SessionDep) -> list[TaskOut]:
    return [task_out(session, t, user) for t in service.list_check_tasks(session, user=user)]


@router.get("/check-tasks/{task_id}", response_model=TaskOut, summary="核查任务详情: 候选值与来源")
def check_task(task_id: int, user: CurrentUser, session: SessionDep) -> TaskOut:
    return task_out(session, service.access_check_task(session, user, task_id), user)


def _patrol(patrol_id: int, user: CurrentUser, session: SessionDep) -> Patrol:
    return service.access_patrol(session, user, patrol_id)


@router.get("/patrols", response_model=list[PatrolOut], summary="我的巡查")
def patrols(user: CurrentUser, session: SessionDep) -> list[PatrolOut]:
    return [
        patrol_out(session, p, with_track=False) for p in service.my_patrols(session, user=user)
    ]


@router.get(
    "/patrols/{patrol_id}", response_model=PatrolOut, summary="巡查详情与轨迹 (本人及其上级)"
)
def patrol(p: Annotated[Patrol, Depends(_patrol)], session: SessionDep) -> PatrolOut:
    return patrol_out(session, p, with_track=True)


def patrol_out(session: Session, p: Patrol, *, with_track: bool) -> PatrolOut:
    track = [[f.lon, f.lat] for f in service.track_of(session, p)] if with_track else []
    return PatrolOut(
        patrol_id=p.id,
        patrol=p.client_key,
        status=p.status,
        grid_code=p.grid_code,
        started_at=p.started_at,
        ended_at=p.ended_at,
        points=p.points,
        distance_m=p.distance_m,
        duration_s=p.duration_s,
        buildings=p.buildings,
        buildings_covered=p.buildings_covered,
        coverage=p.coverage,
        track=track,
        track_purged=p.track_purged_at is not None,
    )


@router.get("/patrol-days", response_model=list[PatrolDayOut], summary="巡查日统计 (考核用)")
def patrol_days(
    user: CurrentUser,
    session: SessionDep,
    region: Annotated[str | None, Query(max_length=15)] = None,
    start: date | None = None,
    end: date | None = None,
) -> list[PatrolDayOut]:
    rows = service.patrol_days(session, user=user, region=region, start=start, end=end)
    return [day_out(d, u.username, u.display_name) for d, u in rows]


@router.post("/sync", response_model=SyncOut, summary="同步离线队列 (每项按幂等键只处理一次)")
def sync(body: SyncIn, user: CurrentUser, session: SessionDep, ctx: Ctx) -> SyncOut:
    items = [service.SyncItem(i.key, i.kind, i.payload) for i in body.items]
    try:
        results = service.sync(session, ctx=ctx, user=user, items=items, now=clock.now())
    except service.DuplicateInFlight:
        # Another request with the same item committed first: start over, it now replays.
        session.rollback()
        results = service.sync(session, ctx=ctx, user=user, items=items, now=clock.now())
    return SyncOut(results=[SyncResultOut(**vars(r)) for r in results])
