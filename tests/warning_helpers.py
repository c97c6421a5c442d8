"""Planting events, key persons and visits for the early-warning tests (bulk inserts)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select

from gridgov.core.clock import DISPLAY_TZ
from gridgov.events.models import Event
from gridgov.geo.models import Region

_numbers = itertools.count(1)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=DISPLAY_TZ)


def grids_of(session, prefix: str, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(Region.code)
            .where(Region.level == 5, Region.code.like(prefix + "%"))
            .order_by(Region.code)
            .limit(n)
        )
    )


def plant_events(session, rows: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    """rows: grid, category, when (aware), and optionally address, phone, name."""
    values = []
    for r in rows:
        g = r["grid"]
        no = f"W{next(_numbers):010d}"
        values.append(
            {
                "tracking_no": no,
                "category_code": r["category"],
                "category_name": r.get("category_name", r["category"]),
                "urgency": "normal",
                "title": f"测试事件 {no}",
                "channel": "grid",
                "status": "closed",
                "grid_code": g,
                "village_code": g[:12],
                "town_code": g[:9] + "000",
                "district_code": g[:6] + "000000",
                "address": r.get("address", ""),
                "reporter_phone": r.get("phone", ""),
                "reporter_name": r.get("name", ""),
                "receiver_unit": g,
                "holder_unit": g,
                "holder_level": 5,
                "discovered_at": r["when"],
                "reported_at": r["when"],
                "updated_at": r["when"],
                "version": 1,
            }
        )
    for i in range(0, len(values), 500):
        session.execute(insert(Event), values[i : i + 500])
    session.flush()


def background(rng, grids: list[str], first: date, last: date, rate: float,  # type: ignore[no-untyped-def]
               category: str = "ZF03") -> list[dict[str, Any]]:  # fmt: skip
    """Poisson(rate) events a day in each grid, for every day first..last."""
    rows = []
    d = first
    while d <= last:
        for g in grids:
            for k in range(int(rng.poisson(rate))):
                rows.append({"grid": g, "category": category, "when": at(d, 8 + k % 10)})
        d += timedelta(days=1)
    return rows
