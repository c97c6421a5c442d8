"""Pure rules of early warning: the configuration, the handling workflow, and the small
decisions of the four kinds (no session, no clock)."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from gridgov.analytics.warnings.detect import DetectorConfig
from gridgov.core.errors import InvalidTransition, Rejected

SHIPPED_CONFIG = Path(__file__).parent / "data" / "warnings.toml"


class Kind(StrEnum):
    RISE = "rise"
    HOTSPOT = "hotspot"
    DISPUTE = "dispute"
    VISIT = "visit"


KIND_LABELS = {
    Kind.RISE: "事件上升",
    Kind.HOTSPOT: "空间热点",
    Kind.DISPUTE: "重复纠纷",
    Kind.VISIT: "重点人员未按期走访",
}


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    FOLLOWED_UP = "followed_up"
    CLOSED = "closed"


STATUS_LABELS = {
    Status.OPEN: "待签收",
    Status.ACKNOWLEDGED: "已签收",
    Status.FOLLOWED_UP: "跟进中",
    Status.CLOSED: "已关闭",
}
ACTIVE = (Status.OPEN, Status.ACKNOWLEDGED, Status.FOLLOWED_UP)


class Action(StrEnum):
    RAISE = "raise"
    ACKNOWLEDGE = "acknowledge"
    FOLLOW_UP = "follow_up"
    CLOSE = "close"


ACTION_LABELS = {
    Action.RAISE: "系统预警",
    Action.ACKNOWLEDGE: "签收",
    Action.FOLLOW_UP: "跟进",
    Action.CLOSE: "关闭",
}
# (status, action) -> next status. A follow-up may be noted again and again; closing needs a note.
ALLOWED: dict[tuple[Status, Action], Status] = {
    (Status.OPEN, Action.ACKNOWLEDGE): Status.ACKNOWLEDGED,
    (Status.OPEN, Action.CLOSE): Status.CLOSED,
    (Status.ACKNOWLEDGED, Action.FOLLOW_UP): Status.FOLLOWED_UP,
    (Status.ACKNOWLEDGED, Action.CLOSE): Status.CLOSED,
    (Status.FOLLOWED_UP, Action.FOLLOW_UP): Status.FOLLOWED_UP,
    (Status.FOLLOWED_UP, Action.CLOSE): Status.CLOSED,
}
NOTE_REQUIRED = frozenset({Action.FOLLOW_UP, Action.CLOSE})
MAX_NOTE = 2000


def transition(status: str, action: str, note: str, *, ref: str) -> Status:
    """The next status, or InvalidTransition / Rejected naming the warning and the field."""
    try:
        st, act = Status(status), Action(action)
    except ValueError:
        raise Rejected(
            f"预警 {ref} 的操作 action 无效: {action!r} (可用: acknowledge, follow_up, close)",
            code="bad_action",
        ) from None
    nxt = ALLOWED.get((st, act))
    if nxt is None:
        raise InvalidTransition(
            f"预警 {ref} 当前为「{STATUS_LABELS[st]}」, 不能「{ACTION_LABELS[act]}」",
            code="invalid_transition",
        )
    if act in NOTE_REQUIRED and not note.strip():
        raise Rejected(
            f"预警 {ref} 的{ACTION_LABELS[act]}须填写说明 (note 不能为空)", code="note_required"
        )
    if len(note) > MAX_NOTE:
        raise Rejected(f"预警 {ref} 的说明 note 超过 {MAX_NOTE} 字", code="note_too_long")
    return nxt


def actions_for(status: str) -> list[str]:
    return [a.value for (s, a) in ALLOWED if s.value == status]


# ------------------------------------------------------------------------ configuration

LEVEL_NAMES = {"grid": 5, "village": 4, "town": 3, "district": 2}


@dataclass(frozen=True, slots=True)
class RiseConfig:
    levels: tuple[int, ...] = (5, 3)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    min_baseline_days: int = 28
    pool_min_events: int = 100
    repeat_days: int = 7


@dataclass(frozen=True, slots=True)
class HotspotConfig:
    recent_days: int = 7
    baseline_days: int = 56
    neighbours: int = 8
    fdr: float = 0.05
    min_events: int = 3
    min_grids: int = 2
    own_p: float = 0.001
    repeat_days: int = 7


@dataclass(frozen=True, slots=True)
class DisputeConfig:
    categories: tuple[str, ...] = ("ZZ01", "ZZ04", "ZZ05")
    days: int = 30
    min_events: int = 2


@dataclass(frozen=True, slots=True)
class VisitConfig:
    default: dict[str, int] = field(default_factory=lambda: {"control": 7, "service": 30})
    subtypes: dict[str, int] = field(default_factory=dict)

    def every(self, tag_class: str, subtype: str) -> int | None:
        """Required interval in days, or None for classes not visited on a schedule."""
        if tag_class not in self.default:
            return None
        return self.subtypes.get(subtype, self.default[tag_class])


@dataclass(frozen=True, slots=True)
class WarningConfig:
    rise: RiseConfig = field(default_factory=RiseConfig)
    hotspot: HotspotConfig = field(default_factory=HotspotConfig)
    dispute: DisputeConfig = field(default_factory=DisputeConfig)
    visit: VisitConfig = field(default_factory=VisitConfig)


def _positive(section: str, data: dict[str, Any], name: str, default: Any, kind: type) -> Any:
    value: Any = data.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (kind is int and not isinstance(value, int))
        or value <= 0
    ):
        raise Rejected(
            f"预警配置 [{section}] {name} 须为正{'整数' if kind is int else '数'}, 不是 {value!r}",
            code="bad_warning_config",
        )
    return value


def load_config(path: Path | None = None) -> WarningConfig:
    """Read the TOML configuration (default: the shipped file); faults name section and key."""
    raw = tomllib.loads((path or SHIPPED_CONFIG).read_text(encoding="utf-8"))
    r = raw.get("rise", {})
    levels = []
    for name in r.get("levels", ["grid", "town"]):
        if name not in LEVEL_NAMES:
            raise Rejected(
                f"预警配置 [rise] levels 中的 {name!r} 无效 (可用: {', '.join(LEVEL_NAMES)})",
                code="bad_warning_config",
            )
        levels.append(LEVEL_NAMES[name])
    d = DetectorConfig()
    alpha = float(_positive("rise", r, "alpha", d.alpha, float))
    if alpha >= 0.5:
        raise Rejected(f"预警配置 [rise] alpha 须小于 0.5, 不是 {alpha}", code="bad_warning_config")
    detector = DetectorConfig(
        alpha=alpha,
        guard_days=_positive("rise", r, "guard_days", d.guard_days, int),
        baseline_days=_positive("rise", r, "baseline_days", d.baseline_days, int),
        profile_days=_positive("rise", r, "profile_days", d.profile_days, int),
        min_count=_positive("rise", r, "min_count", d.min_count, int),
        window=_positive("rise", r, "window", d.window, int),
    )
    rise = RiseConfig(
        levels=tuple(levels),
        detector=detector,
        min_baseline_days=_positive("rise", r, "min_baseline_days", 28, int),
        pool_min_events=_positive("rise", r, "pool_min_events", 100, int),
        repeat_days=_positive("rise", r, "repeat_days", 7, int),
    )
    h = raw.get("hotspot", {})
    hd = HotspotConfig()
    fdr = float(_positive("hotspot", h, "fdr", hd.fdr, float))
    hotspot = HotspotConfig(
        recent_days=_positive("hotspot", h, "recent_days", hd.recent_days, int),
        baseline_days=_positive("hotspot", h, "baseline_days", hd.baseline_days, int),
        neighbours=_positive("hotspot", h, "neighbours", hd.neighbours, int),
        fdr=fdr,
        min_events=_positive("hotspot", h, "min_events", hd.min_events, int),
        min_grids=_positive("hotspot", h, "min_grids", hd.min_grids, int),
        own_p=float(_positive("hotspot", h, "own_p", hd.own_p, float)),
        repeat_days=_positive("hotspot", h, "repeat_days", hd.repeat_days, int),
    )
    dd = raw.get("dispute", {})
    dispute = DisputeConfig(
        categories=tuple(str(c) for c in dd.get("categories", DisputeConfig().categories)),
        days=_positive("dispute", dd, "days", 30, int),
        min_events=_positive("dispute", dd, "min_events", 2, int),
    )
    v = raw.get("visit", {})
    default = {str(k): int(x) for k, x in v.get("default", VisitConfig().default).items()}
    subtypes = {str(k): int(x) for k, x in v.get("subtypes", {}).items()}
    for section, table in (("visit.default", default), ("visit.subtypes", subtypes)):
        for k, x in table.items():
            if x <= 0:
                raise Rejected(
                    f"预警配置 [{section}] {k} 须为正整数 (天), 不是 {x}", code="bad_warning_config"
                )
    return WarningConfig(rise, hotspot, dispute, VisitConfig(default, subtypes))


# ------------------------------------------------------------------------------ disputes

_SPACES = re.compile(r"[\s,，。.、;；:：()（）\-—_#]+")


def address_key(text: str) -> str:
    """An address reduced for comparison: width-folded, spaces and punctuation dropped,
    號 → 号; '' when too short to name a place."""
    s = unicodedata.normalize("NFKC", text or "").replace("號", "号")
    s = _SPACES.sub("", s).upper()
    return s if len(s) >= 4 else ""


def party_key(phone: str, name: str) -> str:
    """Who reported: the phone's digits when there are enough, else the name (2+ characters)."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) >= 7:
        return "tel:" + digits
    n = unicodedata.normalize("NFKC", name or "").strip()
    return "name:" + n if len(n) >= 2 else ""


def common_code(codes: list[str]) -> str:
    """The smallest unit holding every grid: the grid, its village, town, district or city."""
    first = codes[0]
    if all(c == first for c in codes):
        return first
    for n, pad in ((12, 0), (9, 3), (6, 6), (4, 8)):
        if all(c[:n] == first[:n] for c in codes):
            return first[:n] + "0" * pad
    return first[:4] + "0" * 8


# -------------------------------------------------------------------------------- visits


def visit_due(last_visit: date | None, tagged_on: date, every: int) -> date:
    """The day a key person's next visit falls due: `every` days after the last visit, or after
    the day the tag applied when never visited."""
    return (last_visit or tagged_on) + timedelta(days=every)


def visit_overdue(last_visit: date | None, tagged_on: date, every: int, day: date) -> bool:
    return visit_due(last_visit, tagged_on, every) < day
