"""What one event adds to the rollups: its bucket keys and counters. Pure: values in, rows out.

The counters are those of events.figures (DOMAIN.md §7), so every closure figure is a ratio of two
rollup sums. An event counts once in its grid row and once in each marginal row (the whole, its
category, channel and status) of its town, district and city, for its local report day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from gridgov.core.clock import DISPLAY_TZ
from gridgov.geo.divisions import CITY, DISTRICT, GRID, TOWN

COUNTERS = (
    "reported",  # every event
    "grid_reported",  # reported by a grid worker (channel "grid")
    "due",  # accepted and not refused: due to close
    "closed",
    "closed_on_time",
    "dispatched",  # dispatched (on time or not)
    "dispatched_on_time",
    "self_closed",  # a grid worker's on-the-spot fix
    "closed_at_grid",  # a grid worker's report closed at grid level
    "overdue_open",  # open with a red warning
    "supervised",
    "follow_ups",  # a satisfaction answer recorded
    "satisfied",  # satisfied or fair
    "handled",  # closed on the office clock by handling (for the average handling time)
    "handling_seconds",  # their working seconds on the clock
)

# The fields of an event the counters and keys depend on.
FIELDS = (
    "reported_at",
    "grid_code",
    "category_code",
    "channel",
    "status",
    "accepted_at",
    "closed_on_time",
    "dispatched_on_time",
    "self_closed",
    "closed_level",
    "warning_level",
    "supervised_count",
    "satisfaction",
    "office_clock",
    "spent_seconds",
)

# Levels with marginal rows, and the marginal dimensions (the whole is dim "").
UNIT_LEVELS = {CITY: 4, DISTRICT: 6, TOWN: 9}
DIMS = ("", "category", "channel", "status")

CLOSED, REFUSED = "closed", "refused"
SATISFIED = ("satisfied", "fair")

Vector = tuple[int, ...]
GridKey = tuple[str, date, str, str, str]  # grid_code, day, category, channel, status
UnitKey = tuple[int, str, str, date, str]  # level, dim, region_code, day, value


def local_day(at: datetime) -> date:
    return at.astimezone(DISPLAY_TZ).date()


def counters(v: Mapping[str, Any]) -> Vector:
    """The counter vector of one event's current values."""
    status = v["status"]
    closed = status == CLOSED
    is_open = status not in (CLOSED, REFUSED)
    grid = v["channel"] == "grid"
    handled = closed and bool(v["office_clock"]) and not v["self_closed"]
    return (
        1,
        int(grid),
        int(v["accepted_at"] is not None and status != REFUSED),
        int(closed),
        int(closed and v["closed_on_time"] is True),
        int(v["dispatched_on_time"] is not None),
        int(v["dispatched_on_time"] is True),
        int(bool(v["self_closed"])),
        int(closed and grid and v["closed_level"] == GRID),
        int(is_open and (v["warning_level"] or 0) >= 2),
        int((v["supervised_count"] or 0) > 0),
        int(v["satisfaction"] is not None),
        int(v["satisfaction"] in SATISFIED),
        int(handled),
        int(v["spent_seconds"] or 0) if handled else 0,
    )


def unit_code(grid_code: str, level: int) -> str:
    """The 12-digit code of the grid's ancestor at a level."""
    return grid_code[: UNIT_LEVELS[level]].ljust(12, "0")


def rows_of(
    v: Mapping[str, Any],
) -> tuple[list[tuple[GridKey, Vector]], list[tuple[UnitKey, Vector]]]:
    """The rollup rows one event contributes to, each with the event's counters."""
    vec = counters(v)
    day = local_day(v["reported_at"])
    grid = v["grid_code"]
    dims = {"": "", "category": v["category_code"], "channel": v["channel"], "status": v["status"]}
    grid_rows = [((grid, day, v["category_code"], v["channel"], v["status"]), vec)]
    unit_rows = [
        ((level, dim, unit_code(grid, level), day, value), vec)
        for level in UNIT_LEVELS
        for dim, value in dims.items()
    ]
    return grid_rows, unit_rows


def add(acc: dict[Any, list[int]], rows: Iterable[tuple[Any, Vector]], sign: int) -> None:
    for key, vec in rows:
        cur = acc.setdefault(key, [0] * len(COUNTERS))
        for i, x in enumerate(vec):
            cur[i] += sign * x


def deltas(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> tuple[dict[GridKey, list[int]], dict[UnitKey, list[int]]]:
    """The net change of every row when an event goes from `old` to `new` values (None: absent);
    rows that do not change are left out."""
    grid_acc: dict[Any, list[int]] = {}
    unit_acc: dict[Any, list[int]] = {}
    for values, sign in ((old, -1), (new, 1)):
        if values is None:
            continue
        g, u = rows_of(values)
        add(grid_acc, g, sign)
        add(unit_acc, u, sign)
    return (
        {k: d for k, d in grid_acc.items() if any(d)},
        {k: d for k, d in unit_acc.items() if any(d)},
    )
