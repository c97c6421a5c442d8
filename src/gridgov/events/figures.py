"""The loop's headline figures per unit and period, computed in SQL from what the timeline fixed.

Every figure comes from one query here, so the API, the pages and the exports agree. Definitions
(DOMAIN.md §7): closure rate = closed / due to close (accepted, not refused); on-time closure rate
= closed on time / due to close; on-time dispatch rate = dispatched on time / dispatched; grid
self-closure rate = grid workers' reports closed at grid level / grid workers' reports; average
handling time = working hours on the clock of closed events; satisfaction = (satisfied + fair) /
follow-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from gridgov.events.models import Event
from gridgov.events.rules import Status
from gridgov.geo.divisions import (
    CITY,
    DISTRICT,
    GRID,
    PREFIX_LEN,
    TOWN,
    VILLAGE,
    level_of_code,
    prefix_range,
)
from gridgov.geo.models import Region

_GROUP = {
    CITY: Event.district_code,
    DISTRICT: Event.town_code,
    TOWN: Event.village_code,
    VILLAGE: Event.grid_code,
}


@dataclass(frozen=True, slots=True)
class Figures:
    code: str
    name: str
    reported: int
    grid_reported: int
    due: int
    closed: int
    closed_on_time: int
    dispatched: int
    dispatched_on_time: int
    self_closed: int
    closed_at_grid: int
    overdue_open: int
    supervised: int
    follow_ups: int
    satisfied: int
    handling_hours: float | None

    @staticmethod
    def _rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    @property
    def closure_rate(self) -> float | None:
        return self._rate(self.closed, self.due)

    @property
    def on_time_closure_rate(self) -> float | None:
        return self._rate(self.closed_on_time, self.due)

    @property
    def on_time_dispatch_rate(self) -> float | None:
        return self._rate(self.dispatched_on_time, self.dispatched)

    @property
    def self_closure_rate(self) -> float | None:
        return self._rate(self.closed_at_grid, self.grid_reported)

    @property
    def satisfaction_rate(self) -> float | None:
        return self._rate(self.satisfied, self.follow_ups)

    def as_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}
        for rate in (
            "closure_rate",
            "on_time_closure_rate",
            "on_time_dispatch_rate",
            "self_closure_rate",
            "satisfaction_rate",
        ):
            out[rate] = getattr(self, rate)
        return out


LABELS = {
    "reported": "上报",
    "closed": "结案",
    "closure_rate": "结案率",
    "on_time_closure_rate": "按期结案率",
    "on_time_dispatch_rate": "按时分派率",
    "self_closure_rate": "网格自结率",
    "handling_hours": "平均办理 (工作小时)",
    "overdue_open": "超期未结",
    "supervised": "督办",
    "satisfaction_rate": "满意率",
}


def _region_condition(code: str) -> ColumnElement[bool]:
    level = level_of_code(code)
    if level == GRID:
        return Event.grid_code == code
    low, high = prefix_range(code[: PREFIX_LEN[level]])
    return and_(Event.grid_code >= low, Event.grid_code < high)


def _count(cond: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def figures(
    session: Session, *, region_code: str, start: datetime, end: datetime, by_child: bool = True
) -> tuple[Figures, list[Figures]]:
    """Figures for the region (a total) and, with by_child, for each unit one level down.

    The period selects events by report time: [start, end). The caller checks jurisdiction.
    """
    level = level_of_code(region_code)
    closed = Event.status == Status.CLOSED.value
    accepted = and_(Event.accepted_at.is_not(None), Event.status != Status.REFUSED.value)
    open_ = Event.status.not_in([Status.CLOSED.value, Status.REFUSED.value])
    columns = [
        func.count().label("reported"),
        _count(Event.channel == "grid").label("grid_reported"),
        _count(accepted).label("due"),
        _count(closed).label("closed"),
        _count(and_(closed, Event.closed_on_time.is_(True))).label("closed_on_time"),
        _count(Event.dispatched_on_time.is_not(None)).label("dispatched"),
        _count(Event.dispatched_on_time.is_(True)).label("dispatched_on_time"),
        _count(Event.self_closed.is_(True)).label("self_closed"),
        _count(and_(closed, Event.channel == "grid", Event.closed_level == GRID)).label(
            "closed_at_grid"
        ),
        _count(and_(open_, Event.warning_level >= 2)).label("overdue_open"),
        _count(Event.supervised_count > 0).label("supervised"),
        _count(Event.satisfaction.is_not(None)).label("follow_ups"),
        _count(Event.satisfaction.in_(["satisfied", "fair"])).label("satisfied"),
        func.avg(
            case(
                (
                    and_(closed, Event.office_clock.is_(True), Event.self_closed.is_(False)),
                    Event.spent_seconds,
                )
            )
        ).label("handling_seconds"),
    ]
    where = and_(
        _region_condition(region_code), Event.reported_at >= start, Event.reported_at < end
    )
    total_row = session.execute(select(*columns).where(where)).one()
    names: dict[str, str] = {}
    rows: list[Any] = []
    group = _GROUP.get(level)
    if by_child and group is not None:
        rows = list(
            session.execute(
                select(group.label("code"), *columns).where(where).group_by(group)
            ).all()
        )
        child_codes = [r.code for r in rows]
        kids = session.execute(
            select(Region.code, Region.name).where(Region.parent_code == region_code)
        ).all()
        names = {k.code: k.name for k in kids}
        present = set(child_codes)
        # Units without events still appear, with zeros, so a quiet unit is visible.
        for code in names:
            if code not in present:
                rows.append(_Zero(code))
    region = session.get(Region, region_code)
    total = _figures(region_code, region.name if region else region_code, total_row)
    children = sorted(
        (_figures(r.code, names.get(r.code, r.code), r) for r in rows), key=lambda f: f.code
    )
    return total, children


class _Zero:
    def __init__(self, code: str) -> None:
        self.code = code

    def __getattr__(self, name: str) -> Any:
        return None if name == "handling_seconds" else 0


def _figures(code: str, name: str, r: Any) -> Figures:
    secs = r.handling_seconds
    return Figures(
        code=code,
        name=name,
        reported=int(r.reported),
        grid_reported=int(r.grid_reported),
        due=int(r.due),
        closed=int(r.closed),
        closed_on_time=int(r.closed_on_time),
        dispatched=int(r.dispatched),
        dispatched_on_time=int(r.dispatched_on_time),
        self_closed=int(r.self_closed),
        closed_at_grid=int(r.closed_at_grid),
        overdue_open=int(r.overdue_open),
        supervised=int(r.supervised),
        follow_ups=int(r.follow_ups),
        satisfied=int(r.satisfied),
        handling_hours=round(float(secs) / 3600, 2) if secs is not None else None,
    )
