"""The assessment config: which indicators count, their weights and score mappings (a TOML file).

The shipped file is data/assessment.toml (DOMAIN.md §7 defaults); GRIDGOV_ASSESSMENT_FILE names a
replacement. Errors name the file, the entry and the field, in Chinese.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from gridgov.analytics.assessment.rules import INDICATORS, SCORE_KINDS


class AssessmentConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the entry and the field."""


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    key: str
    group: str
    weight: float
    score: str = "linear"  # linear | target
    target: float = 1.0

    @property
    def name(self) -> str:
        return INDICATORS[self.key].name


@dataclass(frozen=True)
class AssessmentConfig:
    indicators: tuple[IndicatorSpec, ...]
    groups: Mapping[str, str]
    check_task_days: int = 7
    min_cases: int = 1
    source: str = "<config>"

    @property
    def total_weight(self) -> float:
        return sum(i.weight for i in self.indicators)

    def group_weight(self, group: str) -> float:
        return sum(i.weight for i in self.indicators if i.group == group)

    def spec(self, key: str) -> IndicatorSpec | None:
        return next((i for i in self.indicators if i.key == key), None)


def _fail(source: str, where: str, msg: str) -> AssessmentConfigError:
    return AssessmentConfigError(f"考核配置 {source}: {where}: {msg}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_config(data: Mapping[str, Any], *, source: str) -> AssessmentConfig:
    """Build the config from parsed TOML, checking every entry."""
    unknown_top = set(data) - {"rules", "groups", "indicator"}
    if unknown_top:
        raise _fail(source, "顶层", f"未知设置 {', '.join(sorted(unknown_top))}")
    rules = dict(data.get("rules", {}))
    check_days = rules.pop("check_task_days", 7)
    if not (isinstance(check_days, int) and not isinstance(check_days, bool) and check_days >= 1):
        raise _fail(source, "[rules] check_task_days", f"须为正整数 (天), 不是 {check_days!r}")
    min_cases = rules.pop("min_cases", 1)
    if not (isinstance(min_cases, int) and not isinstance(min_cases, bool) and min_cases >= 1):
        raise _fail(source, "[rules] min_cases", f"须为正整数, 不是 {min_cases!r}")
    if rules:
        raise _fail(source, "[rules]", f"未知设置 {', '.join(sorted(rules))}")
    groups = dict(data.get("groups", {}))
    for key, name in groups.items():
        if not isinstance(name, str) or not name.strip():
            raise _fail(source, f"[groups] {key}", "名称须为非空字符串")
    specs: list[IndicatorSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(data.get("indicator", []), start=1):
        where = f"第 {i} 个 [[indicator]]"
        if not isinstance(entry, dict):
            raise _fail(source, where, "须为表")
        key = entry.get("key")
        if key not in INDICATORS:
            raise _fail(source, where, f"key {key!r} 无效; 可选: {', '.join(INDICATORS)}")
        where = f"指标 {key}"
        if key in seen:
            raise _fail(source, where, "重复")
        seen.add(key)
        extra = set(entry) - {"key", "group", "weight", "score", "target"}
        if extra:
            raise _fail(source, where, f"未知字段 {', '.join(sorted(extra))}")
        group = entry.get("group")
        if not isinstance(group, str) or group not in groups:
            raise _fail(source, where, f"group {group!r} 未在 [groups] 中定义")
        weight: Any = entry.get("weight")
        if not _number(weight) or weight < 0:
            raise _fail(source, where, f"weight 须为非负数, 不是 {weight!r}")
        kind = entry.get("score", "linear")
        if kind not in SCORE_KINDS:
            raise _fail(source, where, f"score 须为 {' 或 '.join(SCORE_KINDS)}, 不是 {kind!r}")
        target: Any = entry.get("target", 1.0)
        if not _number(target) or not 0 < target <= 1:
            raise _fail(source, where, f"target 须为 0 到 1 之间的小数 (不含 0), 不是 {target!r}")
        specs.append(IndicatorSpec(key, group, float(weight), kind, float(target)))
    if not specs or sum(s.weight for s in specs) <= 0:
        raise _fail(source, "[[indicator]]", "至少需要一个权重大于 0 的指标")
    return AssessmentConfig(tuple(specs), groups, check_days, min_cases, source)


def load_config(path: Path | None = None) -> AssessmentConfig:
    """Read the shipped config, or the given TOML file."""
    if path is None:
        pkg = resources.files("gridgov.analytics.assessment")
        text = pkg.joinpath("data/assessment.toml").read_text("utf-8")
        source = "内置 assessment.toml"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise AssessmentConfigError(f"无法读取考核配置 {path}: {exc.strerror}") from None
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AssessmentConfigError(f"考核配置 {source} 不是有效的 TOML: {exc}") from None
    return parse_config(data, source=source)


@lru_cache(maxsize=8)
def cached_config(path: Path | None) -> AssessmentConfig:
    return load_config(path)
