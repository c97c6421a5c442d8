"""Field-app use cases: home, targets, visits with field facts, patrols, check tasks, sync.

Reports and handling go through the events service (the same workflow as the desk pages);
field facts become grid-worker check source records (source WG, kind "check") that the golden
records' survivorship reads; houses, persons and check tasks are loaded through the registry's
access helpers and the caller's scope.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import String, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridgov.accounts.access import scope_of
from gridgov.accounts.models import User
from gridgov.accounts.rules import Role
from gridgov.core.clock import DISPLAY_TZ
from gridgov.core.errors import DomainError, Forbidden, NotFound, Rejected
from gridgov.events import service as events
from gridgov.events.models import Event
from gridgov.events.rules import Action, Unit
from gridgov.events.service import EventContext
from gridgov.field import rules
from gridgov.field.models import (
    PATROL_CLOSED,
    PATROL_OPEN,
    FieldReceipt,
    Patrol,
    PatrolDay,
    TrackPoint,
    Visit,
)
from gridgov.field.rules import Fix
from gridgov.geo import service as geo
from gridgov.geo.divisions import CITY, GRID, TOWN, level_of_code
from gridgov.ingest.models import DONE, IngestBatch, SourceRecord
from gridgov.registry import service as registry
from gridgov.registry.models import (
    TASK_OPEN,
    TASK_REFERRED,
    TASK_RESOLVED,
    Address,
    Building,
    CheckTask,
    KeyPersonTag,
    Organization,
    Person,
    RecordLink,
    Room,
)
from gridgov.registry.rules import SOURCE_NAMES as DEPARTMENTS
from gridgov.registry.rules import mask_value, may_unmask
from gridgov.registry.survivorship import (
    AUTHORITY,
    GRID_WORKER_SOURCE,
    Candidate,
    decide,
    shipped_survivorship,
)

# Check-task candidates from the address library carry no source.
SOURCE_NAMES = {**DEPARTMENTS, "": "地址库"}
SUPERVISOR_ROLES = frozenset(
    {Role.VILLAGE_STAFF, Role.TOWN_STAFF, Role.DISTRICT_STAFF, Role.CITY_STAFF}
)
MAX_SYNC_ITEMS = 100
MAX_POINTS = 2000


def local_day(at: datetime) -> date:
    return at.astimezone(DISPLAY_TZ).date()


def _need_grid_worker(user: User) -> None:
    if Role.GRID_WORKER not in user.roles or level_of_code(user.region_code) != GRID:
        raise Forbidden("现场采集只能由网格员在本人网格内进行", code="grid_worker_only")


# ---------------------------------------------------------------------------------- home


@dataclass
class Home:
    user: User
    grid: dict[str, Any]
    counts: dict[str, int]
    todo: list[Event]
    due_soon: list[Event]
    overdue: list[Event]
    tasks: list[CheckTask]
    due_visits: list[dict[str, Any]]
    today: PatrolDay | None


def home(session: Session, *, user: User, now: datetime) -> Home:
    """The worker's grid (outline), today's work and today's patrol figures."""
    grid: dict[str, Any] = {"code": user.region_code, "name": "", "geometry": None}
    region = geo.get_region(session, user.region_code)
    if region is not None:
        grid["name"] = region.name
        shape = geo.load_geometries(session, [region.code]).get(region.code)
        if shape is not None:
            grid["geometry"] = json.loads(shapely.to_geojson(shape))
    lists: dict[str, list[Event]] = {}
    counts: dict[str, int] = {}
    for name in ("todo", "due_soon", "overdue"):
        stmt = events.worklist_query(user, name, now)
        counts[name] = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        lists[name] = list(session.scalars(stmt.limit(20)))
    tasks = list_check_tasks(session, user=user, limit=20)
    counts["check_tasks"] = (
        session.scalar(select(func.count()).select_from(_tasks_query(user).subquery())) or 0
    )
    due = due_visits(session, user=user, now=now)
    counts["due_visits"] = len(due)
    today = session.get(PatrolDay, (user.id, local_day(now)))
    return Home(
        user, grid, counts, lists["todo"], lists["due_soon"], lists["overdue"], tasks, due, today
    )


def due_visits(session: Session, *, user: User, now: datetime) -> list[dict[str, Any]]:
    """Key persons (control and service classes) in the user's area not visited recently."""
    scope = scope_of(user)
    today = local_day(now)
    rows = session.execute(
        select(KeyPersonTag, Person)
        .join(Person, Person.id == KeyPersonTag.person_id)
        .where(
            registry.in_scope(KeyPersonTag.grid_code, scope),
            KeyPersonTag.tag_class.in_(list(rules.VISIT_EVERY_DAYS)),
            or_(KeyPersonTag.valid_to.is_(None), KeyPersonTag.valid_to >= today),
        )
        .order_by(Person.name, Person.id)
        .limit(500)
    ).all()
    if not rows:
        return []
    ids = {p.id for _, p in rows}
    last = dict(
        session.execute(
            select(Visit.target_id, func.max(Visit.visited_at))
            .where(Visit.target_kind == "person", Visit.target_id.in_(ids))
            .group_by(Visit.target_id)
        ).all()
    )
    out: dict[int, dict[str, Any]] = {}
    for tag, person in rows:
        every = rules.VISIT_EVERY_DAYS[tag.tag_class]
        seen = last.get(person.id)
        if seen is not None and seen.tzinfo is None:  # SQLite aggregates drop the zone
            seen = seen.replace(tzinfo=now.tzinfo)
        due_at = (seen + timedelta(days=every)) if seen is not None else None
        if due_at is not None and due_at > now:
            continue
        item = out.setdefault(
            person.id,
            {
                "person_id": person.id,
                "name": person.name,
                "tags": [],
                "last_visit": seen.isoformat() if seen else None,
                "overdue_days": (now - due_at).days if due_at else None,
            },
        )
        item["tags"].append(tag.subtype)
    return list(out.values())


# ------------------------------------------------------------------------------- targets


@dataclass
class Target:
    kind: str
    id: int
    label: str
    detail: str
    lon: float | None
    lat: float | None
    distance_m: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def _house_targets(session: Session, user: User, q: str) -> list[Target]:
    stmt = (
        select(Room, Address, Building)
        .join(Address, Address.id == Room.address_id)
        .outerjoin(Building, Building.id == Room.building_id)
        .where(registry.in_scope(Room.grid_code, scope_of(user)))
    )
    if q:
        stmt = stmt.where(Address.text.contains(q))
    out = []
    for room, address, building in session.execute(stmt.order_by(Address.key).limit(2000)):
        lon = address.lon if address.lon is not None else (building.lon if building else None)
        lat = address.lat if address.lat is not None else (building.lat if building else None)
        use = rules.HOUSE_USE.get(room.use or "", "未登记")
        out.append(
            Target("house", room.id, address.text, use, lon, lat, facts={"use": room.use or ""})
        )
    return out


def _person_targets(session: Session, user: User, q: str) -> list[Target]:
    stmt = (
        select(Person, Address.lon, Address.lat)
        .outerjoin(Room, Room.id == Person.room_id)
        .outerjoin(Address, Address.id == Room.address_id)
        .where(registry.in_scope(Person.grid_code, scope_of(user)))
    )
    if q:
        stmt = stmt.where(or_(Person.name.startswith(q), Person.phone == q))
    out = []
    unmask = may_unmask(user.roles)
    for person, lon, lat in session.execute(stmt.order_by(Person.name, Person.id).limit(2000)):
        phone = person.phone if unmask else mask_value("phone", person.phone)
        out.append(
            Target(
                "person",
                person.id,
                person.name,
                person.actual_address or person.registered_address,
                lon,
                lat,
                facts={
                    "actual_address": person.actual_address,
                    "phone": phone,
                    "residence_status": person.residence_status,
                },
            )
        )
    return out


def _org_targets(session: Session, user: User, q: str) -> list[Target]:
    stmt = (
        select(Organization, Address.lon, Address.lat)
        .outerjoin(Address, Address.id == Organization.address_id)
        .where(registry.in_scope(Organization.grid_code, scope_of(user)))
    )
    if q:
        stmt = stmt.where(Organization.name.contains(q))
    return [
        Target("organization", org.id, org.name, org.address, lon, lat)
        for org, lon, lat in session.execute(stmt.order_by(Organization.name).limit(2000))
    ]


def search_targets(
    session: Session,
    *,
    user: User,
    kind: str,
    q: str = "",
    lon: float | None = None,
    lat: float | None = None,
    limit: int = 20,
) -> list[Target]:
    """Houses, persons or organizations in the user's area: by text, or nearest to a point."""
    finders: dict[str, Callable[[Session, User, str], list[Target]]] = {
        "house": _house_targets,
        "person": _person_targets,
        "organization": _org_targets,
    }
    if kind not in finders:
        raise Rejected(
            f"对象类型 kind 须为 {', '.join(rules.TARGET_KINDS)} 之一, 不是 {kind!r}",
            code="bad_kind",
        )
    found = finders[kind](session, user, q.strip())
    if lon is not None and lat is not None:
        for t in found:
            if t.lon is not None and t.lat is not None:
                t.distance_m = rules.haversine_m(lon, lat, t.lon, t.lat)
        found.sort(key=lambda t: (t.distance_m is None, t.distance_m or 0.0, t.label))
    return found[:limit]


# --------------------------------------------------------------------- WG check records


def _field_batch(session: Session, user: User, now: datetime) -> IngestBatch:
    """One import batch per worker and day holds the checks the app recorded (provenance)."""
    day = local_day(now).isoformat()
    digest = hashlib.sha256(f"field-app:{user.id}:{day}".encode()).hexdigest()
    batch = session.scalar(
        select(IngestBatch).where(
            IngestBatch.source == GRID_WORKER_SOURCE, IngestBatch.file_sha256 == digest
        )
    )
    if batch is None:
        batch = IngestBatch(
            source=GRID_WORKER_SOURCE,
            dataset="checks",
            file_name=f"移动端现场核查 {user.username} {day}",
            file_sha256=digest,
            file_bytes=0,
            file_format="app",
            encoding="",
            status=DONE,
            created_by=user.username,
            started_at=now,
            finished_at=now,
        )
        session.add(batch)
        session.flush()
    return batch


def write_check_record(
    session: Session,
    *,
    user: User,
    grid_code: str,
    values: dict[str, Any],
    kind: str,
    now: datetime,
) -> SourceRecord:
    """A grid-worker check (source WG) as a source record, as an imported check would be."""
    batch = _field_batch(session, user, now)
    batch.rows_read += 1
    batch.rows_loaded += 1
    batch.rows_done += 1
    batch.finished_at = now
    doc = {
        **values,
        "grid_code": grid_code,
        "as_of": local_day(now).isoformat(),
        "checker": user.display_name or user.username,
    }
    doc["record_no"] = f"APP{batch.id:06d}{batch.rows_read:06d}"
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False)
    record = SourceRecord(
        batch_id=batch.id,
        source=GRID_WORKER_SOURCE,
        dataset="checks",
        kind=kind,
        row_no=batch.rows_read + 1,
        record_key=doc["record_no"],
        content_hash=hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        as_of=now,
        values=doc,
        flags=[],
        grid_code=grid_code,
        loaded_at=now,
    )
    session.add(record)
    session.flush()
    return record


def _linked_candidates(
    session: Session, entity: str, entity_id: int, field_name: str
) -> list[Candidate]:
    rows = session.scalars(
        select(SourceRecord)
        .join(RecordLink, RecordLink.source_record_id == SourceRecord.id)
        .where(RecordLink.entity == entity, RecordLink.entity_id == entity_id)
    ).all()
    out = []
    for r in rows:
        value = (r.values or {}).get(field_name)
        bad = {f.split(":")[0] for f in (r.flags or [])}
        out.append(
            Candidate(value, r.source, r.as_of, r.id, r.dataset, r.batch_id, field_name not in bad)
        )
    return out


def _provenance(
    record: SourceRecord | None, cand: Candidate | None, **extra: Any
) -> dict[str, Any]:
    if cand is None:
        return {"source": GRID_WORKER_SOURCE, **extra}
    return {
        "source": cand.source,
        "record": cand.record_id,
        "as_of": cand.as_of.date().isoformat() if cand.as_of else None,
        **extra,
    }


def apply_person_facts(
    session: Session, *, person: Person, record: SourceRecord, fields: Sequence[str]
) -> dict[str, Any]:
    """Link the check to the person and decide the fields again by the survivorship table."""
    session.add(
        RecordLink(source_record_id=record.id, entity="person", entity_id=person.id, method="field")
    )
    session.flush()
    table = shipped_survivorship()
    changed: dict[str, Any] = {}
    prov = dict(person.provenance or {})
    for name in fields:
        decision = decide(
            table.rule("person", name), _linked_candidates(session, "person", person.id, name)
        )
        if decision.chosen is None:
            continue
        if getattr(person, name) != decision.value:
            changed[name] = decision.value
        setattr(person, name, decision.value)
        prov[name] = _provenance(record, decision.chosen)
    person.provenance = prov
    person.sources = (person.sources or 0) + 1
    person.updated_at = record.loaded_at
    return changed


def apply_room_use(session: Session, *, room: Room, record: SourceRecord, use: str) -> bool:
    """Room use is a field fact (WG first): the check and the stored value, decided by the rule."""
    stored = (room.provenance or {}).get("use") or {}
    current = Candidate(room.use, str(stored.get("source") or "ZJ"), None, 0)
    check = Candidate(use, GRID_WORKER_SOURCE, record.as_of, record.id, "checks", record.batch_id)
    decision = decide(shipped_survivorship().rule("room", "use"), [current, check])
    changed = bool(decision.value != room.use)
    room.use = decision.value
    room.provenance = {**(room.provenance or {}), "use": _provenance(record, decision.chosen)}
    room.updated_at = record.loaded_at
    return changed


# -------------------------------------------------------------------------------- visits


@dataclass
class VisitInput:
    target_kind: str
    target_id: int
    visit_type: str = "routine"
    notes: str = ""
    photos: list[str] = field(default_factory=list)
    lon: float | None = None
    lat: float | None = None
    accuracy_m: float | None = None
    visited_at: datetime | None = None
    facts: dict[str, str] = field(default_factory=dict)


def _access_target(session: Session, user: User, kind: str, target_id: int) -> Any:
    if kind == "house":
        return registry.access_house(session, user, target_id)
    if kind == "person":
        return registry.access_person(session, user, target_id)
    if kind == "organization":
        return registry.access_organization(session, user, target_id)
    raise Rejected(
        f"走访对象类型 target_kind 须为 {', '.join(rules.TARGET_KINDS)} 之一, 不是 {kind!r}",
        code="bad_target_kind",
    )


def _check_position(lon: float | None, lat: float | None) -> None:
    if (lon is None) != (lat is None):
        raise Rejected("经度 lon 和纬度 lat 须同时提供", code="bad_location")
    if lon is not None and lat is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise Rejected(f"位置 ({lon}, {lat}) 不是有效的经纬度", code="bad_location")


def record_visit(session: Session, *, user: User, data: VisitInput, now: datetime) -> Visit:
    """A visit log; field facts given with it become a WG check and update the golden record."""
    # The target first: outside the caller's area it does not exist, whoever asks.
    target = _access_target(session, user, data.target_kind, data.target_id)
    _need_grid_worker(user)
    if data.visit_type not in rules.VISIT_TYPES:
        raise Rejected(
            f"走访类型 visit_type 须为 {', '.join(rules.VISIT_TYPES)} 之一, 不是 {data.visit_type!r}",
            code="bad_visit_type",
        )
    if len(data.notes) > 2000:
        raise Rejected("走访记录 notes 最多 2000 字", code="notes_too_long")
    _check_position(data.lon, data.lat)
    events.check_accuracy(data.accuracy_m, "走访定位精度 accuracy_m")
    events.check_photos(session, data.photos)
    allowed = {"person": rules.PERSON_FACTS, "house": rules.HOUSE_FACTS}.get(data.target_kind, {})
    facts: dict[str, str] = {}
    for name, raw in data.facts.items():
        value = str(raw).strip()
        if not value:
            continue
        if name not in allowed:
            what = rules.TARGET_KINDS[data.target_kind]
            raise Rejected(
                f"{what}走访不能更新字段 {name}; 可更新: {', '.join(allowed) or '无'}",
                code="bad_fact",
            )
        problem = rules.check_fact(name, value)
        if problem:
            raise Rejected(problem, code="bad_fact")
        facts[name] = rules.normalise_phone(value) if name == "phone" else value
    visited = data.visited_at or now
    if visited.tzinfo is None:
        raise Rejected("走访时间 visited_at 须带时区", code="naive_time")
    if visited > now + timedelta(minutes=5):
        raise Rejected("走访时间 visited_at 不能晚于当前时间", code="future_time")
    grid = target.grid_code or user.region_code
    label = _target_label(session, data.target_kind, target)
    visit = Visit(
        user_id=user.id,
        grid_code=grid,
        target_kind=data.target_kind,
        target_id=data.target_id,
        target_label=label[:300],
        visit_type=data.visit_type,
        notes=data.notes.strip(),
        photos=list(data.photos),
        lon=data.lon,
        lat=data.lat,
        accuracy_m=data.accuracy_m,
        facts=facts,
        visited_at=visited,
        created_at=now,
    )
    if facts and isinstance(target, Person):
        values = {"name": target.name, "citizen_id": target.citizen_id, **facts}
        record = write_check_record(
            session, user=user, grid_code=grid, values=values, kind="check", now=now
        )
        apply_person_facts(session, person=target, record=record, fields=list(facts))
        visit.source_record_id = record.id
    elif facts and isinstance(target, Room):
        # A house check, not a person's: its own kind, so person resolution does not read it
        # as a nameless person.
        values = {"actual_address": label, **facts}
        record = write_check_record(
            session, user=user, grid_code=grid, values=values, kind="room_check", now=now
        )
        apply_room_use(session, room=target, record=record, use=facts["use"])
        visit.source_record_id = record.id
    session.add(visit)
    session.flush()
    return visit


def _target_label(session: Session, kind: str, target: Any) -> str:
    if kind == "house":
        address = session.get(Address, target.address_id)
        return address.text if address is not None else f"房屋 {target.id}"
    return str(target.name)


# ------------------------------------------------------------------------------- patrols


@dataclass
class PointInput:
    at: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None


def _patrol_by_key(session: Session, user: User, key: str) -> Patrol | None:
    return session.scalar(select(Patrol).where(Patrol.user_id == user.id, Patrol.client_key == key))


def start_patrol(session: Session, *, user: User, key: str, started_at: datetime | None,
                 now: datetime) -> Patrol:  # fmt: skip
    _need_grid_worker(user)
    if not (1 <= len(key) <= 64):
        raise Rejected("巡查编号 patrol 须为 1–64 个字符", code="bad_patrol_key")
    prior = _patrol_by_key(session, user, key)
    if prior is not None:
        return prior
    start = started_at or now
    if start.tzinfo is None or start > now + timedelta(minutes=5):
        raise Rejected("开始时间 started_at 须带时区且不晚于当前时间", code="bad_time")
    patrol = Patrol(
        user_id=user.id, client_key=key, grid_code=user.region_code, started_at=start,
        status=PATROL_OPEN,
    )  # fmt: skip
    session.add(patrol)
    session.flush()
    return patrol


def _own_patrol(session: Session, user: User, key: str) -> Patrol:
    patrol = _patrol_by_key(session, user, key)
    if patrol is None:
        raise NotFound(f"巡查 {key} 不存在; 请先开始巡查", code="patrol_not_found")
    return patrol


def _point_problem(p: PointInput, patrol: Patrol, now: datetime) -> str | None:
    if p.at.tzinfo is None:
        return "时间未带时区"
    if not (math.isfinite(p.lon) and math.isfinite(p.lat)):
        return "经纬度无效"
    if not (-180 <= p.lon <= 180 and -90 <= p.lat <= 90):
        return "经纬度无效"
    if p.accuracy_m is not None and not (
        math.isfinite(p.accuracy_m) and 0 <= p.accuracy_m <= 100_000
    ):
        return "定位精度须为 0–100000 米"
    if p.at > now + timedelta(minutes=5) or p.at < patrol.started_at - timedelta(minutes=5):
        return "时间不在巡查开始之后、当前时间之前"
    return None


def add_points(
    session: Session,
    *,
    user: User,
    key: str,
    points: Sequence[PointInput],
    now: datetime,
    skipped: list[str] | None = None,
) -> Patrol:
    """Store a batch of sampled positions (a repeated time is kept once) and refresh figures.

    A bad point (a device clock far ahead, a point before the start, a broken fix) is left out
    and named in `skipped`; the batch's other points are kept."""
    _need_grid_worker(user)
    patrol = _own_patrol(session, user, key)
    if patrol.track_purged_at is not None:
        # Its track is gone: figures computed from a late batch alone would replace the kept ones.
        raise Rejected(
            f"巡查 {key} 的轨迹已超过保存期限并已删除, 不再接收轨迹点 (里程、覆盖率等统计保持不变)",
            code="track_purged",
        )
    if len(points) > MAX_POINTS:
        raise Rejected(f"每批最多 {MAX_POINTS} 个轨迹点 points", code="too_many_points")
    have = set(session.scalars(select(TrackPoint.at).where(TrackPoint.patrol_id == patrol.id)))
    have = {a.replace(microsecond=0) for a in have}
    for i, p in enumerate(points):
        problem = _point_problem(p, patrol, now)
        if problem:
            if skipped is not None:
                skipped.append(f"points[{i}]: {problem}")
            continue
        at = p.at.replace(microsecond=0)
        if at in have:
            continue
        have.add(at)
        session.add(
            TrackPoint(patrol_id=patrol.id, at=at, lon=p.lon, lat=p.lat, accuracy_m=p.accuracy_m)
        )
    session.flush()
    _refresh(session, patrol, now)
    return patrol


def stop_patrol(
    session: Session, *, user: User, key: str, ended_at: datetime | None, now: datetime
) -> Patrol:
    _need_grid_worker(user)
    patrol = _own_patrol(session, user, key)
    if patrol.status != PATROL_CLOSED:
        end = ended_at or now
        if end.tzinfo is None or end > now + timedelta(minutes=5):
            raise Rejected("结束时间 ended_at 须带时区且不晚于当前时间", code="bad_time")
        patrol.ended_at = max(end, patrol.started_at)
        patrol.status = PATROL_CLOSED
        _refresh(session, patrol, now)
    return patrol


def _fixes(session: Session, patrol_ids: Sequence[int]) -> dict[int, list[Fix]]:
    out: dict[int, list[Fix]] = {i: [] for i in patrol_ids}
    if not patrol_ids:
        return out
    for pid, at, lon, lat, acc in session.execute(
        select(
            TrackPoint.patrol_id, TrackPoint.at, TrackPoint.lon, TrackPoint.lat,
            TrackPoint.accuracy_m,
        ).where(TrackPoint.patrol_id.in_(list(patrol_ids)))
        .order_by(TrackPoint.patrol_id, TrackPoint.at)
    ):  # fmt: skip
        out[pid].append(Fix(at, lon, lat, acc))
    return out


def grid_buildings(session: Session, grid_code: str) -> list[tuple[float, float]]:
    return [
        (float(lon or 0.0), float(lat or 0.0))
        for lon, lat in session.execute(
            select(Building.lon, Building.lat).where(
                Building.grid_code == grid_code,
                Building.lon.is_not(None),
                Building.lat.is_not(None),
            )
        )
    ]


def _refresh(session: Session, patrol: Patrol, now: datetime) -> None:
    """The patrol's distance, duration and coverage, and its day's figures."""
    fixes = _fixes(session, [patrol.id])[patrol.id]
    buildings = grid_buildings(session, patrol.grid_code)
    cov = rules.coverage([fixes], buildings)
    patrol.points = len(fixes)
    patrol.distance_m = round(rules.track_length_m(fixes), 1)
    patrol.duration_s = rules.duration_s(patrol.started_at, patrol.ended_at, fixes)
    patrol.buildings, patrol.buildings_covered = cov.buildings, cov.covered
    patrol.coverage = round(cov.share, 4)
    session.flush()
    _refresh_day(session, patrol.user_id, local_day(patrol.started_at), patrol.grid_code,
                 buildings, now)  # fmt: skip


def _refresh_day(
    session: Session,
    user_id: int,
    day: date,
    grid_code: str,
    buildings: list[tuple[float, float]],
    now: datetime,
) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=DISPLAY_TZ)
    patrols = list(
        session.scalars(
            select(Patrol).where(
                Patrol.user_id == user_id,
                Patrol.started_at >= start,
                Patrol.started_at < start + timedelta(days=1),
            )
        )
    )
    tracks = _fixes(session, [p.id for p in patrols])
    cov = rules.coverage([tracks[p.id] for p in patrols if p.grid_code == grid_code], buildings)
    row = session.get(PatrolDay, (user_id, day))
    if row is None:
        row = PatrolDay(user_id=user_id, day=day, grid_code=grid_code)
        session.add(row)
    row.grid_code = grid_code
    row.patrols = len(patrols)
    row.distance_m = round(sum(p.distance_m for p in patrols), 1)
    row.duration_s = sum(p.duration_s for p in patrols)
    row.buildings, row.buildings_covered = cov.buildings, cov.covered
    row.coverage = round(cov.share, 4)
    row.updated_at = now
    session.flush()


def access_patrol(session: Session, user: User, patrol_id: int) -> Patrol:
    """A patrol and its track: its worker, or their supervisors (staff over the grid); else 404."""
    patrol = session.get(Patrol, patrol_id)
    if patrol is not None and (
        patrol.user_id == user.id
        or (
            any(r in SUPERVISOR_ROLES for r in user.roles)
            and not user.unit
            and scope_of(user).contains(patrol.grid_code)
        )
    ):
        return patrol
    raise NotFound(f"巡查 {patrol_id} 不存在或不在您的管辖范围内", code="patrol_not_found")


def track_of(session: Session, patrol: Patrol) -> list[Fix]:
    return _fixes(session, [patrol.id])[patrol.id]


def my_patrols(session: Session, *, user: User, limit: int = 20) -> list[Patrol]:
    return list(
        session.scalars(
            select(Patrol)
            .where(Patrol.user_id == user.id)
            .order_by(Patrol.started_at.desc(), Patrol.id.desc())
            .limit(limit)
        )
    )


def patrol_days(
    session: Session,
    *,
    user: User,
    region: str | None,
    start: date | None,
    end: date | None,
) -> list[tuple[PatrolDay, User]]:
    """Daily figures: the caller's own, or (supervisors) every worker's in a region they oversee."""
    stmt = select(PatrolDay, User).join(User, User.id == PatrolDay.user_id)
    supervisor = any(r in SUPERVISOR_ROLES for r in user.roles) and not user.unit
    if region:
        scope = scope_of(user)
        if not supervisor or not scope.contains(region):
            raise NotFound(
                f"区域或网格 {region} 不存在或不在您的管辖范围内", code="region_not_found"
            )
        stmt = stmt.where(registry.in_scope(PatrolDay.grid_code, registry.scope_for_code(region)))
    elif supervisor:
        stmt = stmt.where(registry.in_scope(PatrolDay.grid_code, scope_of(user)))
    else:
        stmt = stmt.where(PatrolDay.user_id == user.id)
    if start:
        stmt = stmt.where(PatrolDay.day >= start)
    if end:
        stmt = stmt.where(PatrolDay.day <= end)
    return [
        (d, u)
        for d, u in session.execute(stmt.order_by(PatrolDay.day.desc(), User.username).limit(1000))
    ]


def purge_tracks(session: Session, *, keep_days: int, now: datetime) -> int:
    """Delete track points of patrols that ended more than `keep_days` ago (figures stay)."""
    cutoff = now - timedelta(days=keep_days)
    old = select(Patrol.id).where(
        Patrol.track_purged_at.is_(None),
        or_(
            and_(Patrol.ended_at.is_not(None), Patrol.ended_at < cutoff),
            and_(Patrol.ended_at.is_(None), Patrol.started_at < cutoff),
        ),
    )
    ids = list(session.scalars(old))
    if not ids:
        return 0
    n = 0
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        result = session.execute(delete(TrackPoint).where(TrackPoint.patrol_id.in_(part)))
        n += int(getattr(result, "rowcount", 0) or 0)
        for patrol in session.scalars(select(Patrol).where(Patrol.id.in_(part))):
            patrol.track_purged_at = now
            if patrol.status == PATROL_OPEN:
                patrol.status = PATROL_CLOSED
                patrol.ended_at = patrol.started_at + timedelta(seconds=patrol.duration_s)
    session.flush()
    return n


# --------------------------------------------------------------------------- check tasks


def _tasks_query(user: User) -> Any:
    # The caller's scope bounds every task; being the assignee never widens it (a worker moved
    # to another grid no longer sees the old grid's tasks).
    return select(CheckTask).where(
        CheckTask.status == TASK_OPEN,
        CheckTask.grid_code.is_not(None),
        registry.in_scope(CheckTask.grid_code, scope_of(user)),
    )


def list_check_tasks(session: Session, *, user: User, limit: int = 50) -> list[CheckTask]:
    return list(
        session.scalars(
            _tasks_query(user).order_by(CheckTask.created_at, CheckTask.id).limit(limit)
        )
    )


def access_check_task(
    session: Session, user: User, task_id: int, *, for_update: bool = False
) -> CheckTask:
    """A check task in the caller's scope (whoever it is assigned to); otherwise NotFound."""
    stmt = select(CheckTask).where(CheckTask.id == task_id)
    if for_update:
        stmt = stmt.with_for_update()
    task = session.scalar(stmt)
    if task is not None and task.grid_code is not None:
        scope = scope_of(user)
        if scope.level == CITY or scope.contains(task.grid_code):
            return task
    raise NotFound(f"核查任务 {task_id} 不存在或不在您的管辖范围内", code="task_not_found")


def _access_golden(session: Session, user: User, task: CheckTask) -> Any:
    """The task's golden record through the registry's access helpers (NotFound outside)."""
    if task.entity == "person":
        return registry.access_person(session, user, task.entity_id)
    if task.entity in ("organization", "org"):
        return registry.access_organization(session, user, task.entity_id)
    if task.entity == "room":
        return registry.access_house(session, user, task.entity_id)
    return None


def task_candidates(task: CheckTask, user: User) -> list[dict[str, Any]]:
    unmask = may_unmask(user.roles)
    return [
        {
            "index": i,
            "value": c.get("value") if unmask else mask_value(task.field, c.get("value")),
            "source": c.get("source") or "",
            "source_name": SOURCE_NAMES.get(c.get("source") or "", c.get("source") or ""),
            "as_of": c.get("as_of"),
        }
        for i, c in enumerate(task.candidates or [])
    ]


def task_subject(session: Session, task: CheckTask) -> str:
    if task.entity == "person":
        p = session.get(Person, task.entity_id)
        return p.name if p else f"人员 {task.entity_id}"
    if task.entity in ("organization", "org"):
        o = session.get(Organization, task.entity_id)
        return o.name if o else f"组织 {task.entity_id}"
    if task.entity == "room":
        r = session.get(Room, task.entity_id)
        a = session.get(Address, r.address_id) if r else None
        return a.text if a else f"房屋 {task.entity_id}"
    return f"{task.entity} {task.entity_id}"


def _coerce(model: Any, field_name: str, value: str, task_id: int) -> Any:
    """The value as the golden record's column stores it; a malformed one is refused by name."""
    column = model.__table__.columns.get(field_name)
    kind = column.type.python_type if column is not None else str
    try:
        if kind is date:
            return date.fromisoformat(value)
        if kind is bool:
            return {"1": True, "0": False, "是": True, "否": False}[value]
        if kind is float:
            return float(value)
    except (ValueError, KeyError):
        what = {date: "日期 YYYY-MM-DD", bool: "是 / 否", float: "数字"}[kind]
        raise Rejected(
            f"核查任务 {task_id} 的字段 {field_name} 须为{what}, 不是 {value!r}", code="bad_value"
        ) from None
    if (
        column is not None
        and isinstance(column.type, String)
        and column.type.length
        and len(value) > column.type.length
    ):
        raise Rejected(
            f"核查任务 {task_id} 的字段 {field_name} 最多 {column.type.length} 个字符",
            code="bad_value",
        )
    return value


@dataclass
class ResolveInput:
    choice: int | None = None  # a candidate's index
    value: str | None = None  # or the value found on site (field facts only)
    none_right: bool = False  # or: no candidate is right (legal facts; back to the department)
    note: str = ""
    photos: list[str] = field(default_factory=list)


GOLDEN = {"person": Person, "organization": Organization, "org": Organization, "room": Room}
SURVIVORSHIP_ENTITY = {"person": "person", "organization": "organization", "org": "organization",
                       "room": "room"}  # fmt: skip
# Legal identifiers that must stay unique among golden records, with their check.
UNIQUE_IDS: dict[tuple[str, str], Any] = {
    ("person", "citizen_id"): Person.citizen_id,
    ("organization", "credit_code"): Organization.credit_code,
}


def _check_identifier(field_name: str, value: str, task_id: int) -> None:
    from gridgov.resolve.identifiers import check_citizen_id, check_credit_code

    checked: Any = None
    if field_name in ("citizen_id", "legal_rep_id", "owner_id"):
        checked = check_citizen_id(value)
    elif field_name == "credit_code":
        checked = check_credit_code(value)
    if checked is not None and not checked.valid:
        why = "; ".join(p.message for p in checked.problems) or "校验不通过"
        raise Rejected(
            f"核查任务 {task_id} 的候选值 {field_name} 无效 ({why}), 不能确认; "
            "请报告「都不对」交主管部门核实",
            code="bad_value",
        )


def _check_unique(session: Session, entity: str, golden: Any, field_name: str, value: Any,
                  task_id: int) -> None:  # fmt: skip
    column = UNIQUE_IDS.get((entity, field_name))
    if column is None:
        return
    model = type(golden)
    clash = session.scalar(select(model.id).where(column == value, model.id != golden.id).limit(1))
    if clash is not None:
        raise Rejected(
            f"核查任务 {task_id}: {field_name} {mask_value(field_name, value)} 已属于另一条记录, "
            "不能确认为本记录的值; 请报告「都不对」交主管部门核实",
            code="duplicate_value",
        )


def is_legal_fact(task: CheckTask) -> bool:
    """A legal (authority) fact: the worker may only confirm a candidate or say none is right."""
    entity = SURVIVORSHIP_ENTITY.get(task.entity)
    return entity is not None and shipped_survivorship().rule(entity, task.field).kind == AUTHORITY


def resolve_check_task(
    session: Session, *, user: User, task_id: int, data: ResolveInput, now: datetime
) -> CheckTask:
    """Settle a conflict on site, as a WG check.

    A field fact (phone, actual residence, residence status, occupancy) takes a confirmed
    candidate or the value found on site, validated. A legal fact stays with its owning
    department: the worker can only confirm one of the department's candidates (the golden
    record takes it with that department's provenance), or report that none is right, which
    refers the task back to the department with the worker's note and changes nothing.
    """
    task = access_check_task(session, user, task_id, for_update=True)
    if task.assignee_id != user.id and not (
        Role.GRID_WORKER in user.roles and user.region_code == task.grid_code
    ):
        raise Forbidden(
            f"核查任务 {task_id} 只能由网格 {task.grid_code} 的网格员处理", code="not_allowed"
        )
    if task.status != TASK_OPEN:
        raise Rejected(f"核查任务 {task_id} 已处理", code="task_resolved")
    entity = SURVIVORSHIP_ENTITY.get(task.entity)
    authority = is_legal_fact(task)
    label = rules.FACT_NAMES.get(task.field, task.field)
    candidates = list(task.candidates or [])
    chosen: dict[str, Any] | None = None
    value: str | None = None
    if data.choice is not None:
        if not (0 <= data.choice < len(candidates)):
            raise Rejected(
                f"候选值 choice 须为 0–{len(candidates) - 1} 之一, 不是 {data.choice}",
                code="bad_choice",
            )
        chosen = candidates[data.choice]
        value = str(chosen.get("value") or "")
    elif data.none_right:
        if not authority:
            raise Rejected(
                f"「{label}」是现场信息: 候选值都不对时请填写现场核实的值 value",
                code="value_required",
            )
        if len(data.note.strip()) < 2:
            raise Rejected(
                "报告候选值都不对时, 请在备注 note 中说明现场看到的情况", code="note_required"
            )
    elif data.value is not None and data.value.strip():
        if authority or not rules.typed_value_allowed(task.entity, task.field):
            raise Rejected(
                f"「{label}」({task.field}) 是法定信息, 由主管部门维护, 不能填写现场值; "
                "请确认一个候选值, 或报告都不对 (任务退回主管部门核实)",
                code="authority_field",
            )
        value = data.value.strip()
        problem = rules.check_fact(task.field, value)
        if problem:
            raise Rejected(problem, code="bad_value")
        if task.field == "phone":
            value = rules.normalise_phone(value)
    else:
        raise Rejected("请选择一个候选值 choice 或填写现场核实的值 value", code="no_value")
    if len(data.note) > 1000:
        raise Rejected("备注 note 最多 1000 字", code="note_too_long")
    events.check_photos(session, data.photos)
    golden: Any = _access_golden(session, user, task) if task.entity in GOLDEN else None
    record_id: int | None = None
    if golden is not None and entity is not None and hasattr(golden, task.field):
        stored: Any = None
        if value is not None:
            stored = _coerce(type(golden), task.field, value, task_id)
            if authority:
                _check_identifier(task.field, value, task_id)
            _check_unique(session, entity, golden, task.field, stored, task_id)
        # What a later resolution can read (see README, "Check tasks"): a field fact as the WG
        # value of its field; a legal fact only as a confirmation naming the department's
        # record (never as a WG value of the field, which survivorship would weigh); a referral
        # as the worker's note.
        values: dict[str, Any]
        if data.none_right:
            values = {"none_of_candidates": task.field, "note": data.note.strip()}
        elif authority and chosen is not None:
            values = {"confirmed_field": task.field, "confirmed_value": value,
                      "confirmed_source": chosen.get("source"),
                      "confirmed_record": chosen.get("record"),
                      "confirmed_as_of": chosen.get("as_of")}  # fmt: skip
        else:
            values = {task.field: value}
        values["check_task"] = task.id
        if isinstance(golden, Person):
            # The identity the person has once this answer is applied (links the record).
            for ident in ("name", "citizen_id"):
                values[ident] = value if task.field == ident and value else getattr(golden, ident)
        record = write_check_record(
            session,
            user=user,
            grid_code=task.grid_code or user.region_code,
            values=values,
            kind="check" if entity == "person" else f"{entity[:4]}_check",
            now=now,
        )
        record_id = record.id
        session.add(
            RecordLink(source_record_id=record.id, entity=task.entity, entity_id=golden.id,
                       method="field")
        )  # fmt: skip
        if value is not None:
            if authority and chosen is not None:
                # A legal fact stays with its owning department: the worker says which is right.
                prov = {"source": chosen.get("source"), "record": chosen.get("record"),
                        "as_of": chosen.get("as_of"), "confirmed_by_check": record.id}  # fmt: skip
            else:
                prov = {"source": GRID_WORKER_SOURCE, "record": record.id,
                        "as_of": local_day(now).isoformat()}  # fmt: skip
            setattr(golden, task.field, stored)
            golden.provenance = {**(golden.provenance or {}), task.field: prov}
            golden.updated_at = now
    task.note = data.note.strip()
    resolution = {
        "value": value,
        "choice": data.choice,
        "source": (chosen.get("source") if chosen else GRID_WORKER_SOURCE),
        "record": record_id,
        "photos": list(data.photos),
        "by": user.username,
    }
    if authority and chosen is not None:
        resolution["candidate"] = {k: chosen.get(k) for k in ("value", "source", "record", "as_of")}
    if data.none_right:
        # Still open (open_key kept, so a later run does not open it twice), but with the
        # department now, not in the worker's list.
        task.status = TASK_REFERRED
        task.resolution = {**resolution, "none_right": True, "source": None}
    else:
        task.status = TASK_RESOLVED
        task.open_key = None
        task.resolved_at = now
        task.resolved_by = user.id
        task.resolution = resolution
    session.flush()
    return task


# --------------------------------------------------------------------------- categories


def categories_for(session: Session, *, ctx: EventContext, user: User) -> list[dict[str, Any]]:
    """The catalog with the user's most-used categories first (by their own reports)."""
    used = dict(
        session.execute(
            select(Event.category_code, func.count())
            .where(Event.reporter_id == user.id)
            .group_by(Event.category_code)
        ).all()
    )
    cats = list(ctx.catalog.categories.values())
    order = {c.code: i for i, c in enumerate(cats)}
    cats.sort(key=lambda c: (-used.get(c.code, 0), order[c.code]))
    return [
        {
            "code": c.code,
            "name": c.name,
            "self_close": c.self_close,
            "used": used.get(c.code, 0),
            "platform": c.platform,
        }
        for c in cats
    ]


def unit_name(session: Session, ctx: EventContext, key: str) -> str:
    u = Unit.parse(key)
    name = geo.region_names(session, [u.region_code]).get(u.region_code, u.region_code)
    if u.sub:
        return name + ctx.catalog.unit_name(u.level, u.sub)
    if u.level <= TOWN:
        return name + "指挥中心"
    return name


# ---------------------------------------------------------------------------------- sync

KINDS = ("report", "act", "visit", "check", "patrol_start", "track", "patrol_stop")
KIND_NAMES = {"report": "上报事件", "act": "事件处置", "visit": "走访", "check": "核查任务",
              "patrol_start": "开始巡查", "track": "巡查轨迹", "patrol_stop": "结束巡查"}  # fmt: skip


@dataclass
class SyncItem:
    key: str
    kind: str
    payload: dict[str, Any]


@dataclass
class SyncResult:
    key: str
    status: str  # done, refused
    replayed: bool
    result: dict[str, Any]


def _dt(payload: dict[str, Any], name: str) -> datetime | None:
    raw = payload.get(name)
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"{name} 须为 ISO 8601 时间, 不是 {raw!r}", code="bad_time") from None
    if value.tzinfo is None:
        raise Rejected(f"{name} 须带时区", code="naive_time")
    return value


def _float(payload: dict[str, Any], name: str) -> float | None:
    raw = payload.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise Rejected(f"{name} 须为数字, 不是 {raw!r}", code="bad_number") from None


def _str(payload: dict[str, Any], name: str, default: str = "") -> str:
    raw = payload.get(name, default)
    return default if raw is None else str(raw)


STALE_FIX = timedelta(minutes=10)


def _position(p: dict[str, Any], at: datetime | None, now: datetime, what: str
              ) -> tuple[float | None, float | None, float | None]:  # fmt: skip
    """lon, lat, accuracy of an item: a GPS fix older than the act by STALE_FIX is refused (it
    may be somewhere else); a point set by hand on the map carries no GPS accuracy."""
    lon, lat, accuracy = _float(p, "lon"), _float(p, "lat"), _float(p, "accuracy")
    source = _str(p, "position", "gps")
    if source not in ("gps", "manual"):
        raise Rejected(
            f"位置来源 position 须为 gps 或 manual, 不是 {source!r}", code="bad_location"
        )
    if source == "manual":
        return lon, lat, None
    fix_at = _dt(p, "fix_at")
    if fix_at is not None and lon is not None:
        age = (at or now) - fix_at
        if age > STALE_FIX:
            raise Rejected(
                f"{what}的定位时间 fix_at 比{what}时间早 {int(age.total_seconds() // 60)} 分钟, "
                "位置可能已过时; 请重新定位或在地图上选择位置",
                code="stale_position",
            )
    return lon, lat, accuracy


def _photos(payload: dict[str, Any], name: str = "photos") -> list[str]:
    raw = payload.get(name) or []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise Rejected(f"照片 {name} 须为照片 sha256 列表", code="bad_photos")
    return list(raw)


def _run(session: Session, ctx: EventContext, user: User, item: SyncItem, now: datetime
         ) -> dict[str, Any]:  # fmt: skip
    p = item.payload
    if item.kind == "report":
        photos = _photos(p)
        after = _photos(p, "after_photos")
        self_close = bool(p.get("self_close"))
        if not (1 <= len(photos) <= 6):
            raise Rejected("请附 1–6 张现场照片 photos", code="photos_required")
        if self_close and not (1 <= len(after) <= 3):
            raise Rejected(
                "当场处置结案须另附 1–3 张处置后照片 after_photos", code="after_photo_required"
            )
        if not self_close and after:
            raise Rejected("只有当场处置结案才附处置后照片 after_photos", code="bad_photos")
        discovered = _dt(p, "discovered_at")
        lon, lat, accuracy = _position(p, discovered, now, "上报")
        data = events.ReportInput(
            category_code=_str(p, "category"),
            description=_str(p, "description"),
            lon=lon,
            lat=lat,
            crs=_str(p, "crs", "wgs84"),
            accuracy_m=accuracy,
            address=_str(p, "address"),
            discovered_at=discovered,
            photos=photos,
            after_photos=after,
            self_close=self_close,
            result=_str(p, "result"),
        )
        channel = "grid" if Role.GRID_WORKER in user.roles else "staff"
        outcome = events.report_event(
            session, ctx=ctx, user=user, data=data, channel=channel, now=now
        )
        ev = outcome.event
        return {
            "tracking_no": ev.tracking_no,
            "status": ev.status,
            "self_closed": ev.self_closed,
            "holder": unit_name(session, ctx, ev.holder_unit),
            "category_name": ev.category_name,
        }
    if item.kind == "act":
        action = _str(p, "action")
        if action not in (Action.RECEIVE, Action.FEEDBACK, Action.RETURN):
            raise Rejected(
                f"移动端可执行的操作 action 为 receive (签收)、feedback (反馈)、return (退回), "
                f"不是 {action!r}",
                code="unknown_action",
            )
        version = p.get("version")
        version = None if version == "" else version
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise Rejected(f"事件版本 version 须为整数, 不是 {version!r}", code="bad_version")
        act = events.ActInput(
            action=action,
            version=version,
            comment=_str(p, "comment"),
            photos=_photos(p),
        )
        ev = events.act(session, ctx=ctx, user=user, ref=_str(p, "event"), data=act, now=now)
        return {
            "tracking_no": ev.tracking_no,
            "status": ev.status,
            "version": ev.version,
            "holder": unit_name(session, ctx, ev.holder_unit),
        }
    if item.kind == "visit":
        facts = p.get("facts") or {}
        if not isinstance(facts, dict) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in facts.values()
        ):
            raise Rejected("现场信息 facts 须为 {字段: 文字}", code="bad_fact")
        target_id = p.get("target_id")
        if not isinstance(target_id, int):
            raise Rejected("走访对象 target_id 须为整数", code="bad_target")
        visited = _dt(p, "visited_at")
        lon, lat, accuracy = _position(p, visited, now, "走访")
        visit = record_visit(
            session,
            user=user,
            data=VisitInput(
                target_kind=_str(p, "target_kind"),
                target_id=target_id,
                visit_type=_str(p, "visit_type", "routine"),
                notes=_str(p, "notes"),
                photos=_photos(p),
                lon=lon,
                lat=lat,
                accuracy_m=accuracy,
                visited_at=visited,
                facts={str(k): str(v) for k, v in facts.items()},
            ),
            now=now,
        )
        return {"visit_id": visit.id, "target": visit.target_label, "facts": visit.facts,
                "check_record": visit.source_record_id}  # fmt: skip
    if item.kind == "check":
        task_id, choice, value = p.get("task_id"), p.get("choice"), p.get("value")
        if value is not None and not isinstance(value, str):
            raise Rejected(f"现场核实的值 value 须为文字, 不是 {value!r}", code="bad_value")
        if not isinstance(task_id, int):
            raise Rejected("核查任务 task_id 须为整数", code="bad_task")
        if choice is not None and (not isinstance(choice, int) or isinstance(choice, bool)):
            raise Rejected("候选值 choice 须为整数", code="bad_choice")
        none_right = p.get("none_right", False)
        if not isinstance(none_right, bool):
            raise Rejected("都不对 none_right 须为 true 或 false", code="bad_choice")
        task = resolve_check_task(
            session,
            user=user,
            task_id=task_id,
            data=ResolveInput(
                choice=choice,
                value=value,
                none_right=none_right,
                note=_str(p, "note"),
                photos=_photos(p),
            ),
            now=now,
        )
        return {"task_id": task.id, "value": (task.resolution or {}).get("value"),
                "status": task.status}  # fmt: skip
    if item.kind in ("patrol_start", "track", "patrol_stop"):
        key = _str(p, "patrol")
        if item.kind == "patrol_start":
            patrol = start_patrol(session, user=user, key=key, started_at=_dt(p, "at"), now=now)
        elif item.kind == "track":
            raw = p.get("points") or []
            if not isinstance(raw, list):
                raise Rejected("轨迹点 points 须为列表", code="bad_points")
            pts = []
            for i, r in enumerate(raw):
                if not isinstance(r, dict):
                    raise Rejected(f"轨迹点 points[{i}] 须为对象", code="bad_points")
                at = _dt(r, "at")
                lon, lat = _float(r, "lon"), _float(r, "lat")
                if at is None or lon is None or lat is None:
                    raise Rejected(f"轨迹点 points[{i}] 须有 at, lon, lat", code="bad_points")
                pts.append(PointInput(at, lon, lat, _float(r, "accuracy")))
            skipped: list[str] = []
            patrol = add_points(session, user=user, key=key, points=pts, now=now, skipped=skipped)
            if skipped:
                return {**patrol_summary(patrol), "skipped": len(skipped),
                        "skipped_reasons": skipped[:10]}  # fmt: skip
        else:
            patrol = stop_patrol(session, user=user, key=key, ended_at=_dt(p, "at"), now=now)
        return patrol_summary(patrol)
    raise Rejected(f"未知的提交类型 kind {item.kind!r}; 可选: {', '.join(KINDS)}", code="bad_kind")


def patrol_summary(patrol: Patrol) -> dict[str, Any]:
    return {
        "patrol_id": patrol.id,
        "patrol": patrol.client_key,
        "status": patrol.status,
        "points": patrol.points,
        "distance_m": patrol.distance_m,
        "duration_s": patrol.duration_s,
        "buildings": patrol.buildings,
        "buildings_covered": patrol.buildings_covered,
        "coverage": patrol.coverage,
    }


def _receipt(session: Session, user: User, key: str) -> FieldReceipt | None:
    return session.scalar(
        select(FieldReceipt).where(FieldReceipt.user_id == user.id, FieldReceipt.key == key)
    )


def _replayed(receipt: FieldReceipt) -> SyncResult:
    return SyncResult(receipt.key, receipt.status, True, dict(receipt.result or {}))


def _apply(session: Session, ctx: EventContext, user: User, item: SyncItem, now: datetime
           ) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """One item in its own savepoint: done, or refused with a reason; never an error that
    would fail the other items of the request."""
    what = KIND_NAMES.get(item.kind, item.kind)
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return "done", _run(session, ctx, user, item, now)
        except DomainError as exc:
            return "refused", {"code": exc.code, "msg": exc.msg}
        except IntegrityError:
            # A concurrent request created the same row first (the day's provenance batch, a
            # patrol): the savepoint is gone, and the retry finds the row committed.
            if attempt == 1:
                continue
            return "refused", {
                "code": "conflict",
                "msg": f"{what}与已有记录冲突 (唯一值重复), 未保存; 请核对后重新填写",
            }
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # A payload of the wrong shape that the checks above did not name.
            return "refused", {
                "code": "bad_payload",
                "msg": f"{what}的提交内容格式有误, 未保存 ({type(exc).__name__})",
            }
    raise AssertionError("unreachable")


def sync(
    session: Session, *, ctx: EventContext, user: User, items: Sequence[SyncItem], now: datetime
) -> list[SyncResult]:
    """Apply queued items in order, each exactly once by its key.

    Each item runs in its own savepoint: a refused item (a domain error, a malformed payload,
    a unique value clash that a retry did not settle, each with its Chinese reason) leaves
    nothing behind but its receipt, so a replay answers the same refusal. Only the database
    failing as a whole aborts the request: the app keeps the items and sends them again.
    """
    if len(items) > MAX_SYNC_ITEMS:
        raise Rejected(f"每次最多同步 {MAX_SYNC_ITEMS} 项 items", code="too_many_items")
    out: list[SyncResult] = []
    for item in items:
        if not (8 <= len(item.key) <= 64):
            raise Rejected(f"提交编号 key 须为 8–64 个字符: {item.key!r}", code="bad_key")
        prior = _receipt(session, user, item.key)
        if prior is not None:
            out.append(_replayed(prior))
            continue
        status, result = _apply(session, ctx, user, item, now)
        try:
            with session.begin_nested():
                session.add(
                    FieldReceipt(user_id=user.id, key=item.key, kind=item.kind[:20],
                                 status=status, result=result, created_at=now)
                )  # fmt: skip
                session.flush()
        except IntegrityError:
            # The same key committed by a concurrent request first: ours must not count.
            raise DuplicateInFlight(item.key) from None
        out.append(SyncResult(item.key, status, False, result))
    return out


class DuplicateInFlight(Exception):
    """Another request carrying the same item committed while this one ran; retry the batch."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
