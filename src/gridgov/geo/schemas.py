"""API shapes for the region tree and locate."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class LeaderIn(BaseModel):
    username: str = Field(description="A grid worker of the grid's village")


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type name
    expires_at: str


class MeOut(BaseModel):
    username: str
    display_name: str
    region_code: str
    roles: list[str]
    path: list[RegionBriefOut]
