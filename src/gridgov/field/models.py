"""Field work: visits, patrols with their track points, daily patrol figures, sync receipts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.db.base import Base
from gridgov.db.types import UTCDateTime, code_string, json_type

BigId = BigInteger().with_variant(Integer, "sqlite")


class FieldReceipt(Base):
    """One queued item the app sent, by its client-made key: what came of it, to answer replays.

    A replay of the key returns the stored result (or refusal) and changes nothing.
    """

    __tablename__ = "field_receipts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))  # done, refused
    result: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("user_id", "key"),)


class Visit(Base):
    """A visit log (走访): a house, person or organization in the worker's grid."""

    __tablename__ = "field_visits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    grid_code: Mapped[str] = mapped_column(code_string(), index=True)
    target_kind: Mapped[str] = mapped_column(String(12))  # house, person, organization
    target_id: Mapped[int] = mapped_column(BigId)
    target_label: Mapped[str] = mapped_column(String(300), default="")
    visit_type: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(Text, default="")
    photos: Mapped[list[str]] = mapped_column(json_type(), default=list)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    facts: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    source_record_id: Mapped[int | None] = mapped_column(BigId)  # the WG check it wrote
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_field_visits_target", "target_kind", "target_id"),)


PATROL_OPEN, PATROL_CLOSED = "open", "closed"


class Patrol(Base):
    """A patrol (巡查) from start to stop, with the figures computed from its track."""

    __tablename__ = "field_patrols"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_key: Mapped[str] = mapped_column(String(64))  # made by the app, so start works offline
    grid_code: Mapped[str] = mapped_column(code_string(), index=True)
    status: Mapped[str] = mapped_column(String(8), default=PATROL_OPEN)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    points: Mapped[int] = mapped_column(Integer, default=0)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    buildings: Mapped[int] = mapped_column(Integer, default=0)
    buildings_covered: Mapped[int] = mapped_column(Integer, default=0)
    coverage: Mapped[float] = mapped_column(Float, default=0.0)
    track_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("user_id", "client_key"),)


class TrackPoint(Base):
    """A sampled position of a patrol: sensitive (PIPL art. 28), purged after the retention."""

    __tablename__ = "field_track_points"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patrol_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("field_patrols.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("patrol_id", "at"),)


class PatrolDay(Base):
    """A worker's patrol figures for one day (Asia/Shanghai), kept for assessment."""

    __tablename__ = "field_patrol_days"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    grid_code: Mapped[str] = mapped_column(code_string())
    patrols: Mapped[int] = mapped_column(Integer, default=0)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    buildings: Mapped[int] = mapped_column(Integer, default=0)
    buildings_covered: Mapped[int] = mapped_column(Integer, default=0)
    coverage: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
