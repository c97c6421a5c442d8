"""Event use cases: report, act on, look up and list events; the deadline sweep."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gridgov.accounts.access import scope_of
from gridgov.accounts.models import User
from gridgov.accounts.rules import ROLE_LABELS, Role
from gridgov.analytics.rollups import track as rollup_track
from gridgov.core.errors import Conflict, Forbidden, NotFound, Rejected
from gridgov.events.attachments import PhotoStore
from gridgov.events.calendar import WorkCalendar
from gridgov.events.catalog import Catalog, Category, cached_catalog
from gridgov.events.clock import Deadlines
from gridgov.events.models import (
    Event,
    EventEntry,
    EventPhoto,
    Notification,
    NotificationRead,
    Photo,
)
from gridgov.events.rules import (
    ACTION_LABELS,
    CLOCK_RUNNING,
    OPEN_STATUSES,
    Action,
    Actor,
    EventState,
    Status,
    Unit,
    allowed_actions,
    check_action,
    dispatch_targets,
    parent_unit,
    path_codes,
    unit_at,
)
from gridgov.events.timeline import append_entry
from gridgov.geo import service as geo
from gridgov.geo.coords import CRS, to_wgs84
from gridgov.geo.divisions import CITY, DISTRICT, GRID, TOWN, VILLAGE, level_of_code, prefix_range

# Every change of an event also moves its counters in the daily rollups, in the same flush.
rollup_track.install()

TRACKING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CHANNELS: dict[str, str] = {
    "grid": "网格员上报",
    "staff": "工作人员录入",
    "department": "部门移交",
    "hotline": "12345热线",
    "public": "群众上报",
    "open311": "Open311 接口",
}
PUBLIC_CHANNELS = frozenset({"public", "open311"})
SATISFACTION = {"satisfied": "满意", "fair": "基本满意", "unsatisfied": "不满意"}


# ------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class EventContext:
    """The configuration event services need: catalog, working calendar, photo store."""

    catalog: Catalog
    deadlines: Deadlines
    photos: PhotoStore | None = None

    @property
    def calendar(self) -> WorkCalendar:
        return self.deadlines.calendar


@lru_cache(maxsize=8)
def make_context(
    catalog_file: Path | None,
    office_hours: str,
    calendar_file: Path | None,
    media_dir: Path | None,
    max_upload_bytes: int,
) -> EventContext:
    catalog = cached_catalog(catalog_file)
    calendar = WorkCalendar.load(office_hours, calendar_file)
    photos = PhotoStore(media_dir, max_bytes=max_upload_bytes) if media_dir is not None else None
    return EventContext(catalog, Deadlines(calendar, catalog.rules), photos)


def context_from_settings(settings: Any) -> EventContext:
    return make_context(
        settings.catalog_file,
        settings.office_hours,
        settings.calendar_file,
        settings.media_dir,
        int(settings.max_upload_mb * 1024 * 1024),
    )


# ---------------------------------------------------------------------------------- actors


SYSTEM = "system"


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.region_code, tuple(user.roles), user.unit or "")


def _actor_fields(user: User | None, *, resident_name: str = "") -> dict[str, Any]:
    if user is None:
        return {
            "actor_id": None,
            "actor_name": resident_name or "群众",
            "actor_role": "resident",
            "actor_unit": "",
        }
    unit = Unit(user.region_code, user.unit or "")
    return {
        "actor_id": user.id,
        "actor_name": user.display_name or user.username,
        "actor_role": user.roles[0] if user.roles else "",
        "actor_unit": unit.key,
    }


SYSTEM_ACTOR: dict[str, Any] = {
    "actor_id": None,
    "actor_name": "系统",
    "actor_role": SYSTEM,
    "actor_unit": "",
}


def state_of(ev: Event) -> EventState:
    return EventState(
        status=Status(ev.status),
        holder=Unit.parse(ev.holder_unit),
        sender=Unit.parse(ev.sender_unit) if ev.sender_unit else None,
        receiver=Unit.parse(ev.receiver_unit),
        reporter_id=ev.reporter_id,
        grid_code=ev.grid_code,
        extension=ev.extension,
    )


def label_of(ev: Event) -> str:
    return ev.tracking_no


# ---------------------------------------------------------------------------------- access


def _event_by_ref(session: Session, ref: str | int) -> Event | None:
    """By tracking number first, then by numeric id (a tracking number always wins)."""
    if isinstance(ref, int):
        return session.get(Event, ref)
    ev = session.scalar(select(Event).where(Event.tracking_no == ref.strip().upper()))
    if ev is None and ref.isdigit() and len(ref) < 12:
        ev = session.get(Event, int(ref))
    return ev


def not_found_event(ref: str | int) -> NotFound:
    return NotFound(f"事件 {ref} 不存在或不在您的管辖范围内", code="event_not_found")


def access_event(session: Session, user: User, ref: str | int) -> Event:
    """Load an event in the user's jurisdiction (where it was found); otherwise NotFound."""
    ev = _event_by_ref(session, ref)
    if ev is None or not scope_of(user).contains(ev.grid_code):
        raise not_found_event(ref)
    return ev


def event_scope_filter(user: User) -> ColumnElement[bool]:
    """SQL condition restricting events to those found in the user's subtree."""
    scope = scope_of(user)
    if scope.level == GRID:
        return Event.grid_code == scope.root_code
    low, high = prefix_range(scope.prefix)
    return and_(Event.grid_code >= low, Event.grid_code < high)


def my_units_filter(user: User, column: Any) -> ColumnElement[bool]:
    """SQL condition: `column` (a unit key) names a unit the user works in."""
    level = level_of_code(user.region_code)
    roles = set(user.roles)
    conds: list[ColumnElement[bool]] = []
    if level == GRID and Role.GRID_WORKER in roles:
        conds.append(column == user.region_code)
    if level == VILLAGE and Role.VILLAGE_STAFF in roles:
        conds.append(column == user.region_code)
    staff = {TOWN: Role.TOWN_STAFF, DISTRICT: Role.DISTRICT_STAFF, CITY: Role.CITY_STAFF}.get(level)
    if staff is not None and staff in roles:
        if user.unit:
            conds.append(column == f"{user.region_code}/{user.unit}")
        else:
            conds.append(or_(column == user.region_code, column.like(f"{user.region_code}/%")))
    if Role.DEPARTMENT_STAFF in roles and user.unit:
        conds.append(column == f"{user.region_code}/{user.unit}")
    return or_(*conds) if conds else false()


# ---------------------------------------------------------------------------------- report


@dataclass
class ReportInput:
    category_code: str
    description: str = ""
    urgency: str | None = None
    title: str = ""
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    grid_code: str | None = None
    address: str = ""
    discovered_at: datetime | None = None
    photos: list[str] = field(default_factory=list)
    reporter_name: str = ""
    reporter_phone: str = ""
    reporter_email: str = ""
    self_close: bool = False
    result: str = ""
    accuracy_m: float | None = None  # the device's position accuracy
    # Self-closure: photos taken after handling, attached to the closing step (not the report's)
    after_photos: list[str] = field(default_factory=list)

    def fingerprint(self, channel: str) -> str:
        """What a retry must repeat exactly to count as the same report."""
        doc = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in vars(self).items()}
        if doc.get("accuracy_m") is None:
            del doc["accuracy_m"]  # as before the field existed: old keys still replay
        if not doc.get("after_photos"):
            del doc["after_photos"]
        doc["channel"] = channel
        raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class ReportOutcome:
    event: Event
    replayed: bool = False  # an earlier report with the same Idempotency-Key
    names: dict[str, str] = field(default_factory=dict)  # region names the report looked up


def _channel_allowed(channel: str, user: User | None) -> None:
    if channel not in CHANNELS:
        raise Rejected(
            f"上报渠道 {channel!r} 无效; 可选: {', '.join(CHANNELS)}", code="bad_channel"
        )
    if channel in PUBLIC_CHANNELS:
        if user is not None:
            # Staff report through their own channels, inside their jurisdiction.
            raise Forbidden(
                f"渠道「{CHANNELS[channel]}」供群众使用; 工作人员请用 grid、staff、department 或 hotline",
                code="channel_not_allowed",
            )
        return
    if user is None:
        raise Forbidden("请先登录", code="login_required")
    roles = set(user.roles)
    need = {
        "grid": {Role.GRID_WORKER},
        "staff": {Role.VILLAGE_STAFF, Role.TOWN_STAFF, Role.DISTRICT_STAFF, Role.CITY_STAFF},
        "department": {Role.DEPARTMENT_STAFF},
        "hotline": {Role.TOWN_STAFF, Role.DISTRICT_STAFF, Role.CITY_STAFF},
    }[channel]
    if not roles & need:
        names = "、".join(ROLE_LABELS[r] for r in sorted(need))
        raise Forbidden(f"渠道「{CHANNELS[channel]}」只能由{names}使用", code="channel_not_allowed")


def _receiver(channel: str, user: User | None, grid_code: str) -> Unit:
    """The unit that accepts a new report."""
    if channel in ("grid", "public", "open311"):
        return unit_at(VILLAGE, grid_code)
    if channel in ("hotline", "department"):
        return unit_at(TOWN, grid_code)
    if user is None:  # the rules checked this before
        raise RuntimeError("user missing")
    level = level_of_code(user.region_code)
    if level == VILLAGE:
        return unit_at(VILLAGE, grid_code)
    if level == TOWN:
        return unit_at(TOWN, grid_code)
    return unit_at(DISTRICT, grid_code)


def _where(
    session: Session, data: ReportInput, user: User | None, channel: str
) -> tuple[str, float | None, float | None]:
    """The grid (and WGS-84 point) of a report; outside the city or the user's area is refused."""
    if data.lon is not None or data.lat is not None:
        if data.lon is None or data.lat is None:
            raise Rejected("经度 lon 和纬度 lat 须同时提供", code="bad_location")
        try:
            crs = CRS(data.crs)
        except ValueError:
            raise Rejected(
                f"坐标系 {data.crs!r} 无效; 可选 wgs84、gcj02、bd09", code="bad_crs"
            ) from None
        if not (math.isfinite(data.lon) and math.isfinite(data.lat)):
            raise Rejected("经纬度 lon, lat 必须是有限数值", code="bad_location")
        x, y = to_wgs84(float(data.lon), float(data.lat), crs)
        lon, lat = float(x), float(y)
        found = geo.locate_many(session, [lon], [lat])[0]
        if found is None:
            raise Rejected(
                f"位置 ({lon:.6f}, {lat:.6f}) 不在本市任何网格内; 请核对坐标和坐标系 ({crs.value})",
                code="outside_city",
            )
        code = found
    elif data.grid_code:
        code = data.grid_code
        region = geo.get_region(session, code)
        if region is None or region.level != GRID:
            raise Rejected(f"网格 {code} 不存在", code="unknown_grid")
        lon, lat = None, None
    else:
        raise Rejected("请提供事件位置: 经纬度 (lon, lat) 或网格代码 grid_code", code="no_location")
    if user is not None and channel not in PUBLIC_CHANNELS and not scope_of(user).contains(code):
        raise NotFound(f"事件位置所在网格 {code} 不在您的管辖范围内", code="outside_jurisdiction")
    return code, lon, lat


TRACKING_LETTERS = TRACKING_ALPHABET[10:]


def new_tracking_no() -> str:
    """Ten Crockford base-32 characters (~50 bits); the first is a letter, so a tracking number
    never looks like a numeric event id."""
    return secrets.choice(TRACKING_LETTERS) + "".join(
        secrets.choice(TRACKING_ALPHABET) for _ in range(9)
    )


def report_event(
    session: Session,
    *,
    ctx: EventContext,
    user: User | None,
    data: ReportInput,
    channel: str,
    now: datetime,
    idempotency_key: str | None = None,
    client: str = "",
) -> ReportOutcome:
    """Create an event (and, for a grid worker's on-the-spot fix, close it) in one transaction."""
    _channel_allowed(channel, user)
    if idempotency_key is not None:
        idem_scope = f"user:{user.id}" if user is not None else f"{channel}:{client}"
        if not (1 <= len(idempotency_key) <= 128):
            raise Rejected("Idempotency-Key 须为 1–128 个字符", code="bad_idempotency_key")
        prior = session.scalar(
            select(Event).where(Event.idem_scope == idem_scope, Event.idem_key == idempotency_key)
        )
        if prior is not None:
            return _replay(prior, data, channel)
    category = ctx.catalog.category(data.category_code)
    urgency = ctx.catalog.check_urgency(category, data.urgency)
    description = data.description.strip()
    if len(description) > 4000:
        raise Rejected("事件描述 description 最多 4000 字", code="description_too_long")
    if not description and not data.title.strip():
        raise Rejected("请填写事件描述 description", code="no_description")
    discovered = data.discovered_at or now
    if discovered.tzinfo is None:
        raise Rejected("发现时间 discovered_at 须带时区", code="naive_time")
    if discovered > now + timedelta(minutes=5):
        raise Rejected("发现时间 discovered_at 不能晚于当前时间", code="future_time")
    _check_photos(session, data.photos)
    if data.after_photos and not data.self_close:
        raise Rejected(
            "只有当场处置结案 (self_close) 才附处置后照片 after_photos", code="bad_photos"
        )
    accuracy = data.accuracy_m
    check_accuracy(accuracy)
    grid_code, lon, lat = _where(session, data, user, channel)
    path = path_codes(grid_code)
    # One query for the path's names (the answer shows them) and whether the village is urban.
    regions = geo.region_rows(session, path.values())
    is_urban = regions[path[VILLAGE]].is_urban if path[VILLAGE] in regions else False
    receiver = _receiver(channel, user, grid_code)
    title = data.title.strip() or f"{category.name}: {description[:40]}"
    ev = Event(
        tracking_no=new_tracking_no(),
        category_code=category.code,
        category_name=category.name,
        urgency=urgency,
        title=title[:200],
        description=description,
        channel=channel,
        status=Status.REPORTED.value,
        grid_code=grid_code,
        village_code=path[VILLAGE],
        town_code=path[TOWN],
        district_code=path[DISTRICT],
        is_urban=bool(is_urban),
        lon=lon,
        lat=lat,
        location_accuracy_m=accuracy if lon is not None else None,
        address=data.address.strip()[:300],
        reporter_id=user.id if user is not None else None,
        reporter_name=data.reporter_name.strip()[:100],
        reporter_phone=data.reporter_phone.strip()[:32],
        reporter_email=data.reporter_email.strip()[:200],
        reporter_level=level_of_code(user.region_code) if user is not None else None,
        open311_client=client[:64],
        receiver_unit=receiver.key,
        holder_unit=receiver.key,
        holder_level=receiver.level,
        sender_unit=None,
        discovered_at=discovered,
        reported_at=now,
        updated_at=now,
        photos=list(data.photos),
        idem_scope=(f"user:{user.id}" if user is not None else f"{channel}:{client}")
        if idempotency_key is not None
        else None,
        idem_key=idempotency_key,
        idem_hash=data.fingerprint(channel) if idempotency_key is not None else None,
        allowance=category.deadlines[urgency],
    )
    ctx.deadlines.set_allowance(ev, category.deadlines[urgency])
    if idempotency_key is not None:
        # A concurrent retry with the same key loses the unique constraint race and finds ours.
        try:
            with session.begin_nested():
                session.add(ev)
                session.flush()
        except IntegrityError:
            prior = session.scalar(
                select(Event).where(
                    Event.idem_scope == ev.idem_scope, Event.idem_key == idempotency_key
                )
            )
            if prior is None:
                raise
            return _replay(prior, data, channel)
    else:
        session.add(ev)
        session.flush()
    actor = _actor_fields(user, resident_name=data.reporter_name.strip())
    append_entry(
        session,
        ev,
        at=now,
        **actor,
        action=Action.REPORT.value,
        from_status="",
        to_status=Status.REPORTED.value,
        from_unit="",
        to_unit=receiver.key,
        comment=description[:500],
        attachments=data.photos,
        data={"channel": channel, "category": category.code, "urgency": urgency, "grid": grid_code},
    )
    _attach(session, ev, data.photos)
    if data.self_close:
        _self_close(session, ctx=ctx, ev=ev, user=user, category=category, data=data, now=now)
    else:
        notify(
            session,
            unit=receiver.key,
            event=ev,
            kind="new",
            message=f"新事件待受理: {ev.title}",
            now=now,
        )
    session.flush()
    return ReportOutcome(ev, names={code: r.name for code, r in regions.items()})


def _replay(prior: Event, data: ReportInput, channel: str) -> ReportOutcome:
    if prior.idem_hash != data.fingerprint(channel):
        raise Conflict(
            f"Idempotency-Key 已用于事件 {prior.tracking_no}, 但这次提交的内容不同; 新事件请使用新的 Key",
            code="idempotency_key_reused",
        )
    return ReportOutcome(prior, replayed=True)


MAX_PHOTOS = 9


def check_accuracy(accuracy: float | None, what: str = "定位精度 accuracy_m") -> None:
    """Refuse a position accuracy that is not a finite 0–100000 m (for other domains too)."""
    if accuracy is not None and not (math.isfinite(accuracy) and 0 <= accuracy <= 100_000):
        raise Rejected(f"{what} 须为 0–100000 米, 不是 {accuracy!r}", code="bad_accuracy")


def check_photos(session: Session, photos: Sequence[str]) -> None:
    """Refuse a photo list with too many, repeated or unknown photos (for other domains' forms)."""
    _check_photos(session, photos)


def _check_photos(session: Session, photos: Sequence[str]) -> None:
    if not photos:
        return
    if len(photos) > MAX_PHOTOS:
        raise Rejected(f"每次最多附 {MAX_PHOTOS} 张照片", code="too_many_photos")
    if len(set(photos)) != len(photos):
        raise Rejected("同一张照片附了两次", code="duplicate_photo")
    known = set(session.scalars(select(Photo.sha256).where(Photo.sha256.in_(list(photos)))).all())
    for sha in photos:
        if sha not in known:
            raise Rejected(
                f"照片 {sha} 不存在; 请先上传照片 (POST /api/v1/photos) 再提交",
                code="unknown_photo",
            )


def _attach(session: Session, ev: Event, photos: Sequence[str]) -> None:
    if not photos:
        return
    have = set(session.scalars(select(EventPhoto.sha256).where(EventPhoto.event_id == ev.id)).all())
    for sha in photos:
        if sha not in have:
            session.add(EventPhoto(event_id=ev.id, sha256=sha, seq=ev.entry_count))


def upload_photo(
    session: Session,
    *,
    ctx: EventContext,
    user: User | None,
    data: bytes,
    filename: str,
    now: datetime,
) -> Photo:
    """Store a photo (checked by content) and register it; the same bytes give the same photo."""
    if ctx.photos is None:
        raise Rejected("本系统未配置照片存储 (GRIDGOV_MEDIA_DIR)", code="no_photo_store")
    stored = ctx.photos.put(data, filename=filename)
    photo = session.get(Photo, stored.sha256)
    if photo is None:
        photo = Photo(
            sha256=stored.sha256,
            media_type=stored.media_type,
            width=stored.width,
            height=stored.height,
            size=stored.size,
            taken_lon=stored.taken_lon,
            taken_lat=stored.taken_lat,
            uploaded_by=user.id if user is not None else None,
            uploaded_at=now,
        )
        session.add(photo)
        session.flush()
    return photo


def access_photo(session: Session, user: User, sha256: str) -> Photo:
    """A photo of an event in the user's jurisdiction, or one the user uploaded; else NotFound."""
    photo = session.get(Photo, sha256) if len(sha256) == 64 else None
    if photo is not None and photo.uploaded_by == user.id:
        return photo
    if photo is not None:
        linked = session.scalar(
            select(EventPhoto.event_id)
            .join(Event, Event.id == EventPhoto.event_id)
            .where(EventPhoto.sha256 == sha256, event_scope_filter(user))
            .limit(1)
        )
        if linked is not None:
            return photo
    raise NotFound(f"照片 {sha256} 不存在或不在您的管辖范围内", code="photo_not_found")


def public_photos(session: Session, ev: Event) -> list[str]:
    """The photos the reporter attached (seq 1): the only ones shown on the public page."""
    return list(
        session.scalars(
            select(EventPhoto.sha256).where(EventPhoto.event_id == ev.id, EventPhoto.seq == 1)
        )
    )


def public_photo(session: Session, tracking_no: str, sha256: str) -> Photo:
    """A photo shown on an event's public page (the EXIF-stripped copy is what gets served)."""
    ev = public_event(session, tracking_no)
    row = session.get(EventPhoto, (ev.id, sha256)) if len(sha256) == 64 else None
    photo = session.get(Photo, sha256) if row is not None and row.seq == 1 else None
    if photo is None:
        raise NotFound(f"事件 {tracking_no} 没有照片 {sha256}", code="photo_not_found")
    return photo


def _self_close(
    session: Session,
    *,
    ctx: EventContext,
    ev: Event,
    user: User | None,
    category: Category,
    data: ReportInput,
    now: datetime,
) -> None:
    if not category.self_close:
        raise Rejected(
            f"类别 {category.code} {category.name} 不允许网格员当场自行结案", code="no_self_close"
        )
    if user is None or Role.GRID_WORKER not in user.roles or user.region_code != ev.grid_code:
        raise Forbidden("只有事发网格的网格员可以当场自行处置结案", code="not_allowed")
    # The after photos belong to the closing step (the field app, the desk form and the REST API
    # have a field for them); a caller that passes only the report's photos closes with those.
    after = list(data.after_photos) or list(data.photos)
    if not after:
        raise Rejected("自行处置结案须附处置后的照片", code="photo_required")
    if data.after_photos:
        _check_photos(session, data.after_photos)
        if set(data.after_photos) & set(data.photos):
            raise Rejected(
                "处置后照片 after_photos 不能与现场照片 photos 相同", code="duplicate_photo"
            )
    if not data.result.strip():
        raise Rejected("自行处置结案须填写处置结果 result", code="no_result")
    ev.status = Status.CLOSED.value
    ev.accepted_at = ev.dispatched_at = ev.feedback_at = ev.closed_at = now
    ev.holder_unit = ev.grid_code
    ev.holder_level = GRID
    ev.self_closed = True
    ev.closed_level = GRID
    ev.closed_unit = ev.grid_code
    ev.closed_on_time = True
    ev.dispatched_on_time = True
    ev.result = data.result.strip()
    append_entry(
        session,
        ev,
        at=now,
        **_actor_fields(user),
        action=Action.SELF_CLOSE.value,
        from_status=Status.REPORTED.value,
        to_status=Status.CLOSED.value,
        from_unit=ev.receiver_unit,
        to_unit=ev.grid_code,
        comment=ev.result,
        attachments=after,
    )
    # Attached at the SELF_CLOSE entry's seq, so the public page (seq 1) does not show them.
    _attach(session, ev, after)


# ----------------------------------------------------------------------------------- act


@dataclass
class ActInput:
    action: str
    version: int | None = None
    comment: str = ""
    target: str | None = None  # a unit key, for dispatch / redispatch
    extension: str | None = None  # an allowance spec, for request_extension
    photos: list[str] = field(default_factory=list)
    satisfaction: str | None = None


def _conflict(ev: Event, msg: str) -> Conflict:
    return Conflict(msg, code="version_conflict")


def act(
    session: Session,
    *,
    ctx: EventContext,
    user: User,
    ref: str | int,
    data: ActInput,
    now: datetime,
) -> Event:
    """Apply one workflow action to an event the user may see, in the caller's transaction."""
    ev = access_event(session, user, ref)
    try:
        action = Action(data.action)
    except ValueError:
        raise Rejected(f"未知操作 {data.action!r}", code="unknown_action") from None
    if action in (
        Action.REPORT,
        Action.SELF_CLOSE,
        Action.WARN_YELLOW,
        Action.WARN_RED,
        Action.AUTO_ESCALATE,
    ):
        raise Rejected(f"操作 {action.value} 不能直接调用", code="unknown_action")
    if data.version is not None and data.version != ev.version:
        raise _conflict(
            ev,
            f"事件 {ev.tracking_no} 已被他人处理 (版本 {ev.version}, 您提交的是 {data.version}); "
            f"当前状态「{ev.status}」, 请刷新后再操作",
        )
    state = state_of(ev)
    nxt = check_action(actor_of(user), state, action, label=ev.tracking_no)
    comment = data.comment.strip()
    if action in _REASON_REQUIRED and not comment:
        raise Rejected(f"{ACTION_LABELS[action]}须填写理由 comment", code="reason_required")
    if len(comment) > 2000:
        raise Rejected("意见 comment 最多 2000 字", code="comment_too_long")
    _check_photos(session, data.photos)
    before_status, before_unit = ev.status, ev.holder_unit
    extra: dict[str, Any] = {}
    handler = _HANDLERS.get(action)
    if handler is not None:
        extra = handler(session, ctx, ev, user, data, now) or {}
    # A handler may settle on another status than the table's (dispatching to oneself is handling).
    ev.status = extra.pop("_status", nxt.value)
    ev.holder_level = Unit.parse(ev.holder_unit).level
    ev.updated_at = now
    append_entry(
        session,
        ev,
        at=now,
        **_actor_fields(user),
        action=action.value,
        from_status=before_status,
        to_status=ev.status,
        from_unit=before_unit,
        to_unit=ev.holder_unit,
        comment=comment,
        attachments=data.photos,
        data=extra,
    )
    _attach(session, ev, data.photos)
    if action == Action.ACCEPT:
        _climb(session, ctx, ev, now)
    label = ev.tracking_no
    try:
        session.flush()
    except (StaleDataError, IntegrityError):
        # Another handler changed the event (its version) or wrote the same timeline step first.
        # The caller's transaction is spoilt: the request dependency rolls it back.
        raise Conflict(
            f"事件 {label} 刚被他人处理; 请刷新后再操作", code="version_conflict"
        ) from None
    return ev


_REASON_REQUIRED = frozenset(
    {
        Action.REFUSE,
        Action.RETURN,
        Action.ESCALATE,
        Action.SUSPEND,
        Action.REQUEST_EXTENSION,
        Action.DENY_EXTENSION,
        Action.REJECT,
        Action.SUPERVISE,
        Action.REOPEN,
        Action.FEEDBACK,
    }
)


def _on_accept(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> dict[str, Any]:
    ev.accepted_at = now
    if ev.clock_since is None:
        ctx.deadlines.start(ev, now)
    target = ctx.catalog.route(ev.category_code, ev.urgency, ev.grid_code, ev.is_urban)
    routed = unit_at(target.level, ev.grid_code, target.sub)
    ev.routed_unit = routed.key
    return {
        "routed": routed.key,
        "deadline": ev.deadline_at.isoformat() if ev.deadline_at else None,
    }


def _climb(session: Session, ctx: EventContext, ev: Event, now: datetime) -> None:
    """Events the accepting unit cannot send to their routed handler climb one level at a time
    (village → town centre → district centre) until a unit that can dispatch there holds them."""
    if not ev.routed_unit:
        return
    routed = Unit.parse(ev.routed_unit)
    holder = Unit.parse(ev.holder_unit)
    while routed not in dispatch_targets(holder, ev.grid_code, _subs(ctx)):
        up = parent_unit(holder)
        if up is None:
            return
        append_entry(
            session,
            ev,
            at=now,
            **SYSTEM_ACTOR,
            action=Action.ESCALATE.value,
            from_status=ev.status,
            to_status=ev.status,
            from_unit=holder.key,
            to_unit=up.key,
            comment=f"按路由规则由上一级处置 (建议承办: {ev.routed_unit})",
            data={"routed": ev.routed_unit},
        )
        ev.sender_unit = holder.key
        holder = up
        ev.holder_unit = up.key
        ev.holder_level = up.level
    if holder.key != ev.receiver_unit:
        notify(
            session,
            unit=holder.key,
            event=ev,
            kind="escalated",
            message=f"下级上报: {ev.title}",
            now=now,
        )


def _on_refuse(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    ctx.deadlines.stop(ev, now)
    ev.closed_at = now


def _subs(ctx: EventContext) -> dict[int, list[str]]:
    return {
        TOWN: list(ctx.catalog.platforms),
        DISTRICT: list(ctx.catalog.departments),
        CITY: list(ctx.catalog.departments),
    }


def _dispatch(
    session: Session, ctx: EventContext, ev: Event, dispatcher: Unit, data: ActInput, now: datetime
) -> dict[str, Any]:
    key = data.target or ev.routed_unit
    if not key:
        raise Rejected("请选择承办单位 target", code="no_target")
    target = Unit.parse(key)
    allowed = dispatch_targets(dispatcher, ev.grid_code, _subs(ctx))
    if target not in allowed:
        raise Rejected(
            f"不能把事件 {ev.tracking_no} 分派给 {key}: 只能分派给本单位或事发地路径上的下级单位",
            code="bad_target",
        )
    if ev.dispatched_at is None:
        ev.dispatched_at = now
        category = ctx.catalog.categories.get(ev.category_code)
        immediate = category.immediate if category is not None else ev.urgency == "immediate"
        ev.dispatched_on_time = ctx.deadlines.dispatch_on_time(
            ev.accepted_at or now, now, immediate=immediate
        )
    ev.holder_unit = target.key
    ev.sender_unit = dispatcher.key
    if ev.clock_since is None:
        ctx.deadlines.start(ev, now)
    notify(
        session,
        unit=target.key,
        event=ev,
        kind="dispatched",
        message=f"新派单: {ev.title}",
        now=now,
    )
    return {"target": target.key}


def _on_dispatch(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> dict[str, Any]:
    holder = Unit.parse(ev.holder_unit)
    out = _dispatch(session, ctx, ev, holder, data, now)
    if out["target"] == holder.key:
        # Handled by the dispatching unit itself: no one else needs to sign for it.
        ev.sender_unit = None if ev.receiver_unit == holder.key else ev.sender_unit
        out["self"] = True
        out["_status"] = Status.HANDLING.value
    return out


def _on_redispatch(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> dict[str, Any]:
    if ev.sender_unit is None:  # the rules checked this before
        raise RuntimeError("ev.sender_unit missing")
    return _dispatch(session, ctx, ev, Unit.parse(ev.sender_unit), data, now)


def _on_return(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    if ev.sender_unit is None:  # the rules checked this before
        raise RuntimeError("ev.sender_unit missing")
    to = ev.sender_unit
    notify(
        session,
        unit=to,
        event=ev,
        kind="returned",
        message=f"事件被退回: {data.comment.strip()[:100]}",
        now=now,
    )
    ev.holder_unit = to
    ev.sender_unit = ev.receiver_unit if to != ev.receiver_unit else None


def _on_escalate(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    up = parent_unit(Unit.parse(ev.holder_unit))
    if up is None:  # the rules checked this before
        raise RuntimeError("up missing")
    ev.sender_unit = ev.holder_unit
    ev.holder_unit = up.key
    notify(
        session, unit=up.key, event=ev, kind="escalated", message=f"下级上报: {ev.title}", now=now
    )


def _on_suspend(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    ctx.deadlines.stop(ev, now)


def _on_resume(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    ctx.deadlines.start(ev, now)


def _on_request_extension(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> dict[str, Any]:
    spec = (data.extension or ev.allowance).strip()
    try:
        allowance = ctx.deadlines.allowance(spec)
    except ValueError as exc:
        raise Rejected(f"延期时长 extension 无效: {exc}", code="bad_extension") from None
    if allowance.office != ev.office_clock:
        raise Rejected(
            "延期时长须与事件的计时方式相同 (工作日/工作小时, 或自然小时/分钟)",
            code="bad_extension",
        )
    ev.extension = "requested"
    ev.extension_spec = spec
    up = parent_unit(Unit.parse(ev.holder_unit))
    if up is not None:
        notify(
            session,
            unit=up.key,
            event=ev,
            kind="extension",
            message=f"延期申请 {spec}: {ev.title}",
            now=now,
        )
    return {"extension": spec}


def _on_approve_extension(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> dict[str, Any]:
    spec = ev.extension_spec
    ctx.deadlines.extend(ev, spec, now)
    ev.extension = "approved"
    return {"extension": spec, "deadline": ev.deadline_at.isoformat() if ev.deadline_at else None}


def _on_deny_extension(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    ev.extension = "denied"


def _on_feedback(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    ctx.deadlines.stop(ev, now)
    ev.feedback_at = now
    ev.result = data.comment.strip()
    checker = ev.sender_unit or ev.receiver_unit
    if checker != ev.holder_unit:
        notify(
            session,
            unit=checker,
            event=ev,
            kind="feedback",
            message=f"处置结果待核查: {ev.title}",
            now=now,
        )


def _on_reject(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    ctx.deadlines.start(ev, now)
    notify(
        session,
        unit=ev.holder_unit,
        event=ev,
        kind="rejected",
        message=f"核查不通过: {data.comment.strip()[:100]}",
        now=now,
    )


def _on_close(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> dict[str, Any]:
    if data.satisfaction is not None and data.satisfaction not in SATISFACTION:
        raise Rejected(
            f"满意度 satisfaction 须为 {', '.join(SATISFACTION)}", code="bad_satisfaction"
        )
    ev.closed_at = now
    ev.closed_unit = ev.holder_unit
    ev.closed_level = Unit.parse(ev.holder_unit).level
    ev.closed_on_time = ctx.deadlines.on_time(ev, now)
    ev.satisfaction = data.satisfaction
    return {"on_time": ev.closed_on_time, "level": ev.closed_level}


def _on_supervise(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    ev.supervised_count += 1
    notify(
        session,
        unit=ev.holder_unit,
        event=ev,
        kind="supervised",
        message=f"督办: {data.comment.strip()[:100]}",
        now=now,
    )


def _on_reopen(
    session: Session, ctx: EventContext, ev: Event, user: User, data: ActInput, now: datetime
) -> None:
    limit = ctx.catalog.rules.reopen_days
    if ev.closed_at is None or now - ev.closed_at > timedelta(days=limit):
        raise Rejected(
            f"事件 {ev.tracking_no} 结案已超过 {limit} 天, 不能重新办理; 请作为新事件上报",
            code="reopen_too_late",
        )
    if ev.self_closed:
        # A self-closed event never had a clock: it starts now with the category's allowance.
        ctx.deadlines.set_allowance(ev, ev.allowance)
        ev.self_closed = False
    ev.holder_unit = ev.receiver_unit
    ev.sender_unit = None
    ev.closed_at = None
    ev.closed_unit = None
    ev.closed_level = None
    ev.closed_on_time = None
    ev.satisfaction = None
    ev.reopen_count += 1
    ctx.deadlines.start(ev, now)
    notify(
        session,
        unit=ev.receiver_unit,
        event=ev,
        kind="reopened",
        message=f"群众对结果有异议, 重新办理: {ev.title}",
        now=now,
    )


_Handler = Any
_HANDLERS: dict[Action, _Handler] = {
    Action.ACCEPT: _on_accept,
    Action.REFUSE: _on_refuse,
    Action.DISPATCH: _on_dispatch,
    Action.REDISPATCH: _on_redispatch,
    Action.RETURN: _on_return,
    Action.ESCALATE: _on_escalate,
    Action.SUSPEND: _on_suspend,
    Action.RESUME: _on_resume,
    Action.REQUEST_EXTENSION: _on_request_extension,
    Action.APPROVE_EXTENSION: _on_approve_extension,
    Action.DENY_EXTENSION: _on_deny_extension,
    Action.FEEDBACK: _on_feedback,
    Action.REJECT: _on_reject,
    Action.CLOSE: _on_close,
    Action.SUPERVISE: _on_supervise,
    Action.REOPEN: _on_reopen,
}


def actions_for(user: User, ev: Event) -> list[Action]:
    return allowed_actions(actor_of(user), state_of(ev))


def targets_for(ctx: EventContext, ev: Event, action: Action) -> list[Unit]:
    """Units a dispatch (or redispatch) of this event may go to."""
    if action == Action.REDISPATCH and ev.sender_unit:
        return dispatch_targets(Unit.parse(ev.sender_unit), ev.grid_code, _subs(ctx))
    return dispatch_targets(Unit.parse(ev.holder_unit), ev.grid_code, _subs(ctx))


# --------------------------------------------------------------------------- notifications


def notify(
    session: Session, *, unit: str, event: Event, kind: str, message: str, now: datetime
) -> None:
    session.add(
        Notification(
            unit_key=unit, event_id=event.id, kind=kind, message=message[:500], created_at=now
        )
    )


def notifications_for(
    session: Session, user: User, *, unread_only: bool = False, limit: int = 50
) -> list[tuple[Notification, bool]]:
    read = select(NotificationRead.notification_id).where(NotificationRead.user_id == user.id)
    stmt = (
        select(Notification, Notification.id.in_(read).label("is_read"))
        .where(my_units_filter(user, Notification.unit_key))
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    if unread_only:
        stmt = stmt.where(Notification.id.not_in(read))
    return [(n, bool(r)) for n, r in session.execute(stmt).all()]


def mark_read(session: Session, *, user: User, ids: Sequence[int], now: datetime) -> int:
    mine = session.scalars(
        select(Notification.id).where(
            Notification.id.in_(list(ids)), my_units_filter(user, Notification.unit_key)
        )
    ).all()
    done = set(
        session.scalars(
            select(NotificationRead.notification_id).where(
                NotificationRead.user_id == user.id, NotificationRead.notification_id.in_(mine)
            )
        ).all()
    )
    for nid in mine:
        if nid not in done:
            session.add(NotificationRead(notification_id=nid, user_id=user.id, read_at=now))
    session.flush()
    return len(mine)


# ------------------------------------------------------------------------------ lookups


def timeline(session: Session, ev: Event) -> list[EventEntry]:
    return list(
        session.scalars(
            select(EventEntry).where(EventEntry.event_id == ev.id).order_by(EventEntry.seq)
        )
    )


# Events a caller can follow by tracking number: the residents' own reports and hotline calls.
TRACKABLE_CHANNELS = ("public", "open311", "hotline")


def public_event(session: Session, tracking_no: str) -> Event:
    """An event looked up by its tracking number (residents' public page)."""
    ev = session.scalar(
        select(Event).where(
            Event.tracking_no == tracking_no.strip().upper(), Event.channel.in_(TRACKABLE_CHANNELS)
        )
    )
    if ev is None:
        raise NotFound(f"没有查询编号为 {tracking_no} 的事件", code="event_not_found")
    return ev


WORKLISTS = {
    "todo": "待办",
    "due_soon": "临期",
    "overdue": "超期",
    # Every open event in the user's area, whoever holds it: what a town (or district) command
    # centre watches and supervises, e.g. a grid worker's report while its village handles it.
    "area": "辖区在办",
    "supervised": "督办",
    "done": "已办",
}


def worklist_query(user: User, name: str, now: datetime) -> Select[Any]:
    """The events of one of the user's worklists, newest first; always inside the user's scope."""
    if name not in WORKLISTS:
        raise Rejected(f"工作清单 {name!r} 无效; 可选: {', '.join(WORKLISTS)}", code="bad_worklist")
    holding = and_(
        my_units_filter(user, Event.holder_unit),
        Event.status.in_(
            [
                s.value
                for s in (
                    Status.REPORTED,
                    Status.ACCEPTED,
                    Status.DISPATCHED,
                    Status.HANDLING,
                    Status.SUSPENDED,
                )
            ]
        ),
    )
    checking = and_(
        Event.status.in_([Status.FEEDBACK.value, Status.VERIFYING.value]),
        or_(
            my_units_filter(user, Event.sender_unit),
            and_(Event.sender_unit.is_(None), my_units_filter(user, Event.receiver_unit)),
            and_(Event.status == Status.VERIFYING.value, Event.grid_code == user.region_code)
            if Role.GRID_WORKER in user.roles
            else false(),
        ),
    )
    todo = or_(holding, checking)
    stmt = select(Event).where(event_scope_filter(user))
    if name == "todo":
        stmt = stmt.where(todo)
    elif name == "due_soon":
        stmt = stmt.where(holding, Event.warning_level == 1)
    elif name == "overdue":
        stmt = stmt.where(holding, or_(Event.warning_level >= 2, Event.deadline_at <= now))
    elif name == "area":
        stmt = stmt.where(Event.status.in_([s.value for s in OPEN_STATUSES]))
    elif name == "supervised":
        stmt = stmt.where(
            Event.status.in_([s.value for s in OPEN_STATUSES]), Event.supervised_count > 0
        )
    else:
        mine = select(EventEntry.event_id).where(EventEntry.actor_id == user.id)
        stmt = stmt.where(Event.id.in_(mine), ~todo)
    return stmt.order_by(Event.updated_at.desc(), Event.id.desc())


@dataclass
class SearchFilter:
    status: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    region: str | None = None
    channel: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    text: str = ""
    overdue: bool | None = None


def search_query(session: Session, user: User, f: SearchFilter) -> Select[Any]:
    stmt = select(Event).where(event_scope_filter(user))
    if f.status:
        stmt = stmt.where(Event.status.in_(f.status))
    if f.category:
        stmt = stmt.where(Event.category_code.in_(f.category))
    if f.channel:
        stmt = stmt.where(Event.channel.in_(f.channel))
    if f.region:
        if not scope_of(user).contains(f.region):
            raise NotFound(f"区域 {f.region} 不存在或不在您的管辖范围内", code="region_not_found")
        level = level_of_code(f.region)
        if level == GRID:
            stmt = stmt.where(Event.grid_code == f.region)
        else:
            from gridgov.geo.divisions import PREFIX_LEN

            low, high = prefix_range(f.region[: PREFIX_LEN[level]])
            stmt = stmt.where(Event.grid_code >= low, Event.grid_code < high)
    if f.start is not None:
        stmt = stmt.where(Event.reported_at >= f.start)
    if f.end is not None:
        stmt = stmt.where(Event.reported_at < f.end)
    if f.text.strip():
        text = f.text.strip()
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                Event.title.like(like, escape="\\"),
                Event.description.like(like, escape="\\"),
                Event.address.like(like, escape="\\"),
                Event.tracking_no == f.text.strip().upper(),
            )
        )
    if f.overdue is True:
        stmt = stmt.where(Event.warning_level >= 2)
    return stmt.order_by(Event.reported_at.desc(), Event.id.desc())


def events_naming(
    session: Session, user: User, *, name: str, phone: str, limit: int = 50
) -> list[Event]:
    """Events in the user's area that name a person: reported from their phone, or whose title
    or description mentions their name (the data center's person page lists them)."""
    conds: list[ColumnElement[bool]] = []
    if phone:
        conds.append(Event.reporter_phone == phone)
    if len(name) >= 2:
        like = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(Event.title.like(like, escape="\\"))
        conds.append(Event.description.like(like, escape="\\"))
        conds.append(Event.reporter_name == name)
    if not conds:
        return []
    stmt = (
        select(Event)
        .where(event_scope_filter(user), or_(*conds))
        .order_by(Event.reported_at.desc(), Event.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


# ---------------------------------------------------------------------------------- sweep


@dataclass
class SweepReport:
    yellow: int = 0
    red: int = 0
    escalated: int = 0
    conflicts: int = 0


def sweep(session: Session, *, ctx: EventContext, now: datetime, batch: int = 500) -> SweepReport:
    """Raise due yellow and red warnings and second-red escalations.

    Idempotent: each step is guarded by the event's stored warning level, so running it twice, or
    after a restart, neither repeats nor loses a warning. Each event changes under its version.
    """
    report = SweepReport()
    running = [s.value for s in CLOCK_RUNNING]
    yellow = select(Event).where(
        Event.status.in_(running),
        Event.warning_level == 0,
        Event.yellow_at <= now,
        Event.deadline_at > now,
    )
    red = select(Event).where(
        Event.status.in_(running), Event.warning_level < 2, Event.deadline_at <= now
    )
    second = select(Event).where(
        Event.status.in_(running), Event.warning_level == 2, Event.escalate_at <= now
    )
    # Red before yellow: an event that slept past both gets the red only.
    for stmt, step, counter in (
        (red, _red, "red"),
        (yellow, _yellow, "yellow"),
        (second, _second_red, "escalated"),
    ):
        while True:
            rows = list(session.scalars(stmt.order_by(Event.id).limit(batch)))
            if not rows:
                break
            for ev in rows:
                step(session, ctx, ev, now)
            setattr(report, counter, getattr(report, counter) + len(rows))
            session.flush()
    return report


def _system_entry(
    session: Session,
    ev: Event,
    action: Action,
    before: tuple[str, str],
    now: datetime,
    comment: str,
    data: dict[str, Any] | None = None,
) -> None:
    append_entry(
        session,
        ev,
        at=now,
        **SYSTEM_ACTOR,
        action=action.value,
        from_status=before[0],
        to_status=ev.status,
        from_unit=before[1],
        to_unit=ev.holder_unit,
        comment=comment,
        data=data,
    )
    ev.updated_at = now


def _yellow(session: Session, ctx: EventContext, ev: Event, now: datetime) -> None:
    ev.warning_level = 1
    left = ev.deadline_at.isoformat() if ev.deadline_at else ""
    _system_entry(
        session,
        ev,
        Action.WARN_YELLOW,
        (ev.status, ev.holder_unit),
        now,
        f"临期预警: 办理时限 {ev.allowance} 即将届满",
        {"deadline": left},
    )
    notify(
        session,
        unit=ev.holder_unit,
        event=ev,
        kind="yellow",
        message=f"临期预警: {ev.title}",
        now=now,
    )


def _red(session: Session, ctx: EventContext, ev: Event, now: datetime) -> None:
    ev.warning_level = 2
    ev.red_at = now
    ev.escalate_at = ctx.deadlines.grace_end(now)
    ev.supervised_count += 1
    supervisor = parent_unit(Unit.parse(ev.holder_unit))
    _system_entry(
        session,
        ev,
        Action.WARN_RED,
        (ev.status, ev.holder_unit),
        now,
        f"超期: 已超过办理时限 {ev.allowance}, 向上级发出督办单",
        {
            "supervisor": supervisor.key if supervisor else None,
            "escalate_at": ev.escalate_at.isoformat(),
        },
    )
    notify(
        session, unit=ev.holder_unit, event=ev, kind="red", message=f"超期督办: {ev.title}", now=now
    )
    if supervisor is not None:
        notify(
            session,
            unit=supervisor.key,
            event=ev,
            kind="supervision_notice",
            message=f"督办单: 下级事件超期未办结: {ev.title}",
            now=now,
        )


def _second_red(session: Session, ctx: EventContext, ev: Event, now: datetime) -> None:
    before = (ev.status, ev.holder_unit)
    ev.warning_level = 3
    ev.escalate_at = None
    up = parent_unit(Unit.parse(ev.holder_unit))
    if up is None:
        _system_entry(
            session, ev, Action.AUTO_ESCALATE, before, now, "再次超期; 已在市级, 无法升级"
        )
        return
    ev.sender_unit = ev.holder_unit
    ev.holder_unit = up.key
    ev.holder_level = up.level
    ev.status = Status.ACCEPTED.value
    _system_entry(session, ev, Action.AUTO_ESCALATE, before, now, "督办后仍超期, 自动上报上一级")
    notify(
        session,
        unit=up.key,
        event=ev,
        kind="escalated",
        message=f"超期事件升级: {ev.title}",
        now=now,
    )
