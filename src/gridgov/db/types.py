"""Portable column types: aware UTC datetimes, byte-ordered codes and JSON on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; refuses naive ones, returns aware ones (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def code_string(length: int = 15) -> String:
    """Division and grid codes: byte-order ("C") collation on PostgreSQL.

    Codes are compared as ranges for subtree queries; under ICU or glibc locales (zh_CN, en_US)
    punctuation and digits interleave differently, so the codes must sort by bytes as on SQLite.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def json_type() -> JSON:
    """JSON documents: JSONB on PostgreSQL, JSON text on SQLite."""
    return JSON().with_variant(JSONB(), "postgresql")


def json_text_type() -> JSON:
    """JSON documents kept as the text written: json (not jsonb) on PostgreSQL, text on SQLite.

    For documents written and read back whole by the million (source records), where jsonb's
    parse on the way in and rendering on the way out are most of the database's work; `->>`
    works on both, but json has no equality (no DISTINCT, GROUP BY or UNION over it)."""
    return JSON()
