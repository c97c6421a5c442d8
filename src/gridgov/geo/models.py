"""Region tree tables: one row per node of the five levels, grids included, and grid leaders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.db.base import Base
from gridgov.db.types import UTCDateTime, code_string


class Region(Base):
    """A node of the tree: city (1), district/county (2), town/street (3), village/community (4), grid (5).

    The code is the 12-digit statistical code (grids: 15 digits); a node's subtree is every code that
    starts with its significant prefix (see geo.divisions.PREFIX_LEN). Geometry is WGS-84 WKB.
    """

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(code_string(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(
        code_string(), ForeignKey("regions.code", ondelete="RESTRICT"), index=True
    )
    is_urban: Mapped[bool] = mapped_column(Boolean, default=False)
    # Deferred: loading a region by key (names, paths, checks) must not drag its polygon along.
    geometry: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    min_lon: Mapped[float | None] = mapped_column(Float)
    min_lat: Mapped[float | None] = mapped_column(Float)
    max_lon: Mapped[float | None] = mapped_column(Float)
    max_lat: Mapped[float | None] = mapped_column(Float)
    centroid_lon: Mapped[float | None] = mapped_column(Float)
    centroid_lat: Mapped[float | None] = mapped_column(Float)
    area_km2: Mapped[float | None] = mapped_column(Float)
    geometry_source: Mapped[str | None] = mapped_column(String(20))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_regions_level_code", "level", "code"),
        Index("ix_regions_name", "name"),
    )


class GridLeader(Base):
    """一格一长: the primary key on grid_code allows exactly one leader per grid."""

    __tablename__ = "grid_leaders"

    grid_code: Mapped[str] = mapped_column(
        code_string(), ForeignKey("regions.code", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    assigned_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MetaValue(Base):
    """Small key/value facts about the database, e.g. the grid revision the locate index follows."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
