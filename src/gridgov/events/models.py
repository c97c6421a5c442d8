"""Events, their hash-chained timeline, notifications and Open311 API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.db.base import Base
from gridgov.db.types import UTCDateTime, code_string, json_type

UNIT = 32  # "<12-digit region code>/<platform or department>"


class Event(Base):
    """One problem found in a grid, from report to close. The timeline is the history of record."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracking_no: Mapped[str] = mapped_column(String(16), unique=True)
    category_code: Mapped[str] = mapped_column(String(8), index=True)
    category_name: Mapped[str] = mapped_column(String(100))
    urgency: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)

    # Where: the grid and its ancestors, copied for fast statistics by any level.
    grid_code: Mapped[str] = mapped_column(code_string())
    village_code: Mapped[str] = mapped_column(code_string())
    town_code: Mapped[str] = mapped_column(code_string())
    district_code: Mapped[str] = mapped_column(code_string())
    is_urban: Mapped[bool] = mapped_column(Boolean, default=False)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    # How precise the reporter's device said the position was (metres), when it said.
    location_accuracy_m: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(300), default="")

    # Who reported it. Residents' contact details are personal information: shown to staff only.
    reporter_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reporter_name: Mapped[str] = mapped_column(String(100), default="")
    reporter_phone: Mapped[str] = mapped_column(String(32), default="")
    reporter_email: Mapped[str] = mapped_column(String(200), default="")
    reporter_level: Mapped[int | None] = mapped_column(SmallInteger)
    open311_client: Mapped[str] = mapped_column(String(64), default="")

    # Who has it: the receiving unit, the unit holding it now, and the unit that sent it there.
    receiver_unit: Mapped[str] = mapped_column(String(UNIT))
    holder_unit: Mapped[str] = mapped_column(String(UNIT), index=True)
    holder_level: Mapped[int] = mapped_column(SmallInteger)
    sender_unit: Mapped[str | None] = mapped_column(String(UNIT))
    routed_unit: Mapped[str | None] = mapped_column(String(UNIT))

    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # The deadline clock (DOMAIN.md §7): allowed and spent time in seconds of the clock kind
    # (office time or plain time); it runs from clock_since while not paused.
    allowance: Mapped[str] = mapped_column(String(16), default="")
    office_clock: Mapped[bool] = mapped_column(Boolean, default=True)
    allowed_seconds: Mapped[int] = mapped_column(Integer, default=0)
    spent_seconds: Mapped[int] = mapped_column(Integer, default=0)
    clock_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    yellow_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    warning_level: Mapped[int] = mapped_column(SmallInteger, default=0)
    red_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    extension: Mapped[str] = mapped_column(String(12), default="")
    extension_spec: Mapped[str] = mapped_column(String(16), default="")
    supervised_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)

    # Outcome, fixed when the event closes (and cleared if it reopens).
    self_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_level: Mapped[int | None] = mapped_column(SmallInteger)
    closed_unit: Mapped[str | None] = mapped_column(String(UNIT))
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean)
    dispatched_on_time: Mapped[bool | None] = mapped_column(Boolean)
    result: Mapped[str] = mapped_column(Text, default="")
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    photos: Mapped[list[str]] = mapped_column(json_type(), default=list)

    # Idempotent reporting: a retried report with the same key finds this event.
    idem_scope: Mapped[str | None] = mapped_column(String(80))
    idem_key: Mapped[str | None] = mapped_column(String(128))
    idem_hash: Mapped[str | None] = mapped_column(String(64))

    # Tamper evidence: the number of timeline entries and the hash of the last one.
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    chain_head: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("idem_scope", "idem_key"),
        Index("ix_events_grid_reported", "grid_code", "reported_at"),
        Index("ix_events_town_reported", "town_code", "reported_at"),
    )


class EventEntry(Base):
    """One timeline entry; append-only, each hash covering the previous one."""

    __tablename__ = "event_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("events.id", ondelete="RESTRICT"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(32))
    actor_unit: Mapped[str] = mapped_column(String(UNIT))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    from_unit: Mapped[str] = mapped_column(String(UNIT))
    to_unit: Mapped[str] = mapped_column(String(UNIT))
    comment: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[str]] = mapped_column(json_type(), default=list)
    data: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("event_id", "seq"),)


class Notification(Base):
    """A message to a unit (everyone working there sees it) about an event."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_key: Mapped[str] = mapped_column(String(UNIT), index=True)
    event_id: Mapped[int] = mapped_column(Integer, ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationRead(Base):
    __tablename__ = "notification_reads"

    notification_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Open311Client(Base):
    """An Open311 api_key holder; only the key's SHA-256 is stored."""

    __tablename__ = "open311_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Photo(Base):
    """An uploaded photo (the bytes live in the content-addressed store under GRIDGOV_MEDIA_DIR)."""

    __tablename__ = "photos"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    taken_lon: Mapped[float | None] = mapped_column(Float)
    taken_lat: Mapped[float | None] = mapped_column(Float)
    uploaded_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventPhoto(Base):
    """Which event a photo belongs to: who may see it follows from the event."""

    __tablename__ = "event_photos"

    event_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("photos.sha256", ondelete="RESTRICT"), primary_key=True, index=True
    )
    seq: Mapped[int] = mapped_column(Integer)  # the timeline entry that attached it
