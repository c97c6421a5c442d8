"""HTML pages of the event loop: worklists and search, report form, event page; residents' pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select

from gridgov.accounts.rules import ROLE_LABELS
from gridgov.core import clock
from gridgov.core.errors import DomainError, Rejected
from gridgov.events import service
from gridgov.events.api import Ctx, Names, default_channel
from gridgov.events.models import Event
from gridgov.events.rules import ACTION_LABELS, STATUS_LABELS, Action
from gridgov.geo.service import region_path
from gridgov.web.deps import PageUser, SessionDep

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    base = {
        "status_labels": STATUS_LABELS,
        "action_labels": ACTION_LABELS,
        "role_labels": ROLE_LABELS,
        "channels": service.CHANNELS,
        "local": clock.local,
    }
    return templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)


def _user_ctx(session: Any, user: Any) -> dict[str, Any]:
    return {"user": user, "user_path": region_path(session, user.region_code)}


def _parse_local(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(
            f"{field} 日期格式无效: {value!r} (例: 2026-11-01)", code="bad_date"
        ) from None
    return dt.replace(tzinfo=clock.DISPLAY_TZ) if dt.tzinfo is None else dt


@router.get("/events", response_class=HTMLResponse)
def events_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    ctx: Ctx,
    list: Annotated[str, Query(alias="list")] = "todo",
    status: str = "",
    category: str = "",
    region: str = "",
    channel: str = "",
    start: str = "",
    end: str = "",
    q: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    searching = any((status, category, region, channel, start, end, q)) or list == "search"
    if searching:
        f = service.SearchFilter(
            status=[status] if status else [],
            category=[category] if category else [],
            region=region or None,
            channel=[channel] if channel else [],
            start=_parse_local(start, "起始日期"),
            end=_parse_local(end, "截止日期"),
            text=q,
        )
        stmt = service.search_query(session, user, f)
    else:
        stmt = service.worklist_query(user, list, clock.now())
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(stmt.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    names = Names(session, ctx)
    counts = {
        name: session.scalar(
            select(func.count()).select_from(
                service.worklist_query(user, name, clock.now()).order_by(None).subquery()
            )
        )
        for name in service.WORKLISTS
    }
    notes = service.notifications_for(session, user, unread_only=True, limit=10)
    query = {
        k: v
        for k, v in {
            "status": status,
            "category": category,
            "region": region,
            "channel": channel,
            "start": start,
            "end": end,
            "q": q,
        }.items()
        if v
    }
    return _render(
        request,
        "events/list.html",
        {
            **_user_ctx(session, user),
            "current": "search" if searching else list,
            "worklists": service.WORKLISTS,
            "counts": counts,
            "rows": names.holders(rows),
            "total": total,
            "page": page,
            "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
            "query": query,
            "query_string": urlencode(query),
            "catalog": ctx.catalog,
            "now": clock.now(),
            "notes": notes,
            "note_numbers": dict(
                session.execute(
                    select(Event.id, Event.tracking_no).where(
                        Event.id.in_({n.event_id for n, _ in notes})
                    )
                ).all()
            ),
        },
    )


@router.get("/events/new", response_class=HTMLResponse)
def new_event_page(request: Request, user: PageUser, session: SessionDep, ctx: Ctx) -> Response:
    return _render(
        request,
        "events/new.html",
        {
            **_user_ctx(session, user),
            "catalog": ctx.catalog,
            "channel": default_channel(user.roles),
            "error": None,
            "form": {},
        },
    )


AFTER_PHOTOS = "after_photos"  # the self-closure's after photos, a file field of their own


async def _photo_bytes(
    request: Request,
) -> tuple[dict[str, str], list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """The form's text fields, its photos, and its after photos (field AFTER_PHOTOS)."""
    form = await request.form()
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    after: list[tuple[str, bytes]] = []
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        elif isinstance(value, UploadFile) or hasattr(value, "read"):
            data = await value.read()
            if data:
                (after if key == AFTER_PHOTOS else files).append(
                    (getattr(value, "filename", "") or "", data)
                )
    return fields, files, after


def _report_input(
    fields: dict[str, str], photos: list[str], after: list[str] | None = None
) -> service.ReportInput:
    def num(name: str) -> float | None:
        v = fields.get(name, "").strip()
        if not v:
            return None
        try:
            return float(v)
        except ValueError:
            raise Rejected(f"{name} 须为数字, 不是 {v!r}", code="bad_number") from None

    return service.ReportInput(
        category_code=fields.get("category", ""),
        description=fields.get("description", ""),
        urgency=fields.get("urgency") or None,
        lon=num("lon"),
        lat=num("lat"),
        crs=fields.get("crs", "wgs84") or "wgs84",
        grid_code=fields.get("grid_code", "").strip() or None,
        address=fields.get("address", ""),
        photos=photos,
        after_photos=list(after or []),
        reporter_name=fields.get("reporter_name", ""),
        reporter_phone=fields.get("reporter_phone", ""),
        self_close=fields.get("self_close") == "on",
        result=fields.get("result", ""),
    )


@router.post("/events/new", response_model=None)
async def new_event_submit(
    request: Request, user: PageUser, session: SessionDep, ctx: Ctx
) -> Response:
    fields, files, after_files = await _photo_bytes(request)
    from starlette.concurrency import run_in_threadpool

    # The request's own session (one transaction per request; SQLite allows one writer).
    def work() -> Response:
        try:
            now = clock.now()
            photos, after = (
                [
                    service.upload_photo(
                        session, ctx=ctx, user=user, data=d, filename=n, now=now
                    ).sha256
                    for n, d in group
                ]
                for group in (files, after_files)
            )
            outcome = service.report_event(
                session,
                ctx=ctx,
                user=user,
                data=_report_input(fields, photos, after),
                channel=fields.get("channel") or default_channel(user.roles),
                now=now,
                idempotency_key=fields.get("idempotency_key") or None,
            )
            return RedirectResponse(
                f"/events/{outcome.event.tracking_no}?done=report", status_code=303
            )
        except DomainError as exc:
            session.rollback()
            return _render(
                request,
                "events/new.html",
                {
                    **_user_ctx(session, user),
                    "catalog": ctx.catalog,
                    "channel": fields.get("channel", ""),
                    "error": exc.msg,
                    "form": fields,
                },
                status=exc.status_code,
            )

    return await run_in_threadpool(work)


@router.get("/figures", response_class=HTMLResponse)
def figures_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    code: Annotated[str | None, Query(max_length=15)] = None,
    start: str = "",
    end: str = "",
) -> Response:
    from datetime import timedelta

    from gridgov.accounts.access import access_region
    from gridgov.events import figures as fig

    region = access_region(session, user, code or user.region_code)
    e = _parse_local(end, "截止日期") or clock.now()
    s = _parse_local(start, "起始日期") or e - timedelta(days=30)
    if end:
        e += timedelta(days=1)  # the end date is inclusive on the page
    if e <= s:
        raise Rejected("截止日期须晚于起始日期", code="bad_period")
    total, children = fig.figures(session, region_code=region.code, start=s, end=e)
    return _render(
        request,
        "events/figures.html",
        {
            **_user_ctx(session, user),
            "region": region,
            "path": region_path(session, region.code),
            "total": total,
            "children": children,
            "labels": fig.LABELS,
            "start": clock.local(s).date().isoformat(),
            "end": clock.local(e - timedelta(seconds=1)).date().isoformat(),
            "root": user.region_code,
        },
    )


@router.get("/events/{ref}", response_class=HTMLResponse)
def event_page(
    request: Request,
    ref: str,
    user: PageUser,
    session: SessionDep,
    ctx: Ctx,
    done: str = "",
    error: str = "",
) -> Response:
    ev = service.access_event(session, user, ref)
    names = Names(session, ctx)
    actions = service.actions_for(user, ev)
    targets = []
    for a in (Action.DISPATCH, Action.REDISPATCH):
        if a in actions:
            targets = [names.unit(u.key) for u in service.targets_for(ctx, ev, a)]
    return _render(
        request,
        "events/detail.html",
        {
            **_user_ctx(session, user),
            "ev": ev,
            "names": names,
            "entries": service.timeline(session, ev),
            "actions": actions,
            "targets": targets,
            "routed": names.unit(ev.routed_unit),
            "done": ACTION_LABELS.get(done, "上报" if done == "report" else ""),
            "error": error,
            "satisfaction": service.SATISFACTION,
            "catalog": ctx.catalog,
        },
    )


@router.post("/events/{ref}/act", response_model=None)
def event_act(
    ref: str,
    user: PageUser,
    session: SessionDep,
    ctx: Ctx,
    action: Annotated[str, Form()],
    version: Annotated[int, Form()],
    comment: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
    extension: Annotated[str, Form()] = "",
    satisfaction: Annotated[str, Form()] = "",
) -> Response:
    ev = service.access_event(session, user, ref)
    no = ev.tracking_no
    data = service.ActInput(
        action=action,
        version=version,
        comment=comment,
        target=target or None,
        extension=extension or None,
        satisfaction=satisfaction or None,
    )
    try:
        service.act(session, ctx=ctx, user=user, ref=ref, data=data, now=clock.now())
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        session.rollback()
        return RedirectResponse(f"/events/{no}?{urlencode({'error': exc.msg})}", status_code=303)
    return RedirectResponse(f"/events/{no}?done={action}", status_code=303)


@router.get("/events-photos/{sha256}/{variant}", response_model=None)
def event_photo(
    sha256: str, variant: str, user: PageUser, session: SessionDep, ctx: Ctx
) -> Response:
    p = service.access_photo(session, user, sha256)
    if ctx.photos is None or variant not in ("original", "thumb"):
        raise Rejected("照片不可用", code="photo_not_found")
    media = p.media_type if variant == "original" else "image/jpeg"
    return FileResponse(ctx.photos.path(p.sha256, variant), media_type=media)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ residents' pages


@router.get("/report", response_class=HTMLResponse)
def public_report_page(request: Request, ctx: Ctx) -> Response:
    return _render(
        request,
        "public/report.html",
        {"user": None, "catalog": ctx.catalog, "error": None, "form": {}},
    )


@router.post("/report", response_model=None)
async def public_report_submit(request: Request, session: SessionDep, ctx: Ctx) -> Response:
    fields, files, _ = await _photo_bytes(request)  # a resident's report has no self-closure
    from starlette.concurrency import run_in_threadpool

    def work() -> Response:
        try:
            now = clock.now()
            if len(files) > 3:
                raise Rejected("群众上报最多附 3 张照片", code="too_many_photos")
            photos = [
                service.upload_photo(
                    session, ctx=ctx, user=None, data=d, filename=n, now=now
                ).sha256
                for n, d in files
            ]
            data = _report_input(fields, photos)
            data.self_close = False
            outcome = service.report_event(
                session,
                ctx=ctx,
                user=None,
                data=data,
                channel="public",
                now=now,
                idempotency_key=fields.get("idempotency_key") or None,
                client="web",
            )
            return RedirectResponse(f"/track?no={outcome.event.tracking_no}&new=1", status_code=303)
        except DomainError as exc:
            session.rollback()
            return _render(
                request,
                "public/report.html",
                {"user": None, "catalog": ctx.catalog, "error": exc.msg, "form": fields},
                status=exc.status_code,
            )

    return await run_in_threadpool(work)


PUBLIC_ACTIONS = {
    "report": "已提交",
    "accept": "已受理",
    "refuse": "不予受理",
    "dispatch": "已分派处理",
    "redispatch": "已分派处理",
    "escalate": "已转上级处理",
    "auto_escalate": "已转上级处理",
    "feedback": "已处理, 正在核查",
    "close": "已办结",
    "reopen": "重新办理",
}


@router.get("/track", response_class=HTMLResponse)
def track_page(request: Request, session: SessionDep, no: str = "", new: str = "") -> Response:
    ev = None
    steps: list[tuple[datetime, str]] = []
    error = None
    if no:
        try:
            ev = service.public_event(session, no)
        except DomainError as exc:
            error = exc.msg
        if ev is not None:
            steps = [
                (e.at, PUBLIC_ACTIONS[e.action])
                for e in service.timeline(session, ev)
                if e.action in PUBLIC_ACTIONS
            ]
    photos = [] if ev is None else service.public_photos(session, ev)
    return _render(
        request,
        "public/track.html",
        {
            "user": None,
            "ev": ev,
            "no": no,
            "steps": steps,
            "error": error,
            "new": bool(new),
            "photos": photos,
        },
        status=404 if error else 200,
    )


@router.get("/public/events/{no}/photos/{sha256}", response_model=None)
def public_photo(no: str, sha256: str, session: SessionDep, ctx: Ctx) -> Response:
    p = service.public_photo(session, no, sha256)
    if ctx.photos is None:
        raise Rejected("照片不可用", code="photo_not_found")
    return FileResponse(ctx.photos.path(p.sha256, "public"), media_type=p.media_type)
