"""Rollup tables: events per day and unit, base numbers per unit.

`rollup_event_grids` holds one row per local report day × grid × category × channel × status with
the counters of analytics.rollups.rules.COUNTERS. `rollup_event_units` holds the same counters for
towns, districts and the city, once per day for the unit as a whole (dim "") and once per value of
each dimension (dim "category", "channel" or "status"), so a city or district request reads a few
thousand rows instead of every grid's. Villages and grids are answered from the grid rows.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.db.base import Base
from gridgov.db.types import UTCDateTime, code_string


class _Counters:
    """The counters of one bucket (see rules.COUNTERS for what each counts)."""

    reported: Mapped[int] = mapped_column(Integer, default=0)
    grid_reported: Mapped[int] = mapped_column(Integer, default=0)
    due: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_on_time: Mapped[int] = mapped_column(Integer, default=0)
    dispatched: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_on_time: Mapped[int] = mapped_column(Integer, default=0)
    self_closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_at_grid: Mapped[int] = mapped_column(Integer, default=0)
    overdue_open: Mapped[int] = mapped_column(Integer, default=0)
    supervised: Mapped[int] = mapped_column(Integer, default=0)
    follow_ups: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    handled: Mapped[int] = mapped_column(Integer, default=0)
    handling_seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class EventGridDay(_Counters, Base):
    """Events reported on a local day in a grid, by category, channel and current status."""

    __tablename__ = "rollup_event_grids"

    grid_code: Mapped[str] = mapped_column(code_string(), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)


class EventUnitDay(_Counters, Base):
    """Events reported on a local day in a town, district or the city: the whole (dim "") and
    per category, channel or status (dim names the dimension, value its value)."""

    __tablename__ = "rollup_event_units"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    dim: Mapped[str] = mapped_column(String(10), primary_key=True)
    region_code: Mapped[str] = mapped_column(code_string(), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[str] = mapped_column(String(16), primary_key=True)


class BaseUnit(Base):
    """Base numbers of a unit (grid and every level above), from the data center's tables."""

    __tablename__ = "rollup_base_units"

    region_code: Mapped[str] = mapped_column(code_string(), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, index=True)
    persons: Mapped[int] = mapped_column(BigInteger, default=0)
    key_backbone: Mapped[int] = mapped_column(BigInteger, default=0)
    key_service: Mapped[int] = mapped_column(BigInteger, default=0)
    key_control: Mapped[int] = mapped_column(BigInteger, default=0)
    organizations: Mapped[int] = mapped_column(BigInteger, default=0)
    houses: Mapped[int] = mapped_column(BigInteger, default=0)
    addresses: Mapped[int] = mapped_column(BigInteger, default=0)
    grids: Mapped[int] = mapped_column(BigInteger, default=0)
    grid_workers: Mapped[int] = mapped_column(BigInteger, default=0)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime)
