"""Request and answer shapes of the field app's API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class SyncItemIn(BaseModel):
    key: str = Field(min_length=8, max_length=64, description="客户端生成的幂等键 (每项唯一)")
    kind: str = Field(description="report, act, visit, check, patrol_start, track, patrol_stop")
    payload: dict[str, Any] = Field(default_factory=dict)


class SyncIn(BaseModel):
    items: list[SyncItemIn] = Field(max_length=100)


class SyncResultOut(BaseModel):
    key: str
    status: str = Field(description="done 已处理, refused 被拒绝 (见 result.msg)")
    replayed: bool = Field(description="此键此前已处理, 返回的是第一次的结果")
    result: dict[str, Any]


class SyncOut(BaseModel):
    results: list[SyncResultOut]


class SessionOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: str
    idle_minutes: float
    username: str
    display_name: str
    region_code: str
    roles: list[str]


class EventBrief(BaseModel):
    tracking_no: str
    title: str
    category_name: str
    status: str
    status_name: str
    version: int
    deadline_at: datetime | None
    warning_level: int
    lon: float | None
    lat: float | None
    description: str
    photos: list[str]


class TaskOut(BaseModel):
    id: int
    entity: str
    entity_id: int
    subject: str
    field: str
    field_name: str
    legal: bool  # a legal fact: confirm a candidate or report none is right; no typed value
    kind: str
    candidates: list[dict[str, Any]]
    grid_code: str | None
    created_at: datetime


class PatrolDayOut(BaseModel):
    day: date
    username: str
    display_name: str
    grid_code: str
    patrols: int
    distance_m: float
    duration_s: float
    buildings: int
    buildings_covered: int
    coverage: float


class HomeOut(BaseModel):
    username: str
    display_name: str
    grid: dict[str, Any]
    counts: dict[str, int]
    todo: list[EventBrief]
    due_soon: list[EventBrief]
    overdue: list[EventBrief]
    tasks: list[TaskOut]
    due_visits: list[dict[str, Any]]
    today: PatrolDayOut | None
    idle_minutes: float


class TargetOut(BaseModel):
    kind: str
    id: int
    label: str
    detail: str
    lon: float | None
    lat: float | None
    distance_m: float | None
    facts: dict[str, Any]


class PatrolOut(BaseModel):
    patrol_id: int
    patrol: str
    status: str
    grid_code: str
    started_at: datetime
    ended_at: datetime | None
    points: int
    distance_m: float
    duration_s: float
    buildings: int
    buildings_covered: int
    coverage: float
    track: list[list[float]] = Field(description="[经度, 纬度] 点列 (已超保存期限的为空)")
    track_purged: bool
