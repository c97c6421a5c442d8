"""Pydantic shapes of the early-warning API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class WarningOut(BaseModel):
    id: int
    kind: str
    kind_name: str
    region_code: str
    region_level: int
    category_code: str | None
    day: date
    title: str
    reason: str
    evidence: dict[str, Any]
    link: str
    status: str
    status_name: str
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None


class WarningPage(BaseModel):
    total: int
    page: int
    size: int
    active_by_kind: dict[str, int]
    items: list[WarningOut]


class ActionOut(BaseModel):
    seq: int
    at: datetime
    actor_name: str
    action: str
    action_name: str
    from_status: str
    to_status: str
    note: str


class WarningDetailOut(WarningOut):
    region_path: list[dict[str, Any]]
    actions: list[str] = Field(description="此刻可做的操作")
    history: list[ActionOut]


class ActIn(BaseModel):
    action: str = Field(
        description="acknowledge 签收, follow_up 跟进 (须填说明), close 关闭 (须填说明)"
    )
    note: str = Field(default="", max_length=2000)
