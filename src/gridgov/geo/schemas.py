"""API shapes for the region tree and locate."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gridgov.geo.coords import CRS


class RegionBriefOut(BaseModel):
    code: str
    name: str
    level: int
    level_name: str


class LeaderOut(BaseModel):
    username: str
    display_name: str
    assigned_at: str


class RegionOut(BaseModel):
    code: str
    name: str
    level: int
    level_name: str
    parent_code: str | None
    is_urban: bool
    area_km2: float | None
    bbox: list[float] | None = Field(description="[min_lon, min_lat, max_lon, max_lat], WGS-84")
    centroid: list[float] | None = Field(description="[lon, lat] of a point inside the unit")
    path: list[RegionBriefOut] = Field(description="Ancestors and the unit itself, city first")
    children_count: int
    grid_count: int
    user_count: int
    leader: LeaderOut | None = Field(default=None, description="Grid leader (grids only)")


class LocateOut(BaseModel):
    lon: float = Field(description="WGS-84 longitude used for the lookup")
    lat: float
    grid: RegionBriefOut
    path: list[RegionBriefOut]


MAX_BATCH_POINTS = 10_000


class LocateBatchIn(BaseModel):
    points: list[tuple[float, float]] = Field(
        min_length=1,
        max_length=MAX_BATCH_POINTS,
        description="[[经度, 纬度], …], 每次最多 10,000 个点",
    )
    crs: CRS = Field(default=CRS.WGS84, description="输入坐标系: wgs84 / gcj02 / bd09")


class LocateBatchOut(BaseModel):
    grid_codes: list[str | None] = Field(
        description="与输入顺序一致的网格代码; 不在您的管辖范围内的点为 null"
    )
    located: int = Field(description="落在管辖范围内的点数")


class LeaderIn(BaseModel):
    username: str = Field(description="A grid worker of the grid's village")
