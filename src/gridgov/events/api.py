"""JSON API of the event closed loop: report, act, look up, worklists, search, export, photos."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridgov.core import clock
from gridgov.core.errors import Conflict, Rejected
from gridgov.events import export as export_mod
from gridgov.events import service
from gridgov.events.models import Event
from gridgov.events.rules import ACTION_LABELS, STATUS_LABELS, Action, Unit
from gridgov.events.schemas import (
    ActIn,
    CategoryOut,
    EntryOut,
    EventOut,
    EventPage,
    NotificationOut,
    PhotoOut,
    ReportIn,
    UnitOut,
)
from gridgov.events.service import EventContext
from gridgov.geo import service as geo
from gridgov.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["events"])


def get_ctx(settings: SettingsDep) -> EventContext:
    return service.context_from_settings(settings)


Ctx = Annotated[EventContext, Depends(get_ctx)]


def _event(ref: str, user: CurrentUser, session: SessionDep) -> Event:
    return service.access_event(session, user, ref)


AccessibleEvent = Annotated[Event, Depends(_event)]


class Names:
    """Region and unit names for one response, looked up in one query per batch of codes."""

    def __init__(self, session: Session, ctx: EventContext) -> None:
        self.session, self.ctx = session, ctx
        self._regions: dict[str, str] = {}

    def prime(self, names: dict[str, str]) -> None:
        """Names already looked up elsewhere in this request."""
        self._regions.update(names)

    def prefetch(self, codes: Iterable[str | None]) -> None:
        """Load the names of these region codes (and unit keys' regions) in one query."""
        wanted = {Unit.parse(c).region_code for c in codes if c} - self._regions.keys()
        if wanted:
            self._regions.update(geo.region_names(self.session, wanted))
            for code in wanted:
                self._regions.setdefault(code, code)

    def holders(self, rows: Sequence[Event]) -> list[tuple[Event, UnitOut | None]]:
        """Each event with the unit now holding it (list pages)."""
        self.prefetch(ev.holder_unit for ev in rows)
        return [(ev, self.unit(ev.holder_unit)) for ev in rows]

    def region(self, code: str) -> str:
        if code not in self._regions:
            self.prefetch([code])
        return self._regions[code]

    def unit(self, key: str | None) -> UnitOut | None:
        if not key:
            return None
        u = Unit.parse(key)
        name = self.region(u.region_code)
        if u.sub:
            name += self.ctx.catalog.unit_name(u.level, u.sub)
        elif u.level <= 3:
            name += "指挥中心"
        return UnitOut(key=key, name=name)


def _name_keys(ev: Event) -> tuple[str | None, ...]:
    """The region codes and unit keys an event's answer names."""
    return (
        *(ev.district_code, ev.town_code, ev.village_code, ev.grid_code),
        *(ev.receiver_unit, ev.holder_unit, ev.sender_unit, ev.routed_unit),
    )


def events_out(rows: Sequence[Event], names: Names) -> list[EventOut]:
    names.prefetch(k for ev in rows for k in _name_keys(ev))
    return [event_out(ev, names) for ev in rows]


def event_out(ev: Event, names: Names, *, user: Any = None, with_actions: bool = False) -> EventOut:
    names.prefetch(_name_keys(ev))
    path = [
        {"code": c, "name": names.region(c)}
        for c in (ev.district_code, ev.town_code, ev.village_code, ev.grid_code)
    ]
    actions: list[str] = []
    targets: list[UnitOut] = []
    if with_actions and user is not None:
        acts = service.actions_for(user, ev)
        actions = [a.value for a in acts]
        for a in (Action.DISPATCH, Action.REDISPATCH):
            if a in acts:
                units = service.targets_for(names.ctx, ev, a)
                names.prefetch(u.key for u in units)
                targets = [t for t in (names.unit(u.key) for u in units) if t]
    receiver = names.unit(ev.receiver_unit)
    holder = names.unit(ev.holder_unit)
    assert receiver is not None and holder is not None  # noqa: S101 (keys are never empty)
    return EventOut(
        id=ev.id,
        tracking_no=ev.tracking_no,
        version=ev.version,
        category=ev.category_code,
        category_name=ev.category_name,
        urgency=ev.urgency,
        title=ev.title,
        description=ev.description,
        channel=ev.channel,
        status=ev.status,
        status_name=STATUS_LABELS.get(ev.status, ev.status),
        grid_code=ev.grid_code,
        path=path,
        lon=ev.lon,
        lat=ev.lat,
        location_accuracy_m=ev.location_accuracy_m,
        address=ev.address,
        reporter_name=ev.reporter_name,
        reporter_phone=ev.reporter_phone,
        receiver=receiver,
        holder=holder,
        sender=names.unit(ev.sender_unit),
        routed=names.unit(ev.routed_unit),
        discovered_at=ev.discovered_at,
        reported_at=ev.reported_at,
        accepted_at=ev.accepted_at,
        dispatched_at=ev.dispatched_at,
        closed_at=ev.closed_at,
        allowance=ev.allowance,
        deadline_at=ev.deadline_at,
        spent_seconds=ev.spent_seconds,
        allowed_seconds=ev.allowed_seconds,
        warning_level=ev.warning_level,
        extension=ev.extension,
        supervised_count=ev.supervised_count,
        self_closed=ev.self_closed,
        closed_level=ev.closed_level,
        closed_on_time=ev.closed_on_time,
        result=ev.result,
        satisfaction=ev.satisfaction,
        photos=list(ev.photos or []),
        actions=actions,
        targets=targets,
    )


def _page(session: Session, stmt: Any, page: int, size: int) -> tuple[int, list[Event]]:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = list(session.scalars(stmt.offset((page - 1) * size).limit(size)))
    return total, rows


# ------------------------------------------------------------------------------- catalog


@router.get("/events/catalog", response_model=list[CategoryOut], summary="事件类别目录 (33+1)")
def catalog(user: CurrentUser, ctx: Ctx) -> list[CategoryOut]:
    return [
        CategoryOut(
            code=c.code,
            name=c.name,
            description=c.description,
            platform=c.platform,
            department=c.department,
            level=c.level,
            self_close=c.self_close,
            deadlines=dict(c.deadlines),
        )
        for c in ctx.catalog.categories.values()
    ]


# -------------------------------------------------------------------------------- report


def default_channel(roles: list[str]) -> str:
    if "grid_worker" in roles:
        return "grid"
    if "department_staff" in roles and not any(
        r.endswith("_staff") and r != "department_staff" for r in roles
    ):
        return "department"
    return "staff"


@router.post("/events", response_model=EventOut, status_code=201, summary="上报事件")
def report(
    body: ReportIn,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> EventOut:
    data = service.ReportInput(
        category_code=body.category,
        description=body.description,
        urgency=body.urgency,
        title=body.title,
        lon=body.lon,
        lat=body.lat,
        crs=body.crs,
        accuracy_m=body.accuracy_m,
        grid_code=body.grid_code,
        address=body.address,
        discovered_at=body.discovered_at,
        photos=body.photos,
        reporter_name=body.reporter_name,
        reporter_phone=body.reporter_phone,
        self_close=body.self_close,
        result=body.result,
        after_photos=body.after_photos,
    )
    outcome = service.report_event(
        session,
        ctx=ctx,
        user=user,
        data=data,
        channel=body.channel or default_channel(user.roles),
        now=clock.now(),
        idempotency_key=idempotency_key,
    )
    if outcome.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/events/{outcome.event.tracking_no}"
    names = Names(session, ctx)
    names.prime(outcome.names)
    return event_out(outcome.event, names, user=user, with_actions=True)


# ----------------------------------------------------------------------------------- act


@router.get("/events/{ref}", response_model=EventOut, summary="事件详情")
def get_event(ev: AccessibleEvent, user: CurrentUser, session: SessionDep, ctx: Ctx) -> EventOut:
    return event_out(ev, Names(session, ctx), user=user, with_actions=True)


@router.get("/events/{ref}/timeline", response_model=list[EntryOut], summary="事件时间线")
def get_timeline(ev: AccessibleEvent, session: SessionDep) -> list[EntryOut]:
    return [
        EntryOut(
            seq=e.seq,
            at=e.at,
            actor_name=e.actor_name,
            actor_role=e.actor_role,
            actor_unit=e.actor_unit,
            action=e.action,
            action_name=ACTION_LABELS.get(e.action, e.action),
            from_status=e.from_status,
            to_status=e.to_status,
            from_unit=e.from_unit,
            to_unit=e.to_unit,
            comment=e.comment,
            attachments=list(e.attachments or []),
            data=dict(e.data or {}),
            hash=e.hash,
        )
        for e in service.timeline(session, ev)
    ]


@router.post(
    "/events/{ref}/actions",
    response_model=EventOut,
    summary="对事件执行操作 (受理、分派、签收、反馈、结案、督办等)",
    responses={409: {"description": "版本冲突: 事件已被他人处理, 返回当前状态"}},
)
def post_action(
    ref: str,
    body: ActIn,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> Any:
    version = body.version
    if version is None and if_match:
        try:
            version = int(if_match.strip().strip('"').removeprefix("W/").strip('"'))
        except ValueError:
            raise Rejected(
                f"If-Match 须为事件版本号, 不是 {if_match!r}", code="bad_if_match"
            ) from None
    data = service.ActInput(
        action=body.action,
        version=version,
        comment=body.comment,
        target=body.target,
        extension=body.extension,
        photos=body.photos,
        satisfaction=body.satisfaction,
    )
    try:
        ev = service.act(session, ctx=ctx, user=user, ref=ref, data=data, now=clock.now())
    except Conflict as exc:
        if exc.code != "version_conflict":
            raise
        # Report the state that won, read after our own attempt is rolled back.
        session.rollback()
        current = service.access_event(session, user, ref)
        out = event_out(current, Names(session, ctx), user=user, with_actions=True)
        return JSONResponse(
            {
                "detail": [{"code": exc.code, "msg": exc.msg}],
                "current": out.model_dump(mode="json"),
            },
            status_code=409,
            headers={"ETag": str(current.version)},
        )
    return event_out(ev, Names(session, ctx), user=user, with_actions=True)


# ------------------------------------------------------------------ worklists and search


@router.get(
    "/worklists/{name}",
    response_model=EventPage,
    summary="工作清单: todo, due_soon, overdue, area (辖区在办), supervised, done",
)
def worklist(
    name: str,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EventPage:
    stmt = service.worklist_query(user, name, clock.now())
    total, rows = _page(session, stmt, page, size)
    names = Names(session, ctx)
    return EventPage(total=total, page=page, size=size, items=events_out(rows, names))


def search_filter(
    user: CurrentUser,
    status: Annotated[list[str] | None, Query(description="状态, 可多个")] = None,
    category: Annotated[list[str] | None, Query(description="类别代码, 可多个")] = None,
    region: Annotated[str | None, Query(description="区域或网格代码")] = None,
    channel: Annotated[list[str] | None, Query()] = None,
    start: Annotated[datetime | None, Query(description="上报时间起 (含)")] = None,
    end: Annotated[datetime | None, Query(description="上报时间止 (不含)")] = None,
    q: Annotated[str, Query(max_length=100, description="标题、描述、地址或查询编号")] = "",
    overdue: bool | None = None,
) -> service.SearchFilter:
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise Rejected(f"{name} 须带时区, 如 2026-11-01T00:00:00+08:00", code="naive_time")
    return service.SearchFilter(
        status=status or [],
        category=category or [],
        region=region,
        channel=channel or [],
        start=start,
        end=end,
        text=q,
        overdue=overdue,
    )


Filter = Annotated[service.SearchFilter, Depends(search_filter)]


@router.get("/events", response_model=EventPage, summary="检索事件")
def search(
    f: Filter,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EventPage:
    stmt = service.search_query(session, user, f)
    total, rows = _page(session, stmt, page, size)
    names = Names(session, ctx)
    return EventPage(total=total, page=page, size=size, items=events_out(rows, names))


@router.get("/events-export.{fmt}", summary="导出检索结果 (csv 或 xlsx)")
def export(fmt: str, f: Filter, user: CurrentUser, session: SessionDep, ctx: Ctx) -> Response:
    stmt = service.search_query(session, user, f)
    return export_mod.export_response(session, ctx, stmt, fmt)


# -------------------------------------------------------------------------------- photos


def photo_out(p: Any) -> PhotoOut:
    return PhotoOut(
        sha256=p.sha256,
        media_type=p.media_type,
        width=p.width,
        height=p.height,
        size=p.size,
        url=f"/api/v1/photos/{p.sha256}",
        thumb_url=f"/api/v1/photos/{p.sha256}/thumb",
    )


@router.post(
    "/photos", response_model=PhotoOut, status_code=201, summary="上传照片 (JPEG/PNG/WebP)"
)
async def upload(
    user: CurrentUser, session: SessionDep, ctx: Ctx, file: Annotated[UploadFile, File()]
) -> PhotoOut:
    limit = ctx.photos.max_bytes if ctx.photos is not None else 0
    data = await file.read(limit + 1)
    from starlette.concurrency import run_in_threadpool

    # The request's own session: one transaction per request (SQLite allows one writer).
    def store() -> PhotoOut:
        photo = service.upload_photo(
            session, ctx=ctx, user=user, data=data, filename=file.filename or "", now=clock.now()
        )
        return photo_out(photo)

    return await run_in_threadpool(store)


@router.get("/photos/{sha256}", summary="查看照片原图 (含拍摄位置, 仅限工作人员)")
def photo(sha256: str, user: CurrentUser, session: SessionDep, ctx: Ctx) -> FileResponse:
    p = service.access_photo(session, user, sha256)
    if ctx.photos is None:
        raise Rejected("本系统未配置照片存储", code="no_photo_store")
    return FileResponse(ctx.photos.path(p.sha256, "original"), media_type=p.media_type)


@router.get("/photos/{sha256}/thumb", summary="照片缩略图")
def photo_thumb(sha256: str, user: CurrentUser, session: SessionDep, ctx: Ctx) -> FileResponse:
    p = service.access_photo(session, user, sha256)
    if ctx.photos is None:
        raise Rejected("本系统未配置照片存储", code="no_photo_store")
    return FileResponse(ctx.photos.path(p.sha256, "thumb"), media_type="image/jpeg")


# ------------------------------------------------------------------------- notifications


@router.get("/notifications", response_model=list[NotificationOut], summary="我的通知")
def notifications(
    user: CurrentUser, session: SessionDep, unread: bool = False
) -> list[NotificationOut]:
    rows = service.notifications_for(session, user, unread_only=unread)
    numbers = dict(
        session.execute(
            select(Event.id, Event.tracking_no).where(Event.id.in_({n.event_id for n, _ in rows}))
        ).all()
    )
    return [
        NotificationOut(
            id=n.id,
            event_id=n.event_id,
            tracking_no=numbers.get(n.event_id),
            kind=n.kind,
            message=n.message,
            created_at=n.created_at,
            read=read,
        )
        for n, read in rows
    ]


@router.post("/notifications/read", summary="标记通知为已读")
def read_notifications(ids: list[int], user: CurrentUser, session: SessionDep) -> dict[str, int]:
    return {"marked": service.mark_read(session, user=user, ids=ids, now=clock.now())}


# ------------------------------------------------------------------------------- figures


def _period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    from datetime import timedelta

    now = clock.now()
    end = end or now
    start = start or end - timedelta(days=30)
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise Rejected(f"{name} 须带时区, 如 2026-11-01T00:00:00+08:00", code="naive_time")
    if end <= start:
        raise Rejected("end 须晚于 start", code="bad_period")
    return start, end


@router.get(
    "/figures/{code}", summary="闭环指标: 本级合计与各下级 (结案率、按期结案率、网格自结率等)"
)
def get_figures(
    code: str,
    user: CurrentUser,
    session: SessionDep,
    start: datetime | None = None,
    end: datetime | None = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    from gridgov.accounts.access import access_region
    from gridgov.events import figures as fig

    region = access_region(session, user, code)
    s, e = _period(start, end)
    total, children = fig.figures(session, region_code=region.code, start=s, end=e)
    if format == "csv":
        return Response(
            figures_csv(total, children),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="figures-{region.code}.csv"'},
        )
    return {
        "region": region.code,
        "start": s.isoformat(),
        "end": e.isoformat(),
        "total": total.as_dict(),
        "children": [c.as_dict() for c in children],
    }


def figures_csv(total: Any, children: list[Any]) -> bytes:
    import csv
    import io

    from gridgov.events.figures import LABELS

    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    keys = list(LABELS)
    w.writerow(["代码", "单位", *LABELS.values()])
    for f in [total, *children]:
        d = f.as_dict()
        w.writerow([f.code, f.name, *("" if d[k] is None else d[k] for k in keys)])
    return buf.getvalue().encode("utf-8")
