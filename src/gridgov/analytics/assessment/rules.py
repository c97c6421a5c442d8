"""Pure assessment rules: the indicators' definitions, rate → score, the weighted total, ranking.

Values in, decisions out: no session, no settings, no clock. The counts come from service.py.

No-data rule: an indicator whose denominator is below `min_cases` has no value for that unit. It
is neither rewarded (100) nor punished (0): it is left out, and the total is the weighted mean of
the indicators that have data, Σ wᵢ·sᵢ / Σ wᵢ, so it stays on the 0–100 scale. A unit with no
indicator holding data has no total and ranks last ("无数据").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridgov.analytics.assessment.config import AssessmentConfig, IndicatorSpec

SCORE_KINDS = ("linear", "target")
LEVELS = ("worker", "grid", "village", "town", "department")
LEVEL_LABELS = {
    "worker": "网格员",
    "grid": "网格",
    "village": "村社区",
    "town": "乡镇街道",
    "department": "部门",
}


@dataclass(frozen=True, slots=True)
class Indicator:
    key: str
    name: str
    formula: str  # the ratio, in Chinese
    detail: str  # what counts, in Chinese
    levels: frozenset[str]  # where it applies; elsewhere it has no data by definition


_ALL = frozenset(LEVELS)
_AREAS = frozenset({"worker", "grid", "village", "town"})

INDICATORS: dict[str, Indicator] = {
    i.key: i
    for i in (
        Indicator(
            "on_time_closure",
            "按期结案率",
            "按期结案数 / 应结案数",
            "应结案: 上报时间在考核期内、已受理且未被不予受理的事件, 不含计算时尚未到截止时间的"
            "在办事件; 按期结案: 已结案且未超出办理时限 (DOMAIN.md §7)",
            _ALL,
        ),
        Indicator(
            "self_closure",
            "网格自结率",
            "在网格层级结案的网格员上报事件数 / 网格员上报事件数",
            "网格员上报: 渠道为网格员的事件; 在网格层级结案含当场自行处置",
            _AREAS,
        ),
        Indicator(
            "timely_report",
            "及时上报率",
            "发现后按时上报的网格员上报事件数 / 网格员上报事件数",
            "按时: 上报时间减发现时间不超过 24 小时 (立即类事件 30 分钟; 时限取自事件目录"
            " report_within)",
            _AREAS,
        ),
        Indicator(
            "visit_coverage",
            "走访覆盖率",
            "考核期内走访到的户数 / 应走访户数",
            "应走访户: 有人居住的户室 (以房管人), 每户每个考核期至少走访一次; 走访该户室或户内"
            "居住的人员均计为走访到该户",
            _AREAS,
        ),
        Indicator(
            "check_on_time",
            "核查任务按时办结率",
            "按时办结的核查任务数 / 应办结的核查任务数",
            "应办结: 考核期内创建的核查任务, 不含退回主管部门的任务和计算时尚未到期的未办任务;"
            " 按时: 创建后 check_task_days 天内办结",
            _AREAS,
        ),
        Indicator(
            "satisfaction",
            "群众满意率",
            "(满意 + 基本满意) / 回访数",
            "回访: 结案时记录了满意度的事件",
            _ALL,
        ),
        Indicator(
            "patrol_attendance",
            "巡查出勤率",
            "有巡查的工作日数 / 考核期内工作日数",
            "来自移动端的每日巡查数据; 网格、村社区、乡镇按 网格×工作日 计 (每个网格每个工作日"
            "应有巡查), 网格员按本人",
            _AREAS,
        ),
        Indicator(
            "patrol_coverage",
            "巡查楼栋覆盖率",
            "巡查日楼栋覆盖率之和 / 巡查日数",
            "每个巡查日的覆盖率: 巡查轨迹 50 米内经过的楼栋 / 网格楼栋 (移动端每日巡查数据)",
            _AREAS,
        ),
    )
}

# What each level's counts are about (shown with the method).
SUBJECTS = {
    "worker": "网格员: 事件指标按本人上报的事件; 走访按本人网格的户、本人的走访; 核查任务按指派"
    "给本人或由本人办结的任务; 巡查按本人的每日巡查数据",
    "grid": "网格: 事发地在本网格的事件、本网格的户与核查任务、本网格的巡查",
    "village": "村社区: 下辖各网格的合计 (比率按合计的分子分母计算, 不是各网格比率的平均)",
    "town": "乡镇街道: 下辖各网格的合计 (同上)",
    "department": "部门: 分派给该平台或部门承办的事件 (乡镇四平台、区县和市级部门); 只有按期结案率"
    "和满意率适用, 其余指标为「无数据」",
}


# Not frozen: a city has tens of thousands of rows × indicators, and frozen dataclasses build
# several times slower.
@dataclass(slots=True)
class Ratio:
    """An indicator's counts for one unit."""

    num: float
    den: float


@dataclass(slots=True)
class Scored:
    key: str
    num: float
    den: float
    value: float | None  # the raw rate, None = no data
    score: float | None
    weight: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": INDICATORS[self.key].name,
            "numerator": self.num,
            "denominator": self.den,
            "value": None if self.value is None else round(self.value, 4),
            "score": None if self.score is None else round(self.score, 2),
            "weight": self.weight,
        }


@dataclass
class Row:
    """One assessed worker or unit: its indicators, total and rank."""

    level: str
    code: str  # region code, unit key (department) or username (worker)
    name: str
    context: str  # where it sits (e.g. the worker's grid, the department's government)
    indicators: list[Scored]
    total: float | None
    weight_with_data: float
    rank: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def indicator(self, key: str) -> Scored | None:
        return next((s for s in self.indicators if s.key == key), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "code": self.code,
            "name": self.name,
            "context": self.context,
            "total": None if self.total is None else round(self.total, 2),
            "weight_with_data": self.weight_with_data,
            "indicators": {s.key: s.as_dict() for s in self.indicators},
            **self.extra,
        }


def rate(ratio: Ratio | None, *, min_cases: int) -> float | None:
    """The raw rate, or None when the unit has fewer than `min_cases` cases (no data)."""
    if ratio is None or ratio.den < min_cases or ratio.den <= 0:
        return None
    return ratio.num / ratio.den


def score_of(value: float | None, spec: IndicatorSpec) -> float | None:
    """linear: value × 100; target: min(value / target, 1) × 100. Clipped to 0–100."""
    if value is None:
        return None
    s = min(value / spec.target, 1.0) * 100 if spec.score == "target" else value * 100
    return max(0.0, min(100.0, s))


def total_of(scored: Sequence[Scored]) -> tuple[float | None, float]:
    """The weighted mean over indicators with data, and the weight that had data."""
    weight = points = 0.0
    for s in scored:
        if s.score is not None and s.weight > 0:
            weight += s.weight
            points += s.weight * s.score
    if weight <= 0:
        return None, 0.0
    return points / weight, weight


def assess(
    level: str,
    code: str,
    name: str,
    context: str,
    ratios: Mapping[str, Ratio],
    config: AssessmentConfig,
) -> Row:
    """Score one unit's counts under the config."""
    scored: list[Scored] = []
    for spec in config.indicators:
        applies = level in INDICATORS[spec.key].levels
        ratio = ratios.get(spec.key) if applies else None
        value = rate(ratio, min_cases=config.min_cases)
        scored.append(
            Scored(
                spec.key,
                ratio.num if ratio else 0,
                ratio.den if ratio else 0,
                value,
                score_of(value, spec),
                spec.weight,
            )
        )
    total, weight = total_of(scored)
    return Row(level, code, name, context, scored, total, weight)


def rank(rows: list[Row]) -> list[Row]:
    """Best total first; equal totals (to 2 decimals) share a rank (1, 2, 2, 4); no data last."""
    ordered = sorted(rows, key=lambda r: (r.total is None, -round(r.total or 0.0, 2), r.code))
    prev: float | None = None
    for i, row in enumerate(ordered, start=1):
        if row.total is None:
            row.rank = None
            continue
        t = round(row.total, 2)
        if prev is None or t != prev:
            row.rank = i
            prev = t
        else:
            row.rank = ordered[i - 2].rank
    return ordered


def method_lines(config: AssessmentConfig) -> list[dict[str, Any]]:
    """One entry per indicator: group, name, weight, formula, detail and score mapping (Chinese)."""
    out = []
    for spec in config.indicators:
        ind = INDICATORS[spec.key]
        if spec.score == "target":
            mapping = f"得分 = min(比率 / {spec.target:g}, 1) × 100"
        else:
            mapping = "得分 = 比率 × 100"
        out.append(
            {
                "key": spec.key,
                "group": config.groups.get(spec.group, spec.group),
                "group_weight": config.group_weight(spec.group),
                "name": ind.name,
                "weight": spec.weight,
                "formula": ind.formula,
                "detail": ind.detail.replace("check_task_days", str(config.check_task_days)),
                "mapping": mapping,
                "levels": [LEVEL_LABELS[lv] for lv in LEVELS if lv in ind.levels],
            }
        )
    return out


NO_DATA_RULE = (
    "无数据规则: 某指标的分母 (应计数) 少于 {min_cases} 时, 该单位此项记为「无数据」, 既不得满分"
    "也不计零分, 不参与计分; 总分 = Σ(权重 × 得分) / Σ(有数据指标的权重), 仍为百分制。"
    "所有指标都无数据的单位不计总分, 排在最后。"
)
TOTAL_RULE = "总分 = 各指标得分按权重加权 (权重合计 {total:g}); 同分 (保留两位小数) 并列同一名次。"


def method_text(config: AssessmentConfig) -> list[str]:
    """The general rules shown next to every table."""
    return [
        TOTAL_RULE.format(total=config.total_weight),
        NO_DATA_RULE.format(min_cases=config.min_cases),
        "考核期: 按北京时间的起止日期 (含两端); 事件按上报时间、走访按走访时间、核查任务按创建时间、"
        "巡查按巡查日期落入考核期计; 在办事件和未办任务按计算时的状态。",
        *(f"{LEVEL_LABELS[lv]}口径 — {SUBJECTS[lv]}" for lv in LEVELS),
        f"配置来源: {config.source}",
    ]
