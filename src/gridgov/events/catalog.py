"""The event catalog: categories, deadlines, platforms, departments and the routing table (data)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from gridgov.core.errors import Rejected
from gridgov.geo.divisions import CITY, DISTRICT, GRID, LEVEL_NAMES, TOWN, VILLAGE

URGENCIES = ("normal", "urgent", "immediate")
DEADLINE_RE = re.compile(r"^[1-9][0-9]{0,3}(wd|wh|h|m)$")
CODE_RE = re.compile(r"^[A-Z]{2}[0-9]{2}$")
UNIT_RE = re.compile(r"^[A-Z]{2,8}$")
LEVEL_WORDS: dict[str, int] = {
    "grid": GRID,
    "village": VILLAGE,
    "town": TOWN,
    "district": DISTRICT,
    "city": CITY,
}
# Catalog levels count upwards from the grid (L1) to the city (L5).
CATALOG_LEVEL: dict[int, int] = {1: GRID, 2: VILLAGE, 3: TOWN, 4: DISTRICT, 5: CITY}


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the file, the entry and the field."""


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str
    description: str
    platform: str | None
    department: str | None
    level: int  # the region-tree level (GRID … CITY) that closes it by default
    self_close: bool
    deadlines: Mapping[str, str]  # urgency -> allowance spec ("3wd", "4wh", "2h")

    @property
    def urgencies(self) -> tuple[str, ...]:
        return tuple(u for u in URGENCIES if u in self.deadlines)

    @property
    def default_urgency(self) -> str:
        return self.urgencies[0]

    @property
    def immediate(self) -> bool:
        return "immediate" in self.deadlines


@dataclass(frozen=True, slots=True)
class Target:
    """Where routing sends an event: a level word and, at town/district/city, a platform/department."""

    level: int
    sub: str = ""

    def label(self, catalog: Catalog) -> str:
        name = LEVEL_NAMES[self.level]
        if not self.sub:
            return name if self.level in (GRID, VILLAGE) else f"{name}指挥中心"
        return f"{name}{catalog.unit_name(self.level, self.sub)}"


@dataclass(frozen=True, slots=True)
class Route:
    category: str
    urgency: str
    where: str
    to: Target
    order: int

    def matches(self, category: str, urgency: str, region_code: str, is_urban: bool) -> bool:
        if self.category not in ("*", category) or self.urgency not in ("*", urgency):
            return False
        if self.where == "*":
            return True
        if self.where == "urban":
            return is_urban
        if self.where == "rural":
            return not is_urban
        return region_code.startswith(self.where)

    @property
    def specificity(self) -> tuple[int, int, int]:
        fixed = sum(x != "*" for x in (self.category, self.urgency, self.where))
        prefix = len(self.where) if self.where.isdigit() else 0
        return (fixed, prefix, -self.order)


@dataclass(frozen=True, slots=True)
class CatalogRules:
    yellow_fraction: float = 0.75
    yellow_left: str = "1wd"
    supervision_grace: str = "1wd"
    dispatch_allowance: str = "2wh"
    dispatch_allowance_immediate: str = "30m"
    reopen_days: int = 7
    report_within: str = "24h"
    report_within_immediate: str = "30m"


@dataclass(frozen=True)
class Catalog:
    categories: Mapping[str, Category]
    routes: Sequence[Route]
    platforms: Mapping[str, str]
    departments: Mapping[str, str]
    urgency_names: Mapping[str, str]
    rules: CatalogRules = field(default_factory=CatalogRules)
    source: str = "<catalog>"

    def category(self, code: str) -> Category:
        cat = self.categories.get(code)
        if cat is None:
            raise Rejected(
                f"事件类别 {code!r} 不存在; 可选: {', '.join(self.categories)}",
                code="unknown_category",
            )
        return cat

    def check_urgency(self, category: Category, urgency: str | None) -> str:
        """The urgency to use for a report, or Rejected naming what the category allows."""
        if urgency is None or urgency == "":
            return category.default_urgency
        if urgency not in category.deadlines:
            allowed = "、".join(f"{u}({self.urgency_names.get(u, u)})" for u in category.urgencies)
            raise Rejected(
                f"类别 {category.code} {category.name} 的紧急程度不能是 {urgency!r}; 可选: {allowed}",
                code="bad_urgency",
            )
        return urgency

    def route(self, category: str, urgency: str, region_code: str, is_urban: bool) -> Target:
        """The first handler for an event; unmatched events go to the town's dispatch centre."""
        best: Route | None = None
        for r in self.routes:
            if r.matches(category, urgency, region_code, is_urban) and (
                best is None or r.specificity > best.specificity
            ):
                best = r
        return best.to if best is not None else Target(TOWN)

    def unit_name(self, level: int, sub: str) -> str:
        if level == TOWN:
            return self.platforms.get(sub, sub)
        return self.departments.get(sub, sub)

    def unit_subs(self, level: int) -> Mapping[str, str]:
        """The platforms (town) or departments (district, city) a unit at `level` may name."""
        if level == TOWN:
            return self.platforms
        if level in (DISTRICT, CITY):
            return self.departments
        return {}


# --------------------------------------------------------------------------------------- loading


def _fail(source: str, where: str, msg: str) -> CatalogError:
    return CatalogError(f"事件目录 {source}: {where}: {msg}")


def _str(
    entry: Mapping[str, Any], key: str, source: str, where: str, default: str | None = None
) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise _fail(source, where, f"字段 {key} 须为非空字符串")
    return value


def parse_target(text: str, platforms: Mapping[str, str], departments: Mapping[str, str]) -> Target:
    word, _, sub = text.partition(":")
    if word not in LEVEL_WORDS:
        raise ValueError(f"去向 {text!r} 无效: 须为 {' | '.join(LEVEL_WORDS)}, 可加 :平台 或 :部门")
    level = LEVEL_WORDS[word]
    if sub:
        if level == TOWN and sub not in platforms:
            raise ValueError(f"去向 {text!r}: 乡镇平台 {sub!r} 未在 [platforms] 中定义")
        if level in (DISTRICT, CITY) and sub not in departments:
            raise ValueError(f"去向 {text!r}: 部门 {sub!r} 未在 [departments] 中定义")
        if level in (GRID, VILLAGE):
            raise ValueError(f"去向 {text!r}: 网格和村社区没有下设平台或部门")
    return Target(level, sub)


def parse_catalog(data: Mapping[str, Any], *, source: str) -> Catalog:
    """Build a Catalog from parsed TOML, checking every entry; errors name the entry and field."""
    platforms = dict(data.get("platforms", {}))
    departments = dict(data.get("departments", {}))
    for table, values in (("platforms", platforms), ("departments", departments)):
        for key, name in values.items():
            if not UNIT_RE.match(key) or not isinstance(name, str) or not name:
                raise _fail(
                    source, f"[{table}] {key}", "代码须为 2–8 位大写字母, 名称须为非空字符串"
                )
    urgency_names = dict(data.get("urgencies", {}))
    for u in URGENCIES:
        urgency_names.setdefault(u, u)

    raw_rules = dict(data.get("rules", {}))
    defaults = CatalogRules()
    rule_kwargs: dict[str, Any] = {}
    for name in CatalogRules.__dataclass_fields__:
        if name not in raw_rules:
            continue
        value = raw_rules.pop(name)
        expected = type(getattr(defaults, name))
        if expected is str and (not isinstance(value, str) or not DEADLINE_RE.match(value)):
            raise _fail(source, f"[rules] {name}", f"时限 {value!r} 无效 (例: 3wd, 4wh, 2h, 30m)")
        if expected is float and not (isinstance(value, int | float) and 0 < value < 1):
            raise _fail(source, f"[rules] {name}", f"须为 0 到 1 之间的小数, 不是 {value!r}")
        if expected is int and not (isinstance(value, int) and value >= 0):
            raise _fail(source, f"[rules] {name}", f"须为非负整数, 不是 {value!r}")
        rule_kwargs[name] = value
    if raw_rules:
        raise _fail(source, "[rules]", f"未知设置 {', '.join(raw_rules)}")

    categories: dict[str, Category] = {}
    for i, entry in enumerate(data.get("category", []), start=1):
        where = f"第 {i} 个 [[category]]"
        code = _str(entry, "code", source, where)
        where = f"类别 {code}"
        if not CODE_RE.match(code):
            raise _fail(source, where, "代码须为两个大写字母加两位数字, 如 ZF03")
        if code in categories:
            raise _fail(source, where, "代码重复")
        platform = entry.get("platform")
        if platform is not None and platform not in platforms:
            raise _fail(source, where, f"平台 {platform!r} 未在 [platforms] 中定义")
        department = entry.get("department")
        if department is not None and department not in departments:
            raise _fail(source, where, f"部门 {department!r} 未在 [departments] 中定义")
        level = entry.get("level")
        if level not in CATALOG_LEVEL:
            raise _fail(source, where, f"level 须为 1 (网格) 到 5 (市), 不是 {level!r}")
        deadlines = entry.get("deadlines")
        if not isinstance(deadlines, dict) or not deadlines:
            raise _fail(source, where, '须有 deadlines, 如 { normal = "3wd", urgent = "1wd" }')
        for urgency, spec in deadlines.items():
            if urgency not in URGENCIES:
                raise _fail(
                    source, where, f"紧急程度 {urgency!r} 无效, 可选 {', '.join(URGENCIES)}"
                )
            if not isinstance(spec, str) or not DEADLINE_RE.match(spec):
                raise _fail(source, where, f"{urgency} 时限 {spec!r} 无效 (例: 3wd, 4wh, 2h, 30m)")
        self_close = entry.get("self_close", False)
        if not isinstance(self_close, bool):
            raise _fail(source, where, "self_close 须为 true 或 false")
        unknown = set(entry) - {
            "code", "name", "description", "platform", "department", "level", "self_close", "deadlines",
        }  # fmt: skip
        if unknown:
            raise _fail(source, where, f"未知字段 {', '.join(sorted(unknown))}")
        categories[code] = Category(
            code=code,
            name=_str(entry, "name", source, where),
            description=_str(entry, "description", source, where, default=""),
            platform=platform,
            department=department,
            level=CATALOG_LEVEL[level],
            self_close=self_close,
            deadlines=dict(deadlines),
        )
    if not categories:
        raise _fail(source, "[[category]]", "至少需要一个类别")

    routes: list[Route] = []
    for i, entry in enumerate(data.get("route", []), start=1):
        where = f"第 {i} 条 [[route]]"
        category = entry.get("category", "*")
        urgency = entry.get("urgency", "*")
        region = entry.get("where", "*")
        if category != "*" and category not in categories:
            raise _fail(source, where, f"类别 {category!r} 未定义")
        if urgency != "*" and urgency not in URGENCIES:
            raise _fail(source, where, f"紧急程度 {urgency!r} 无效")
        if not (
            region in ("*", "urban", "rural") or (isinstance(region, str) and region.isdigit())
        ):
            raise _fail(
                source, where, f"where {region!r} 无效: 须为 *, urban, rural 或区划代码前缀"
            )
        try:
            target = parse_target(_str(entry, "to", source, where), platforms, departments)
        except ValueError as exc:
            raise _fail(source, where, str(exc)) from None
        routes.append(Route(category, urgency, region, target, i))

    return Catalog(
        categories=categories,
        routes=tuple(routes),
        platforms=platforms,
        departments=departments,
        urgency_names=urgency_names,
        rules=CatalogRules(**rule_kwargs),
        source=source,
    )


def load_catalog(path: Path | None = None) -> Catalog:
    """Read the shipped catalog, or the given TOML file."""
    if path is None:
        text = resources.files("gridgov.events").joinpath("data/catalog.toml").read_text("utf-8")
        source = "内置 catalog.toml"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise CatalogError(f"无法读取事件目录 {path}: {exc.strerror}") from None
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"事件目录 {source} 不是有效的 TOML: {exc}") from None
    return parse_catalog(data, source=source)


@lru_cache(maxsize=8)
def cached_catalog(path: Path | None) -> Catalog:
    return load_catalog(path)


def unit_codes(catalog: Catalog) -> dict[int, list[str]]:
    """The platform and department codes an account may name, by level."""
    return {
        TOWN: [*catalog.platforms, *catalog.departments],
        DISTRICT: list(catalog.departments),
        CITY: list(catalog.departments),
    }
