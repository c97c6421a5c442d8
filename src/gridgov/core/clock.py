"""The one place code reads the time; tests freeze it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
_frozen: datetime | None = None


def now() -> datetime:
    return _frozen if _frozen is not None else datetime.now(UTC)


def freeze(at: datetime | None) -> None:
    """Freeze (or with None, unfreeze) the clock; for tests."""
    global _frozen
    if at is not None and at.tzinfo is None:
        raise ValueError("clock.freeze needs an aware datetime")
    _frozen = at


def local(dt: datetime) -> datetime:
    return dt.astimezone(DISPLAY_TZ)
