"""Assessment per grid worker, grid, village, town and department for a period, in set-based SQL.

Every count is one grouped query over the source tables (events, visits, rooms and persons,
check tasks, daily patrol figures): by grid for the areas (villages and towns are sums of their
grids' numerators and denominators), by user for the workers, by handling unit for departments.
The caller's jurisdiction bounds everything: the root region is loaded through accounts.access.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, union_all
from sqlalchemy.orm import Session

from gridgov.accounts.models import User, UserRole
from gridgov.accounts.rules import Role
from gridgov.analytics.assessment import rules
from gridgov.analytics.assessment.config import AssessmentConfig
from gridgov.analytics.assessment.rules import LEVELS, Ratio, Row
from gridgov.core.clock import DISPLAY_TZ
from gridgov.core.errors import Rejected
from gridgov.db.sqltime import seconds_between
from gridgov.events.calendar import Allowance
from gridgov.events.models import Event
from gridgov.events.rules import Status, Unit
from gridgov.events.service import EventContext
from gridgov.field.models import PatrolDay, Visit
from gridgov.geo.divisions import (
    CITY,
    GRID,
    PREFIX_LEN,
    TOWN,
    VILLAGE,
    level_of_code,
    prefix_range,
)
from gridgov.geo.models import Region
from gridgov.registry.models import TASK_OPEN, TASK_REFERRED, TASK_RESOLVED, CheckTask, Person, Room

MAX_DAYS = 366
_EPS = 1e-3  # julianday() arithmetic on SQLite is exact only to about a millisecond


# ---------------------------------------------------------------------------------- period


@dataclass(frozen=True, slots=True)
class Period:
    """Local (Asia/Shanghai) dates, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=DISPLAY_TZ)

    @property
    def end(self) -> datetime:
        nxt = self.last + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=DISPLAY_TZ)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def label(self) -> str:
        return f"{self.first.isoformat()} 至 {self.last.isoformat()}"


def last_month(now: datetime) -> Period:
    today = now.astimezone(DISPLAY_TZ).date()
    last = today.replace(day=1) - timedelta(days=1)
    return Period(last.replace(day=1), last)


def parse_date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise Rejected(
            f"{name} 日期格式无效: {value!r} (例: 2026-10-01)", code="bad_date"
        ) from None


def make_period(first: str | date | None, last: str | date | None, *, now: datetime) -> Period:
    """From–to dates (both included), at most a year. Neither given: last month; only `from`:
    up to today; only `to`: from the first day of its month."""
    a = parse_date(first, "起始日期 from") if isinstance(first, str) and first else first or None
    b = parse_date(last, "截止日期 to") if isinstance(last, str) and last else last or None
    if a is None and b is None:
        return last_month(now)
    if b is None:
        b = now.astimezone(DISPLAY_TZ).date()
    if a is None:
        a = b.replace(day=1)
    if b < a:
        raise Rejected(f"截止日期 {b} 早于起始日期 {a}", code="bad_period")
    if (b - a).days + 1 > MAX_DAYS:
        raise Rejected(f"考核期最长 {MAX_DAYS} 天, 所选为 {(b - a).days + 1} 天", code="bad_period")
    return Period(a, b)


# --------------------------------------------------------------------------------- results


@dataclass
class Assessment:
    region: Region
    period: Period
    config: AssessmentConfig
    computed_at: datetime
    levels: dict[str, list[Row]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": {"code": self.region.code, "name": self.region.name},
            "period": {"from": self.period.first.isoformat(), "to": self.period.last.isoformat()},
            "computed_at": self.computed_at.isoformat(),
            "method": {
                "rules": rules.method_text(self.config),
                "indicators": rules.method_lines(self.config),
            },
            "levels": {lv: [r.as_dict() for r in rows] for lv, rows in self.levels.items()},
        }


def levels_for(region_code: str) -> list[str]:
    """The levels a table is shown for under a root region."""
    level = level_of_code(region_code)
    out = ["worker", "grid"]
    if level <= VILLAGE:
        out.append("village")
    if level <= TOWN:
        out += ["town", "department"]
    return [lv for lv in LEVELS if lv in out]


# ---------------------------------------------------------------------------------- counts


def _sum(cond: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _in_root(column: Any, root: str) -> ColumnElement[bool]:
    level = level_of_code(root)
    if level == GRID:
        return column == root  # type: ignore[no-any-return]
    low, high = prefix_range(root[: PREFIX_LEN[level]])
    return and_(column >= low, column < high)


Counts = dict[str, dict[str, list[float]]]  # subject -> indicator -> [num, den]


def _add(counts: Counts, subject: str, key: str, num: float, den: float) -> None:
    cell = counts[subject].setdefault(key, [0.0, 0.0])
    cell[0] += float(num or 0)
    cell[1] += float(den or 0)


def _event_columns(ctx: EventContext, now: datetime) -> list[Any]:
    closed = Event.status == Status.CLOSED.value
    accepted = and_(Event.accepted_at.is_not(None), Event.status != Status.REFUSED.value)
    overdue_open = and_(
        ~closed,
        or_(
            Event.deadline_at <= now,
            Event.warning_level >= 2,
            Event.spent_seconds > Event.allowed_seconds,
        ),
    )
    due = and_(accepted, or_(closed, overdue_open))
    grid = Event.channel == "grid"
    day = ctx.calendar.office_hours.day_seconds
    within = Allowance.parse(ctx.catalog.rules.report_within, day).seconds
    within_now = Allowance.parse(ctx.catalog.rules.report_within_immediate, day).seconds
    immediate = [c.code for c in ctx.catalog.categories.values() if c.immediate]
    limit = case(
        (or_(Event.category_code.in_(immediate), Event.urgency == "immediate"), within_now),
        else_=within,
    )
    delay = seconds_between(Event.reported_at, Event.discovered_at)
    return [
        _sum(due).label("due"),
        _sum(and_(due, closed, Event.closed_on_time.is_(True))).label("on_time"),
        _sum(grid).label("grid_reports"),
        _sum(and_(grid, closed, Event.closed_level == GRID)).label("closed_at_grid"),
        _sum(and_(grid, delay <= limit + _EPS)).label("timely"),
        _sum(Event.satisfaction.is_not(None)).label("follow_ups"),
        _sum(Event.satisfaction.in_(["satisfied", "fair"])).label("satisfied"),
    ]


def _add_events(counts: Counts, subject: str, r: Any) -> None:
    _add(counts, subject, "on_time_closure", r.on_time, r.due)
    _add(counts, subject, "self_closure", r.closed_at_grid, r.grid_reports)
    _add(counts, subject, "timely_report", r.timely, r.grid_reports)
    _add(counts, subject, "satisfaction", r.satisfied, r.follow_ups)


def _period_events(period: Period) -> ColumnElement[bool]:
    return and_(Event.reported_at >= period.start, Event.reported_at < period.end)


def _visited_rooms(period: Period) -> Any:
    """(room_id, user_id) of every visit in the period, to a room or to a person living in one."""
    in_period = and_(Visit.visited_at >= period.start, Visit.visited_at < period.end)
    houses = select(Visit.target_id.label("room_id"), Visit.user_id.label("user_id")).where(
        Visit.target_kind == "house", in_period
    )
    persons = (
        select(Person.room_id.label("room_id"), Visit.user_id.label("user_id"))
        .join(Person, Person.id == Visit.target_id)
        .where(Visit.target_kind == "person", in_period, Person.room_id.is_not(None))
    )
    return union_all(houses, persons).subquery("visited")


def _occupied() -> ColumnElement[bool]:
    return exists(select(Person.id).where(Person.room_id == Room.id))


def _check_columns(config: AssessmentConfig, now: datetime) -> list[Any]:
    days = config.check_task_days
    not_yet_due = and_(
        CheckTask.status == TASK_OPEN, CheckTask.created_at > now - timedelta(days=days)
    )
    counted = and_(CheckTask.status != TASK_REFERRED, ~not_yet_due)
    on_time = and_(
        CheckTask.status == TASK_RESOLVED,
        CheckTask.resolved_at.is_not(None),
        seconds_between(CheckTask.resolved_at, CheckTask.created_at) <= days * 86400 + _EPS,
    )
    return [_sum(counted).label("due"), _sum(and_(counted, on_time)).label("on_time")]


def _workdays(ctx: EventContext, period: Period) -> list[date]:
    return [d for d in period.days() if ctx.calendar.is_workday(d)]


def grid_counts(
    session: Session,
    *,
    root: str,
    period: Period,
    config: AssessmentConfig,
    ctx: EventContext,
    now: datetime,
    grids: Iterable[str],
) -> Counts:
    """Numerators and denominators of every indicator for each grid under `root`."""
    counts: Counts = defaultdict(dict)
    for r in session.execute(
        select(Event.grid_code.label("g"), *_event_columns(ctx, now))
        .where(_in_root(Event.grid_code, root), _period_events(period))
        .group_by(Event.grid_code)
    ):
        _add_events(counts, r.g, r)
    # Households (occupied rooms) and those visited in the period.
    for r in session.execute(
        select(Room.grid_code.label("g"), func.count().label("n"))
        .where(_in_root(Room.grid_code, root), _occupied())
        .group_by(Room.grid_code)
    ):
        _add(counts, r.g, "visit_coverage", 0, r.n)
    visited = _visited_rooms(period)
    for r in session.execute(
        select(Room.grid_code.label("g"), func.count(func.distinct(Room.id)).label("n"))
        .join(visited, visited.c.room_id == Room.id)
        .where(_in_root(Room.grid_code, root), _occupied())
        .group_by(Room.grid_code)
    ):
        _add(counts, r.g, "visit_coverage", r.n, 0)
    for r in session.execute(
        select(CheckTask.grid_code.label("g"), *_check_columns(config, now))
        .where(
            _in_root(CheckTask.grid_code, root),
            CheckTask.created_at >= period.start,
            CheckTask.created_at < period.end,
        )
        .group_by(CheckTask.grid_code)
    ):
        _add(counts, r.g, "check_on_time", r.on_time, r.due)
    workdays = _workdays(ctx, period)
    grid_list = list(grids)
    for g in grid_list:
        _add(counts, g, "patrol_attendance", 0, len(workdays))
    if workdays:
        for r in session.execute(
            select(PatrolDay.grid_code.label("g"), func.count(func.distinct(PatrolDay.day)))
            .where(
                _in_root(PatrolDay.grid_code, root),
                PatrolDay.day.in_(workdays),
                PatrolDay.patrols > 0,
            )
            .group_by(PatrolDay.grid_code)
        ):
            _add(counts, r.g, "patrol_attendance", r[1], 0)
    for r in session.execute(
        select(
            PatrolDay.grid_code.label("g"),
            func.sum(PatrolDay.coverage).label("s"),
            func.count().label("n"),
        )
        .where(
            _in_root(PatrolDay.grid_code, root),
            PatrolDay.day >= period.first,
            PatrolDay.day <= period.last,
            PatrolDay.patrols > 0,
            PatrolDay.buildings > 0,
        )
        .group_by(PatrolDay.grid_code)
    ):
        _add(counts, r.g, "patrol_coverage", r.s, r.n)
    return counts


def worker_counts(
    session: Session,
    *,
    root: str,
    workers: Sequence[tuple[int, str]],
    period: Period,
    config: AssessmentConfig,
    ctx: EventContext,
    now: datetime,
    grid: Counts,
) -> Counts:
    """Each worker's counts: their reports, their visits to their grid's households, the check
    tasks assigned to or resolved by them, their own patrol days. Keyed by str(user id).

    Each query groups the period's rows under the root by user, and the rows of users who are
    not among `workers` are dropped here: filtering by a subquery of workers instead lets
    PostgreSQL pick a nested loop over users when its statistics are stale (seconds, not ms)."""
    counts: Counts = defaultdict(dict)
    if not workers:
        return counts
    grid_of = dict(workers)
    for r in session.execute(
        select(Event.reporter_id.label("u"), *_event_columns(ctx, now))
        .where(
            _in_root(Event.grid_code, root), _period_events(period), Event.reporter_id.is_not(None)
        )
        .group_by(Event.reporter_id)
    ):
        if r.u in grid_of:
            _add_events(counts, str(r.u), r)
    visited = _visited_rooms(period)
    seen: dict[int, float] = {}
    for r in session.execute(
        select(
            visited.c.user_id.label("u"),
            Room.grid_code.label("g"),
            func.count(func.distinct(Room.id)).label("n"),
        )
        .join(Room, Room.id == visited.c.room_id)
        .where(_in_root(Room.grid_code, root), visited.c.user_id.is_not(None), _occupied())
        .group_by(visited.c.user_id, Room.grid_code)
    ):
        if grid_of.get(r.u) == r.g:  # only households of the worker's own grid count
            seen[r.u] = float(r.n)
    for uid, g in workers:
        households = grid.get(g, {}).get("visit_coverage", [0.0, 0.0])[1]
        _add(counts, str(uid), "visit_coverage", seen.get(uid, 0.0), households)
    who = func.coalesce(CheckTask.resolved_by, CheckTask.assignee_id)
    for r in session.execute(
        select(who.label("u"), *_check_columns(config, now))
        .where(
            _in_root(CheckTask.grid_code, root),
            who.is_not(None),
            CheckTask.created_at >= period.start,
            CheckTask.created_at < period.end,
        )
        .group_by(who)
    ):
        if r.u in grid_of:
            _add(counts, str(r.u), "check_on_time", r.on_time, r.due)
    workdays = _workdays(ctx, period)
    for uid, _ in workers:
        _add(counts, str(uid), "patrol_attendance", 0, len(workdays))
    if workdays:
        for r in session.execute(
            select(PatrolDay.user_id.label("u"), func.count().label("n"))
            .where(
                _in_root(PatrolDay.grid_code, root),
                PatrolDay.day.in_(workdays),
                PatrolDay.patrols > 0,
            )
            .group_by(PatrolDay.user_id)
        ):
            if r.u in grid_of:
                _add(counts, str(r.u), "patrol_attendance", r.n, 0)
    for r in session.execute(
        select(
            PatrolDay.user_id.label("u"),
            func.sum(PatrolDay.coverage).label("s"),
            func.count().label("n"),
        )
        .where(
            _in_root(PatrolDay.grid_code, root),
            PatrolDay.day >= period.first,
            PatrolDay.day <= period.last,
            PatrolDay.patrols > 0,
            PatrolDay.buildings > 0,
        )
        .group_by(PatrolDay.user_id)
    ):
        if r.u in grid_of:
            _add(counts, str(r.u), "patrol_coverage", r.s, r.n)
    return counts


def department_counts(
    session: Session, *, root: str, period: Period, ctx: EventContext, now: datetime
) -> Counts:
    """Events per handling unit that is a town platform or a department (unit key with a '/')."""
    counts: Counts = defaultdict(dict)
    prefix = root[: PREFIX_LEN[level_of_code(root)]]
    for r in session.execute(
        select(Event.holder_unit.label("unit"), *_event_columns(ctx, now))
        .where(Event.holder_unit.like(f"{prefix}%/%"), _period_events(period))
        .group_by(Event.holder_unit)
    ):
        if Unit.parse(r.unit).region_code.startswith(prefix):
            _add_events(counts, r.unit, r)
    return counts


# --------------------------------------------------------------------------------- assess


def _ratios(cells: dict[str, list[float]]) -> dict[str, Ratio]:
    return {k: Ratio(v[0], v[1]) for k, v in cells.items()}


def _roll_up(grid: Counts, codes: Iterable[str], width: int) -> Counts:
    out: Counts = defaultdict(dict)
    wanted = set(codes)
    for g, cells in grid.items():
        key = g[:width].ljust(12, "0")
        if key in wanted:
            for k, (num, den) in cells.items():
                _add(out, key, k, num, den)
    return out


def _worker_filter(root: str) -> list[ColumnElement[bool]]:
    return [
        UserRole.role == Role.GRID_WORKER.value,
        User.is_active.is_(True),
        _in_root(User.region_code, root),
        func.length(User.region_code) == 15,
    ]


def _workers(session: Session, root: str) -> list[tuple[int, str, str, str]]:
    """(id, grid code, username, display name) of active grid workers under the root."""
    return [
        (r.id, r.region_code, r.username, r.display_name)
        for r in session.execute(
            select(User.id, User.region_code, User.username, User.display_name)
            .join(UserRole, UserRole.user_id == User.id)
            .where(*_worker_filter(root))
            .order_by(User.username)
        )
    ]


def compute(
    session: Session,
    *,
    region: Region,
    period: Period,
    config: AssessmentConfig,
    ctx: EventContext,
    now: datetime,
    levels: Sequence[str] | None = None,
) -> Assessment:
    """Ranked tables for the root region and every level below it.

    The caller loads `region` through accounts.access (its jurisdiction bounds every count)."""
    root = region.code
    shown = [lv for lv in levels_for(root) if levels is None or lv in levels]
    if levels is not None:
        unknown = [lv for lv in levels if lv not in LEVELS]
        if unknown:
            raise Rejected(
                f"层级 level {unknown[0]!r} 无效; 可选: {', '.join(LEVELS)}", code="bad_level"
            )
    regions = {
        r.code: r
        for r in session.execute(
            select(Region.code, Region.name, Region.level, Region.parent_code).where(
                or_(_in_root(Region.code, root), Region.level <= TOWN)
            )
        )
    }
    grids = sorted(c for c, r in regions.items() if r.level == GRID and _contains(root, c))
    result = Assessment(region, period, config, now)

    def name(code: str | None) -> str:
        return regions[code].name if code and code in regions else (code or "")

    grid: Counts = {}
    if any(lv != "department" for lv in shown):
        grid = grid_counts(
            session, root=root, period=period, config=config, ctx=ctx, now=now, grids=grids
        )
    for lv in shown:
        rows: list[Row] = []
        if lv == "grid":
            for g in grids:
                rows.append(
                    rules.assess(
                        lv,
                        g,
                        name(g),
                        name(regions[g].parent_code),
                        _ratios(grid.get(g, {})),
                        config,
                    )
                )
        elif lv in ("village", "town"):
            level = VILLAGE if lv == "village" else TOWN
            codes = sorted(c for c, r in regions.items() if r.level == level and _contains(root, c))
            rolled = _roll_up(grid, codes, PREFIX_LEN[level])
            for c in codes:
                rows.append(
                    rules.assess(
                        lv,
                        c,
                        name(c),
                        name(regions[c].parent_code),
                        _ratios(rolled.get(c, {})),
                        config,
                    )
                )
        elif lv == "worker":
            workers = _workers(session, root)
            wc = worker_counts(
                session,
                root=root,
                workers=[(w[0], w[1]) for w in workers],
                period=period,
                config=config,
                ctx=ctx,
                now=now,
                grid=grid,
            )
            for uid, g, username, display in workers:
                row = rules.assess(
                    lv, username, display or username, name(g), _ratios(wc.get(str(uid), {})),
                    config,
                )  # fmt: skip
                row.extra = {"grid_code": g}
                rows.append(row)
        elif lv == "department":
            dc = department_counts(session, root=root, period=period, ctx=ctx, now=now)
            for key in sorted(dc):
                unit = Unit.parse(key)
                sub_name = ctx.catalog.unit_name(unit.level, unit.sub)
                rows.append(
                    rules.assess(
                        lv,
                        key,
                        f"{name(unit.region_code)}{sub_name}",
                        name(unit.region_code),
                        _ratios(dc[key]),
                        config,
                    )
                )
        result.levels[lv] = rules.rank(rows)
    return result


def _contains(root: str, code: str) -> bool:
    level = level_of_code(root)
    if level == CITY:
        return code.startswith(root[:4])
    return code.startswith(root[: PREFIX_LEN[level]]) and len(code) >= len(root)


__all__ = ["Assessment", "Period", "compute", "last_month", "levels_for", "make_period"]
