"""A unit's dashboard for a period, read from the rollups only (never the events table).

Towns, districts and the city read their own marginal rows (whole, per category, channel,
status) and their children's whole rows; villages and grids read the grid rows of their subtree.
Every figure is an events.figures.Figures built from rollup sums, so the closure figures are
defined once. The previous period (same length, just before) comes in the same queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from gridgov.analytics.rollups.models import BaseUnit, EventGridDay, EventUnitDay
from gridgov.analytics.rollups.rules import COUNTERS, UNIT_LEVELS
from gridgov.analytics.rollups.service import BASE_MEASURES
from gridgov.core.errors import Rejected
from gridgov.events.figures import Figures
from gridgov.events.rules import STATUS_LABELS
from gridgov.geo.divisions import GRID, LEVEL_NAMES, PREFIX_LEN, TOWN, VILLAGE, prefix_range
from gridgov.geo.models import Region

MAX_DAYS = 3 * 366
RATES = (
    "closure_rate",
    "on_time_closure_rate",
    "on_time_dispatch_rate",
    "self_closure_rate",
    "satisfaction_rate",
)
# Figures a map or chart may show, with their Chinese names.
FIGURE_LABELS = {
    "reported": "上报",
    "closed": "结案",
    "due": "应结案",
    "closure_rate": "结案率",
    "on_time_closure_rate": "按期结案率",
    "on_time_dispatch_rate": "按时分派率",
    "self_closure_rate": "网格自结率",
    "satisfaction_rate": "满意率",
    "handling_hours": "平均办理 (工作小时)",
    "overdue_open": "超期未结",
    "supervised": "督办",
}
BASE_LABELS = {
    "persons": "人口",
    "key_backbone": "重点人员 · 骨干类",
    "key_service": "重点人员 · 服务类",
    "key_control": "重点人员 · 管控类",
    "organizations": "组织",
    "houses": "房屋",
    "addresses": "标准地址",
    "grids": "网格",
    "grid_workers": "网格员",
}
DIM_LABELS = {"category": "类别", "status": "状态", "channel": "渠道"}

Vec = list[int]


@dataclass
class Period:
    start: date  # inclusive
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Period:
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def check_period(start: date, end: date) -> Period:
    if end < start:
        raise Rejected(f"截止日期 end {end} 早于起始日期 start {start}", code="bad_period")
    p = Period(start, end)
    if p.days > MAX_DAYS:
        raise Rejected(f"统计期间最长 {MAX_DAYS} 天, 所选为 {p.days} 天", code="bad_period")
    return p


def parse_period(start: str | None, end: str | None, *, today: date, days: int = 30) -> Period:
    """The period from ISO dates (both inclusive); by default the `days` days up to today."""

    def parse(value: str, name: str) -> date:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise Rejected(
                f"{name} 日期格式无效: {value!r} (例: 2026-11-01)", code="bad_date"
            ) from None

    e = parse(end, "截止日期 end") if end else today
    s = parse(start, "起始日期 start") if start else e - timedelta(days=days - 1)
    return check_period(s, e)


def figures_of(code: str, name: str, vec: Sequence[int]) -> Figures:
    d = dict(zip(COUNTERS, vec, strict=True))
    handled, secs = d.pop("handled"), d.pop("handling_seconds")
    return Figures(
        code=code,
        name=name,
        handling_hours=round(secs / handled / 3600, 2) if handled else None,
        **d,
    )


@dataclass
class Row:
    """One line of a breakdown: current and previous figures."""

    key: str
    name: str
    current: Figures
    previous: Figures
    base: dict[str, int | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "current": self.current.as_dict(),
            "previous": self.previous.as_dict(),
            "base": self.base,
        }


@dataclass
class Dashboard:
    region: Region
    period: Period
    total: Row
    children: list[Row]
    by_dim: dict[str, list[Row]]
    series: list[tuple[date, Figures]]
    previous_series: list[tuple[date, Figures]]
    base_hidden: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        prev = self.period.previous
        return {
            "region": {
                "code": self.region.code,
                "name": self.region.name,
                "level": self.region.level,
                "level_name": LEVEL_NAMES[self.region.level],
                "child_level_name": LEVEL_NAMES.get(self.region.level + 1),
            },
            "period": {
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
                "days": self.period.days,
                "previous_start": prev.start.isoformat(),
                "previous_end": prev.end.isoformat(),
            },
            "total": self.total.as_dict(),
            "children": [c.as_dict() for c in self.children],
            "by_category": [r.as_dict() for r in self.by_dim["category"]],
            "by_status": [r.as_dict() for r in self.by_dim["status"]],
            "by_channel": [r.as_dict() for r in self.by_dim["channel"]],
            "series": [_day_dict(d, f) for d, f in self.series],
            # The previous period's days only draw a comparison line: the counts, not the rates.
            "previous_series": [
                {"day": d.isoformat(), "reported": f.reported, "closed": f.closed}
                for d, f in self.previous_series
            ],
            "base_hidden": list(self.base_hidden),
            "labels": {
                "figures": FIGURE_LABELS,
                "base": BASE_LABELS,
                "dims": DIM_LABELS,
            },
        }


_DAY_KEYS = tuple(k for k in Figures.__slots__ if k not in ("code", "name"))


def _day_dict(day: date, f: Figures) -> dict[str, Any]:
    """One day of the series: the counters and rates (without code and name, which are the day)."""
    out: dict[str, Any] = {"day": day.isoformat()}
    for k in _DAY_KEYS:
        out[k] = getattr(f, k)
    for k in RATES:
        out[k] = getattr(f, k)
    return out


def _sums(model: Any) -> list[Any]:
    return [func.coalesce(func.sum(getattr(model, c)), 0).label(c) for c in COUNTERS]


def _vec(row: Any) -> Vec:
    return [int(getattr(row, c)) for c in COUNTERS]


def _add(acc: dict[Any, Vec], key: Any, vec: Sequence[int]) -> None:
    cur = acc.setdefault(key, [0] * len(COUNTERS))
    for i, x in enumerate(vec):
        cur[i] += x


def _range(column: Any, code: str, level: int) -> ColumnElement[bool]:
    if level == GRID:
        return column == code  # type: ignore[no-any-return]
    low, high = prefix_range(code[: PREFIX_LEN[level]])
    return and_(column >= low, column < high)


def dashboard(
    session: Session,
    *,
    region: Region,
    period: Period,
    category_names: Mapping[str, str],
    channel_names: Mapping[str, str],
    show_sensitive: bool,
) -> Dashboard:
    """The dashboard of a region the caller may see (the caller checked access)."""
    prev = period.previous
    level = region.level
    days: dict[date, Vec] = {}
    dims: dict[str, dict[tuple[str, str], Vec]] = {d: {} for d in DIM_LABELS}
    kids: dict[tuple[str, str], Vec] = {}

    def which(day: date) -> str:
        return "cur" if day >= period.start else "prev"

    if level in UNIT_LEVELS:
        U = EventUnitDay
        in_days = U.day.between(prev.start, period.end)
        for r in session.execute(
            select(U.day, *_sums(U))
            .where(U.level == level, U.dim == "", U.region_code == region.code, in_days)
            .group_by(U.day)
        ):
            days[r.day] = _vec(r)
        is_cur = case((U.day >= period.start, "cur"), else_="prev")
        for r in session.execute(
            select(U.dim, U.value, is_cur.label("which"), *_sums(U))
            .where(
                U.level == level,
                U.dim.in_(list(DIM_LABELS)),
                U.region_code == region.code,
                in_days,
            )
            .group_by(U.dim, U.value, is_cur)
        ):
            _add(dims[r.dim], (r.value, r.which), _vec(r))
        if level == TOWN:
            G = EventGridDay
            village = func.substr(G.grid_code, 1, PREFIX_LEN[VILLAGE])
            g_cur = case((G.day >= period.start, "cur"), else_="prev")
            rows = session.execute(
                select(village.label("code"), g_cur.label("which"), *_sums(G))
                .where(
                    _range(G.grid_code, region.code, level),
                    G.day.between(prev.start, period.end),
                )
                .group_by(village, g_cur)
            )
        else:
            rows = session.execute(
                select(U.region_code.label("code"), is_cur.label("which"), *_sums(U))
                .where(
                    U.level == level + 1,
                    U.dim == "",
                    _range(U.region_code, region.code, level),
                    in_days,
                )
                .group_by(U.region_code, is_cur)
            )
        for r in rows:
            _add(kids, (r.code, r.which), _vec(r))
    else:
        G = EventGridDay
        for r in session.execute(
            select(G.grid_code, G.day, G.category_code, G.channel, G.status, *_sums(G))
            .where(_range(G.grid_code, region.code, level), G.day.between(prev.start, period.end))
            .group_by(G.grid_code, G.day, G.category_code, G.channel, G.status)
        ):
            vec = _vec(r)
            w = which(r.day)
            _add(days, r.day, vec)
            _add(dims["category"], (r.category_code, w), vec)
            _add(dims["channel"], (r.channel, w), vec)
            _add(dims["status"], (r.status, w), vec)
            if level == VILLAGE:
                _add(kids, (r.grid_code, w), vec)

    zero = [0] * len(COUNTERS)
    totals: dict[str, Vec] = {}
    for day, vec in days.items():
        _add(totals, which(day), vec)

    def series(p: Period) -> list[tuple[date, Figures]]:
        out = []
        for i in range(p.days):
            d = p.start + timedelta(days=i)
            out.append((d, figures_of(d.isoformat(), d.isoformat(), days.get(d, zero))))
        return out

    base = _base(session, region, show_sensitive)
    total = Row(
        region.code,
        region.name,
        figures_of(region.code, region.name, totals.get("cur", zero)),
        figures_of(region.code, region.name, totals.get("prev", zero)),
        base.get(region.code, {}),
    )
    children = []
    if level < GRID:
        for code, name in session.execute(
            select(Region.code, Region.name)
            .where(Region.parent_code == region.code)
            .order_by(Region.code)
        ):
            children.append(
                Row(
                    code,
                    name,
                    figures_of(code, name, kids.get((code, "cur"), zero)),
                    figures_of(code, name, kids.get((code, "prev"), zero)),
                    base.get(code, {}),
                )
            )
    names = {"category": category_names, "channel": channel_names, "status": STATUS_LABELS}
    by_dim: dict[str, list[Row]] = {}
    for dim, acc in dims.items():
        values = sorted({v for v, _ in acc})
        rows_ = [
            Row(
                v,
                names[dim].get(v, v),
                figures_of(v, names[dim].get(v, v), acc.get((v, "cur"), zero)),
                figures_of(v, names[dim].get(v, v), acc.get((v, "prev"), zero)),
            )
            for v in values
        ]
        rows_.sort(key=lambda r: (-r.current.reported, r.key))
        by_dim[dim] = rows_
    hidden = () if show_sensitive else ("key_control",)
    return Dashboard(region, period, total, children, by_dim, series(period), series(prev), hidden)


def _base(
    session: Session, region: Region, show_sensitive: bool
) -> dict[str, dict[str, int | None]]:
    """Base numbers of the region and its children, by code."""
    B = BaseUnit
    rows = session.execute(
        select(B).where(
            (B.region_code == region.code)
            | (and_(B.level == region.level + 1, _range(B.region_code, region.code, region.level)))
        )
    ).scalars()
    out: dict[str, dict[str, int | None]] = {}
    for r in rows:
        values: dict[str, int | None] = {m: int(getattr(r, m)) for m in BASE_MEASURES}
        if not show_sensitive:
            values["key_control"] = None
        out[r.region_code] = values
    return out
