"""Pure rules of field work: track length, duration, building coverage, sync item checks.

Values in, figures out: no session, no settings, no clock.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

EARTH_RADIUS_M = 6_371_008.8
COVER_RADIUS_M = 50.0  # a building counts as covered when the track passes within this distance
MAX_ACCURACY_M = 100.0  # fixes less precise than this are kept but ignored for the figures
MAX_SPEED_MS = 15.0  # a jump faster than this (54 km/h) between fixes is a bad fix, not a walk
# Fixes further apart than this were not sampled in one go (the app was closed or asleep; it
# samples every 10 s while open): coverage does not draw a straight line across the gap, only
# its two ends count. The distance still adds the straight line (the least the worker moved).
MAX_GAP_S = 120.0


@dataclass(frozen=True, slots=True)
class Fix:
    at: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def usable(fixes: Sequence[Fix]) -> list[Fix]:
    """The fixes the figures use, in time order: precise enough, and no impossible jumps."""
    kept: list[Fix] = []
    for f in sorted(fixes, key=lambda f: f.at):
        if f.accuracy_m is not None and f.accuracy_m > MAX_ACCURACY_M:
            continue
        if kept:
            prev = kept[-1]
            dt = (f.at - prev.at).total_seconds()
            if dt <= 0:
                continue
            if haversine_m(prev.lon, prev.lat, f.lon, f.lat) / dt > MAX_SPEED_MS:
                continue
        kept.append(f)
    return kept


def track_length_m(fixes: Sequence[Fix]) -> float:
    pts = usable(fixes)
    return sum(haversine_m(a.lon, a.lat, b.lon, b.lat) for a, b in itertools.pairwise(pts))


def duration_s(started_at: datetime, ended_at: datetime | None, fixes: Sequence[Fix]) -> float:
    """From start to stop; while still open, to the last fix received."""
    end = ended_at or max((f.at for f in fixes), default=started_at)
    return max(0.0, (end - started_at).total_seconds())


def _local_xy(
    lons: np.ndarray, lats: np.ndarray, lon0: float, lat0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Metres east and north of (lon0, lat0): equirectangular, exact enough within a grid."""
    k = math.radians(1) * EARTH_RADIUS_M
    return (lons - lon0) * k * math.cos(math.radians(lat0)), (lats - lat0) * k


def covered(
    tracks: Sequence[Sequence[Fix]],
    buildings: Sequence[tuple[float, float]],
    radius_m: float = COVER_RADIUS_M,
) -> list[bool]:
    """For each building point (lon, lat): whether any track passes within `radius_m` of it.

    Distance to each segment of each track (a lone fix counts as a point), vectorised over the
    buildings; a segment across a gap longer than MAX_GAP_S counts as its two end points.
    """
    if not buildings:
        return []
    b = np.asarray(buildings, dtype=float)
    lon0, lat0 = float(b[:, 0].mean()), float(b[:, 1].mean())
    bx, by = _local_xy(b[:, 0], b[:, 1], lon0, lat0)
    hit = np.zeros(len(b), dtype=bool)
    for fixes in tracks:
        pts = usable(fixes)
        if not pts:
            continue
        tx, ty = _local_xy(
            np.array([p.lon for p in pts]), np.array([p.lat for p in pts]), lon0, lat0
        )
        if len(pts) == 1:
            hit |= np.hypot(bx - tx[0], by - ty[0]) <= radius_m
            continue
        for i in range(len(pts) - 1):
            ax, ay = float(tx[i]), float(ty[i])
            dx, dy = float(tx[i + 1]) - ax, float(ty[i + 1]) - ay
            if (pts[i + 1].at - pts[i].at).total_seconds() > MAX_GAP_S:
                dx = dy = 0.0  # not walked as sampled: only its ends count
            seg = dx * dx + dy * dy
            t = np.zeros(len(b)) if seg == 0 else ((bx - ax) * dx + (by - ay) * dy) / seg
            t = np.clip(t, 0.0, 1.0)
            hit |= np.hypot(bx - (ax + t * dx), by - (ay + t * dy)) <= radius_m
        hit |= np.hypot(bx - tx[-1], by - ty[-1]) <= radius_m
    return [bool(h) for h in hit]


@dataclass(frozen=True, slots=True)
class Coverage:
    buildings: int
    covered: int

    @property
    def share(self) -> float:
        return self.covered / self.buildings if self.buildings else 0.0


def coverage(tracks: Sequence[Sequence[Fix]], buildings: Sequence[tuple[float, float]]) -> Coverage:
    flags = covered(tracks, buildings)
    return Coverage(len(flags), sum(flags))


# ----------------------------------------------------------------------- visits and facts

# Our rule: key persons are due a visit this many days after the last one, by class
# (DOMAIN.md §8: control and service classes; backbone members are not visited on a schedule).
VISIT_EVERY_DAYS: dict[str, int] = {"control": 7, "service": 30}
VISIT_TYPES: dict[str, str] = {
    "routine": "日常走访",
    "key_person": "重点人员走访",
    "verify": "信息核实",
    "service": "帮扶服务",
    "safety": "安全检查",
}
TARGET_KINDS: dict[str, str] = {"house": "房屋", "person": "人员", "organization": "组织"}
# Field facts a visit may update (一数一源: these are field facts, WG is their source).
PERSON_FACTS: dict[str, str] = {
    "actual_address": "实际居住地址",
    "phone": "联系电话",
    "residence_status": "居住状态",
}
HOUSE_FACTS: dict[str, str] = {"use": "房屋用途 (居住情况)"}
RESIDENCE_STATUS: dict[str, str] = {
    "present": "在住",
    "away": "外出",
    "moved_out": "迁出",
    "deceased": "死亡",
}
HOUSE_USE: dict[str, str] = {
    "own": "自住",
    "rented": "出租",
    "vacant": "空置",
    "commercial": "商用",
}


FACT_NAMES: dict[str, str] = {
    **PERSON_FACTS,
    **HOUSE_FACTS,
    "citizen_id": "身份证号",
    "name": "姓名",
    "sex": "性别",
    "birth_date": "出生日期",
    "ethnicity": "民族",
    "registered_address": "户籍地址",
    "credit_code": "统一社会信用代码",
    "legal_rep_name": "法定代表人",
    "legal_rep_id": "法定代表人证件号",
    "address": "地址",
    "status": "经营状态",
    "industry": "行业",
    "founded_on": "成立日期",
    "owner_id": "产权人证件号",
    "owner_name": "产权人",
    "area": "面积",
    "cert_no": "不动产权证号",
}


def typed_value_allowed(entity: str, field: str) -> bool:
    """Only field facts (what a worker sees on site) may be entered as typed values."""
    if entity == "person":
        return field in PERSON_FACTS
    if entity == "room":
        return field in HOUSE_FACTS
    return False


def check_fact(field: str, value: str) -> str | None:
    """Why a field-fact value cannot be accepted (in Chinese, naming the field), or None."""
    label = PERSON_FACTS.get(field) or HOUSE_FACTS.get(field) or field
    if field == "phone":
        digits = value.replace("-", "").replace(" ", "")
        if not digits.isdigit() or not (7 <= len(digits) <= 12):
            return f"{label} phone 须为 7–12 位数字 (手机 11 位), 不是 {value!r}"
        if len(digits) == 11 and not digits.startswith("1"):
            return f"{label} phone 为 11 位时须是以 1 开头的手机号, 不是 {value!r}"
    elif field == "residence_status":
        if value not in RESIDENCE_STATUS:
            return (
                f"{label} residence_status 须为 {', '.join(RESIDENCE_STATUS)} 之一, 不是 {value!r}"
            )
    elif field == "use":
        if value not in HOUSE_USE:
            return f"{label} use 须为 {', '.join(HOUSE_USE)} 之一, 不是 {value!r}"
    elif field == "actual_address" and not (4 <= len(value) <= 300):
        return f"{label} actual_address 须为 4–300 个字"
    return None


def normalise_phone(value: str) -> str:
    return value.replace("-", "").replace(" ", "")
