"""Warnings raised by the daily job, and the history of how staff handled each one."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
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


class EarlyWarning(Base):
    """One warning: what, where, why (reason and evidence), a link, and its handling status.

    `key` makes the daily job idempotent: the same finding on the same day has the same key.
    `subject` names what the warning is about regardless of the day (a unit × category, a grid,
    an address, a person), so a finding still being handled is not raised again.
    """

    __tablename__ = "warnings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), index=True)  # rise, hotspot, dispute, visit
    key: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    region_code: Mapped[str] = mapped_column(code_string())  # the unit, grid, town …
    region_level: Mapped[int] = mapped_column(Integer)
    category_code: Mapped[str | None] = mapped_column(String(8))
    day: Mapped[date] = mapped_column(Date)  # the day judged (Asia/Shanghai)
    title: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    link: Mapped[str] = mapped_column(String(300), default="")
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)  # names a control-class tag
    status: Mapped[str] = mapped_column(String(16), index=True)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_warnings_region_raised", "region_code", "raised_at"),
        Index("ix_warnings_day", "day"),
    )


class WarningAction(Base):
    """One step of a warning's handling: who, when, from which status to which, with a note."""

    __tablename__ = "warning_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    warning_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("warnings.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    actor_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("warning_id", "seq"),)
