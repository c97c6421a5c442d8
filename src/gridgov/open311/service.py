"""Open311 GeoReport v2 over the event service: services from the catalog, requests from events."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridgov.core.errors import DomainError, Rejected
from gridgov.events import service as events
from gridgov.events.models import Event, EventPhoto, Open311Client
from gridgov.events.rules import OPEN_STATUSES, STATUS_LABELS, Status, Unit
from gridgov.events.service import EventContext
from gridgov.open311.format import (
    Attribute,
    AttributeValue,
    CreateRequest,
    ListQuery,
    Open311Error,
    Open311Failure,
    RequestCreated,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenInfo,
)

# Only what residents reported through public channels is listed: grid workers' and staff
# reports can name people (disputes, key persons) and stay inside the government network.
LISTED_CHANNELS = ("public", "open311")


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def add_client(session: Session, *, name: str, now: datetime) -> str:
    """Register an Open311 client and return its new api_key (shown once; only a hash is kept)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise Rejected("客户端名称须为 1–64 个字符", code="bad_name")
    if session.scalar(select(Open311Client.id).where(Open311Client.name == name)) is not None:
        raise Rejected(f"Open311 客户端 {name} 已存在", code="duplicate_client")
    api_key = secrets.token_urlsafe(24)
    session.add(Open311Client(name=name, key_hash=key_hash(api_key), created_at=now))
    session.flush()
    return api_key


def client_for_key(session: Session, api_key: str) -> Open311Client:
    client = session.scalar(
        select(Open311Client).where(
            Open311Client.key_hash == key_hash(api_key), Open311Client.revoked_at.is_(None)
        )
    )
    if client is None:
        raise Open311Failure([Open311Error(403, "Invalid api_key (api_key 无效或已停用)")], 403)
    return client


def services(ctx: EventContext) -> list[Service]:
    cat = ctx.catalog
    return [
        Service(
            service_code=c.code,
            service_name=c.name,
            description=c.description or c.name,
            metadata=True,
            type="realtime",
            keywords=",".join(part.strip() for part in c.name.split("/")),
            group=cat.platforms.get(c.platform or "", "其他"),
        )
        for c in cat.categories.values()
    ]


def definition(ctx: EventContext, code: str) -> ServiceDefinition:
    cat = ctx.catalog.categories.get(code)
    if cat is None:
        raise Open311Failure(
            [Open311Error(404, f"service_code {code} not found (没有此服务)")], 404
        )
    values = tuple(
        AttributeValue(key=u, name=ctx.catalog.urgency_names.get(u, u)) for u in cat.urgencies
    )
    return ServiceDefinition(
        service_code=cat.code,
        attributes=(
            Attribute(
                variable=True,
                code="urgency",
                datatype="singlevaluelist",
                required=False,
                order=1,
                datatype_description="紧急程度",
                description="紧急程度 (默认为第一项)",
                values=values,
            ),
        ),
    )


def _fail400(msg: str) -> Open311Failure:
    return Open311Failure([Open311Error(400, msg)], 400)


def create(
    session: Session,
    *,
    ctx: EventContext,
    form: CreateRequest,
    now: datetime,
    idempotency_key: str | None = None,
) -> RequestCreated:
    client = client_for_key(session, form.api_key)
    if form.service_code not in ctx.catalog.categories:
        raise _fail400(f"service_code {form.service_code} not found (没有此服务)")
    if form.lat is None or form.long is None:
        # Addresses are matched to grids by the standard address library (base data center).
        raise _fail400(
            "lat and long are required: address_string/address_id cannot be placed in a grid yet "
            "(请提供经纬度 lat、long)"
        )
    urgency = (form.attributes.get("urgency") or (None,))[0]
    description = (form.description or "").strip()
    if form.media_url:
        description = f"{description}\n图片: {form.media_url}".strip()
    name = " ".join(x for x in (form.last_name, form.first_name) if x).strip()
    data = events.ReportInput(
        category_code=form.service_code,
        description=description or ctx.catalog.categories[form.service_code].name,
        urgency=urgency,
        lon=form.long,
        lat=form.lat,
        crs="wgs84",
        address=form.address_string or "",
        reporter_name=name,
        reporter_phone=form.phone or "",
        reporter_email=form.email or "",
    )
    try:
        outcome = events.report_event(
            session,
            ctx=ctx,
            user=None,
            data=data,
            channel="open311",
            now=now,
            idempotency_key=idempotency_key,
            client=client.name,
        )
    except DomainError as exc:
        raise _fail400(f"{exc.code}: {exc.msg}") from None
    return RequestCreated(
        service_request_id=outcome.event.tracking_no,
        service_notice=f"已受理登记, 查询编号 {outcome.event.tracking_no}",
        account_id=form.account_id,
    )


def token(session: Session, value: str) -> TokenInfo:
    """We create requests at once and never hand out tokens; a tracking number answers as one."""
    ev = session.scalar(
        select(Event).where(Event.tracking_no == value.upper(), Event.channel.in_(LISTED_CHANNELS))
    )
    if ev is None:
        raise Open311Failure([Open311Error(404, f"token {value} not found")], 404)
    return TokenInfo(token=value, service_request_id=ev.tracking_no)


def _request(
    ev: Event, ctx: EventContext, names: dict[str, str], photo: str | None, base: str
) -> ServiceRequest:
    unit = Unit.parse(ev.holder_unit)
    agency = names.get(unit.region_code, unit.region_code)
    if unit.sub:
        agency += ctx.catalog.unit_name(unit.level, unit.sub)
    closed = ev.status not in OPEN_STATUSES
    notes = STATUS_LABELS.get(ev.status, ev.status)
    if ev.status == Status.CLOSED and ev.result:
        notes = f"{notes}: {ev.result[:500]}"
    return ServiceRequest(
        service_request_id=ev.tracking_no,
        status="closed" if closed else "open",
        status_notes=notes,
        service_name=ev.category_name,
        service_code=ev.category_code,
        description=ev.description,
        agency_responsible=agency,
        service_notice=None,
        requested_datetime=ev.reported_at,
        updated_datetime=ev.updated_at,
        expected_datetime=ev.deadline_at,
        address=ev.address or None,
        address_id=None,
        zipcode=None,
        lat=ev.lat,
        long=ev.lon,
        media_url=f"{base}/public/events/{ev.tracking_no}/photos/{photo}" if photo else None,
    )


def requests(
    session: Session, *, ctx: EventContext, query: ListQuery, base: str
) -> list[ServiceRequest]:
    stmt = select(Event).where(Event.channel.in_(LISTED_CHANNELS))
    if query.service_request_ids:
        stmt = stmt.where(Event.tracking_no.in_([s.upper() for s in query.service_request_ids]))
    else:
        if query.service_codes:
            stmt = stmt.where(Event.category_code.in_(query.service_codes))
        if query.statuses and set(query.statuses) != {"open", "closed"}:
            opened = [s.value for s in OPEN_STATUSES]
            if "open" in query.statuses:
                stmt = stmt.where(Event.status.in_(opened))
            else:
                stmt = stmt.where(Event.status.not_in(opened))
        if query.start_date is not None:
            stmt = stmt.where(Event.reported_at >= query.start_date)
        if query.end_date is not None:
            stmt = stmt.where(Event.reported_at <= query.end_date)
    rows = list(session.scalars(stmt.order_by(Event.reported_at.desc()).limit(query.limit)))
    return _render(session, ctx, rows, base)


def one(session: Session, *, ctx: EventContext, request_id: str, base: str) -> list[ServiceRequest]:
    ev = session.scalar(
        select(Event).where(
            Event.tracking_no == request_id.upper(), Event.channel.in_(LISTED_CHANNELS)
        )
    )
    if ev is None:
        raise Open311Failure([Open311Error(404, f"service_request_id {request_id} not found")], 404)
    return _render(session, ctx, [ev], base)


def _render(
    session: Session, ctx: EventContext, rows: list[Event], base: str
) -> list[ServiceRequest]:
    from gridgov.geo.models import Region

    codes = {Unit.parse(e.holder_unit).region_code for e in rows}
    names = {
        r.code: r.name
        for r in session.execute(select(Region.code, Region.name).where(Region.code.in_(codes)))
    }
    ids = [e.id for e in rows]
    photos: dict[int, str] = {}
    if ids:
        for event_id, sha in session.execute(
            select(EventPhoto.event_id, EventPhoto.sha256)
            .where(EventPhoto.event_id.in_(ids), EventPhoto.seq == 1)
            .order_by(EventPhoto.seq)
        ):
            photos.setdefault(event_id, sha)
    return [_request(e, ctx, names, photos.get(e.id), base) for e in rows]
