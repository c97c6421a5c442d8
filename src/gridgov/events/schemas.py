"""Request and response models of the event API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field


class ReportIn(BaseModel):
    category: str = Field(description="事件类别代码, 如 ZF03", examples=["ZF03"])
    description: str = Field(default="", max_length=4000, description="事件描述")
    urgency: str | None = Field(
        default=None, description="normal | urgent | immediate; 默认类别的第一档"
    )
    title: str = Field(default="", max_length=200)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    crs: str = Field(default="wgs84", description="坐标系: wgs84 | gcj02 | bd09")
    accuracy_m: float | None = Field(
        default=None, ge=0, le=100_000, description="设备给出的定位精度 (米)"
    )
    grid_code: str | None = Field(default=None, description="无坐标时指定网格 (15 位)")
    address: str = Field(default="", max_length=300)
    discovered_at: AwareDatetime | None = Field(default=None, description="发现时间 (默认现在)")
    photos: list[str] = Field(default_factory=list, description="已上传照片的 sha256")
    channel: str | None = Field(
        default=None, description="grid | staff | department | hotline; 默认按角色"
    )
    reporter_name: str = Field(default="", max_length=100, description="热线来电人等")
    reporter_phone: str = Field(default="", max_length=32)
    self_close: bool = Field(default=False, description="网格员当场处置结案 (自结案)")
    result: str = Field(default="", max_length=2000, description="自结案的处置结果")
    after_photos: list[str] = Field(
        default_factory=list,
        description="自结案的处置后照片 sha256 (附在结案环节, 不对外公开); 不填时用 photos",
    )


class ActIn(BaseModel):
    action: str = Field(description="accept, refuse, dispatch, redispatch, receive, return, ...")
    version: int | None = Field(default=None, description="事件版本 (乐观锁); 也可用 If-Match 头")
    comment: str = Field(default="", max_length=2000, description="意见或理由")
    target: str | None = Field(default=None, description="分派目标单位, 如 330203001000/ZF")
    extension: str | None = Field(default=None, description="申请延期时长, 如 3wd")
    photos: list[str] = Field(default_factory=list)
    satisfaction: str | None = Field(default=None, description="satisfied | fair | unsatisfied")


class UnitOut(BaseModel):
    key: str
    name: str


class EventOut(BaseModel):
    id: int
    tracking_no: str
    version: int
    category: str
    category_name: str
    urgency: str
    title: str
    description: str
    channel: str
    status: str
    status_name: str
    grid_code: str
    path: list[dict[str, Any]]
    lon: float | None
    lat: float | None
    location_accuracy_m: float | None = None
    address: str
    reporter_name: str
    reporter_phone: str
    receiver: UnitOut
    holder: UnitOut
    sender: UnitOut | None
    routed: UnitOut | None
    discovered_at: datetime
    reported_at: datetime
    accepted_at: datetime | None
    dispatched_at: datetime | None
    closed_at: datetime | None
    allowance: str
    deadline_at: datetime | None
    spent_seconds: int
    allowed_seconds: int
    warning_level: int
    extension: str
    supervised_count: int
    self_closed: bool
    closed_level: int | None
    closed_on_time: bool | None
    result: str
    satisfaction: str | None
    photos: list[str]
    actions: list[str] = Field(default_factory=list, description="当前用户可执行的操作")
    targets: list[UnitOut] = Field(default_factory=list, description="可分派的单位")


class EntryOut(BaseModel):
    seq: int
    at: datetime
    actor_name: str
    actor_role: str
    actor_unit: str
    action: str
    action_name: str
    from_status: str
    to_status: str
    from_unit: str
    to_unit: str
    comment: str
    attachments: list[str]
    data: dict[str, Any]
    hash: str


class EventPage(BaseModel):
    total: int
    page: int
    size: int
    items: list[EventOut]


class PhotoOut(BaseModel):
    sha256: str
    media_type: str
    width: int
    height: int
    size: int
    url: str
    thumb_url: str


class NotificationOut(BaseModel):
    id: int
    event_id: int
    tracking_no: str | None = None
    kind: str
    message: str
    created_at: datetime
    read: bool


class CategoryOut(BaseModel):
    code: str
    name: str
    description: str
    platform: str | None
    department: str | None
    level: int
    self_close: bool
    deadlines: dict[str, str]
