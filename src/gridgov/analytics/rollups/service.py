"""Rebuild the rollups from source, compare them with the incremental state, refresh base numbers.

Both rebuilds are columnar: the events' counted fields (or the data center's per-grid counts,
grouped in SQL) go into Polars frames, are grouped there, and are written back with one COPY on
PostgreSQL (an executemany on SQLite) through db.bulk.copy_frame. The event rebuild computes the
counters with Polars expressions written independently of rules.counters, which the incremental
hook uses, so the hypothesis test that compares the two checks one against the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import Table, and_, delete, func, select
from sqlalchemy.orm import Session

from gridgov.accounts.models import User, UserRole
from gridgov.accounts.rules import Role
from gridgov.analytics.rollups import rules
from gridgov.analytics.rollups.models import BaseUnit, EventGridDay, EventUnitDay
from gridgov.analytics.rollups.track import GRID_KEYS, UNIT_KEYS
from gridgov.core.clock import DISPLAY_TZ
from gridgov.db.bulk import copy_frame, refresh_statistics
from gridgov.events.models import Event
from gridgov.geo.divisions import CITY, DISTRICT, GRID, PREFIX_LEN, TOWN, VILLAGE
from gridgov.geo.models import Region
from gridgov.registry.models import Address, KeyPersonTag, Organization, Person, Room

BASE_MEASURES = (
    "persons",
    "key_backbone",
    "key_service",
    "key_control",
    "organizations",
    "houses",
    "addresses",
    "grids",
    "grid_workers",
)
CHUNK = 200_000

_EVENT_SCHEMA: dict[str, Any] = {
    "reported_at": pl.Datetime("us", "UTC"),
    "grid_code": pl.String,
    "category_code": pl.String,
    "channel": pl.String,
    "status": pl.String,
    "accepted_at": pl.Datetime("us", "UTC"),
    "closed_on_time": pl.Boolean,
    "dispatched_on_time": pl.Boolean,
    "self_closed": pl.Boolean,
    "closed_level": pl.Int16,
    "warning_level": pl.Int16,
    "supervised_count": pl.Int32,
    "satisfaction": pl.String,
    "office_clock": pl.Boolean,
    "spent_seconds": pl.Int64,
}


def event_frame(session: Session) -> pl.DataFrame:
    """The counted fields of every event, read in chunks of CHUNK rows."""
    cols = [getattr(Event, name) for name in rules.FIELDS]
    result = session.execute(select(*cols).execution_options(yield_per=CHUNK))
    parts = [
        pl.DataFrame(chunk, schema=_EVENT_SCHEMA, orient="row")
        for chunk in result.partitions(CHUNK)
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=_EVENT_SCHEMA)


def counter_frame(events: pl.DataFrame) -> pl.DataFrame:
    """One row per event: its bucket keys and counters (DOMAIN.md §7, as in events.figures)."""
    closed = pl.col("status") == rules.CLOSED
    grid = pl.col("channel") == "grid"
    is_open = ~pl.col("status").is_in([rules.CLOSED, rules.REFUSED])
    handled = closed & pl.col("office_clock") & ~pl.col("self_closed")

    def n(expr: pl.Expr) -> pl.Expr:
        return expr.fill_null(False).cast(pl.Int64)

    return events.select(
        pl.col("grid_code"),
        pl.col("reported_at").dt.convert_time_zone(str(DISPLAY_TZ)).dt.date().alias("day"),
        pl.col("category_code"),
        pl.col("channel"),
        pl.col("status"),
        pl.lit(1, pl.Int64).alias("reported"),
        n(grid).alias("grid_reported"),
        n(pl.col("accepted_at").is_not_null() & (pl.col("status") != rules.REFUSED)).alias("due"),
        n(closed).alias("closed"),
        n(closed & pl.col("closed_on_time")).alias("closed_on_time"),
        n(pl.col("dispatched_on_time").is_not_null()).alias("dispatched"),
        n(pl.col("dispatched_on_time")).alias("dispatched_on_time"),
        n(pl.col("self_closed")).alias("self_closed"),
        n(closed & grid & (pl.col("closed_level") == GRID)).alias("closed_at_grid"),
        n(is_open & (pl.col("warning_level") >= 2)).alias("overdue_open"),
        n(pl.col("supervised_count") > 0).alias("supervised"),
        n(pl.col("satisfaction").is_not_null()).alias("follow_ups"),
        n(pl.col("satisfaction").is_in(list(rules.SATISFIED))).alias("satisfied"),
        n(handled).alias("handled"),
        pl.when(handled.fill_null(False))
        .then(pl.col("spent_seconds"))
        .otherwise(0)
        .cast(pl.Int64)
        .alias("handling_seconds"),
    )


def rollup_frames(per_event: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Grid rows and unit (town, district, city × whole and per dimension) rows."""
    sums = [pl.col(c).sum() for c in rules.COUNTERS]
    grids = per_event.group_by(list(GRID_KEYS)).agg(sums)
    parts = []
    for level, width in rules.UNIT_LEVELS.items():
        keyed = per_event.with_columns(
            pl.lit(level, pl.Int16).alias("level"),
            pl.col("grid_code").str.slice(0, width).str.pad_end(12, "0").alias("region_code"),
        )
        for dim in rules.DIMS:
            value = pl.lit("") if dim == "" else pl.col(rules_column(dim))
            parts.append(
                keyed.with_columns(pl.lit(dim).alias("dim"), value.alias("value"))
                .group_by(list(UNIT_KEYS))
                .agg(sums)
            )
    units = pl.concat(parts) if parts else pl.DataFrame()
    # In key order, so that written in one go a unit's rows lie together on disk (a town's year
    # is a few dozen pages instead of thousands scattered ones).
    return grids.sort(list(GRID_KEYS)), units.sort(list(UNIT_KEYS)) if parts else units


def rules_column(dim: str) -> str:
    return "category_code" if dim == "category" else dim


@dataclass
class RebuildReport:
    events: int
    grid_rows: int
    unit_rows: int
    base_rows: int
    seconds: float


def expected_event_rollups(session: Session) -> tuple[pl.DataFrame, pl.DataFrame]:
    return rollup_frames(counter_frame(event_frame(session)))


def rebuild_events(session: Session) -> tuple[int, int, int]:
    """Replace the event rollups with a full recomputation; returns (events, grid rows, unit rows)."""
    events = event_frame(session)
    grids, units = rollup_frames(counter_frame(events))
    for model, frame in ((EventGridDay, grids), (EventUnitDay, units)):
        table: Table = model.__table__  # type: ignore[assignment]
        session.execute(delete(table))
        if not frame.is_empty():
            copy_frame(session, table, frame, conflict=[c.name for c in table.primary_key])
    refresh_statistics(session, "rollup_event_grids", "rollup_event_units")
    return events.height, grids.height, units.height


def stored_frame(session: Session, model: Any, keys: tuple[str, ...]) -> pl.DataFrame:
    table: Table = model.__table__
    cols = [table.c[k] for k in (*keys, *rules.COUNTERS)]
    rows = session.execute(select(*cols)).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=[c.name for c in cols], orient="row")


def differences(session: Session, *, limit: int = 20) -> list[str]:
    """Rows where the stored rollups differ from a rebuild (empty: they agree exactly)."""
    grids, units = expected_event_rollups(session)
    out: list[str] = []
    for name, model, keys, want in (
        ("rollup_event_grids", EventGridDay, GRID_KEYS, grids),
        ("rollup_event_units", EventUnitDay, UNIT_KEYS, units),
    ):
        have = stored_frame(session, model, keys)
        expected = {tuple(r[: len(keys)]): tuple(r[len(keys) :]) for r in _rows(want, keys)}
        stored = {tuple(r[: len(keys)]): tuple(r[len(keys) :]) for r in _rows(have, keys)}
        for key in sorted(set(expected) | set(stored), key=str):
            if expected.get(key) != stored.get(key):
                out.append(f"{name} {key}: 增量 {stored.get(key)} ≠ 重算 {expected.get(key)}")
                if len(out) >= limit:
                    return out
    return out


def _rows(frame: pl.DataFrame, keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    if frame.is_empty():
        return []
    return frame.select([*keys, *rules.COUNTERS]).rows()


# ----------------------------------------------------------------------------- base numbers


def _per_grid(session: Session, stmt: Any, name: str) -> pl.DataFrame:
    rows = session.execute(stmt).all()
    return pl.DataFrame(
        [(r[0], int(r[1])) for r in rows],
        schema={"grid_code": pl.String, name: pl.Int64},
        orient="row",
    )


def base_grid_frame(session: Session, *, today: date) -> pl.DataFrame:
    """Base numbers per grid, each counted in SQL by grid (one GROUP BY per source table)."""
    grid_rows = session.scalars(select(Region.code).where(Region.level == GRID)).all()
    frame = pl.DataFrame({"grid_code": list(grid_rows)}, schema={"grid_code": pl.String})

    def by_grid(col: Any, *where: Any) -> Any:
        return select(col, func.count()).where(col.is_not(None), *where).group_by(col)

    current = and_(
        (KeyPersonTag.valid_to.is_(None)) | (KeyPersonTag.valid_to >= today),
    )
    parts = [
        _per_grid(session, by_grid(Person.grid_code), "persons"),
        _per_grid(session, by_grid(Organization.grid_code), "organizations"),
        _per_grid(session, by_grid(Room.grid_code), "houses"),
        _per_grid(session, by_grid(Address.grid_code), "addresses"),
        _per_grid(
            session,
            select(User.region_code, func.count())
            .join(UserRole, UserRole.user_id == User.id)
            .where(
                UserRole.role == Role.GRID_WORKER.value,
                User.is_active.is_(True),
                func.length(User.region_code) == PREFIX_LEN[GRID],
            )
            .group_by(User.region_code),
            "grid_workers",
        ),
    ]
    for klass in ("backbone", "service", "control"):
        parts.append(
            _per_grid(
                session,
                select(KeyPersonTag.grid_code, func.count(KeyPersonTag.person_id.distinct()))
                .where(
                    KeyPersonTag.grid_code.is_not(None), KeyPersonTag.tag_class == klass, current
                )
                .group_by(KeyPersonTag.grid_code),
                f"key_{klass}",
            )
        )
    for part in parts:
        frame = frame.join(part, on="grid_code", how="left")
    return frame.with_columns(pl.lit(1, pl.Int64).alias("grids")).fill_null(0)


def base_frame(grids: pl.DataFrame) -> pl.DataFrame:
    """Grid rows plus every ancestor's sums."""
    parts = [
        grids.rename({"grid_code": "region_code"}).with_columns(
            pl.lit(GRID, pl.Int16).alias("level")
        )
    ]
    for level in (VILLAGE, TOWN, DISTRICT, CITY):
        parts.append(
            grids.with_columns(
                pl.col("grid_code")
                .str.slice(0, PREFIX_LEN[level])
                .str.pad_end(12, "0")
                .alias("region_code")
            )
            .group_by("region_code")
            .agg([pl.col(m).sum() for m in BASE_MEASURES])
            .with_columns(pl.lit(level, pl.Int16).alias("level"))
        )
    cols = ["region_code", "level", *BASE_MEASURES]
    return pl.concat([p.select(cols) for p in parts])


def refresh_base(session: Session, *, now: datetime) -> int:
    """Recount the base numbers of every unit; returns the number of unit rows."""
    today = now.astimezone(DISPLAY_TZ).date()
    frame = base_frame(base_grid_frame(session, today=today)).with_columns(
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("refreshed_at")
    )
    table: Table = BaseUnit.__table__  # type: ignore[assignment]
    session.execute(delete(table))
    if not frame.is_empty():
        copy_frame(session, table, frame, conflict=["region_code"])
    refresh_statistics(session, "rollup_base_units")
    return frame.height


def rebuild(session: Session, *, now: datetime) -> RebuildReport:
    """Recompute every rollup from source (events and the data center's tables)."""
    import time

    t0 = time.perf_counter()
    events, grid_rows, unit_rows = rebuild_events(session)
    base_rows = refresh_base(session, now=now)
    session.flush()
    return RebuildReport(events, grid_rows, unit_rows, base_rows, time.perf_counter() - t0)
