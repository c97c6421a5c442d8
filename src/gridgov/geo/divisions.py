"""Administrative division code lists: parse, check and walk a city's five-level tree."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

CITY, DISTRICT, TOWN, VILLAGE, GRID = 1, 2, 3, 4, 5
LEVEL_NAMES = {CITY: "市", DISTRICT: "区县", TOWN: "乡镇街道", VILLAGE: "村社区", GRID: "网格"}
# Significant prefix length of a code at each level (GB/T 2260 + statistical town/village digits).
PREFIX_LEN = {CITY: 4, DISTRICT: 6, TOWN: 9, VILLAGE: 12, GRID: 15}
DEFAULT_DIVISIONS = "ningbo_divisions_2023.csv"


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    name: str
    level: int
    parent_code: str | None

    @property
    def is_urban(self) -> bool:
        """Streets (town segment 001-099) and residents' committees (village segment 001-199)."""
        if self.level == TOWN:
            return int(self.code[6:9]) < 100
        if self.level == VILLAGE:
            return int(self.code[9:12]) < 200
        return self.level <= DISTRICT


class DivisionError(ValueError):
    """A code list that cannot form a five-level tree; the message names the row and field."""


def scope_prefix(code: str, level: int) -> str:
    """The code prefix shared by a node and everything below it."""
    return code[: PREFIX_LEN[level]]


def prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high) bounds holding exactly the digit codes that start with `prefix`.

    The upper bound is the prefix plus one at the same width ("330203" → "330204"), which sorts
    correctly under any collation that orders digits 0–9, not only byte order.
    """
    if not prefix.isdigit():
        raise DivisionError(f"代码前缀 {prefix!r} 只能由数字组成")
    return prefix, str(int(prefix) + 1).zfill(len(prefix))


def level_of_code(code: str) -> int:
    """Infer the level of a 12-digit statistical code or a 15-digit grid code."""
    if len(code) == 15 and code.isdigit():
        return GRID
    if len(code) != 12 or not code.isdigit():
        raise DivisionError(f"代码 {code!r} 不是 12 位统计用区划代码或 15 位网格代码")
    if code[4:] == "00000000":
        return CITY
    if code[6:] == "000000":
        return DISTRICT
    if code[9:] == "000":
        return TOWN
    return VILLAGE


def parse_divisions(rows: Iterable[dict[str, str]], *, source: str = "<rows>") -> list[Division]:
    """Check a code list (code, name, level, parent_code) and return it ordered by level, code.

    Exactly one city; every other row's parent is in the list one level up and its code starts with the
    parent's prefix. Errors name the source row (header is row 1) and the field.
    """
    out: list[Division] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):
        code = (row.get("code") or "").strip()
        name = (row.get("name") or "").strip()
        parent = (row.get("parent_code") or "").strip() or None
        try:
            level = int((row.get("level") or "").strip())
        except ValueError:
            raise DivisionError(
                f"{source} 第 {i} 行 level 字段无效: {row.get('level')!r}"
            ) from None
        if level not in (CITY, DISTRICT, TOWN, VILLAGE):
            raise DivisionError(f"{source} 第 {i} 行 level 字段应为 1–4, 实为 {level}")
        if not name:
            raise DivisionError(f"{source} 第 {i} 行 name 字段为空 (code {code})")
        try:
            inferred = level_of_code(code)
        except DivisionError as exc:
            raise DivisionError(f"{source} 第 {i} 行 code 字段: {exc}") from None
        if inferred != level:
            raise DivisionError(
                f"{source} 第 {i} 行 code {code} 的形式对应层级 {inferred}, 与 level 字段 {level} 不符"
            )
        if code in seen:
            raise DivisionError(f"{source} 第 {i} 行 code {code} 与第 {seen[code]} 行重复")
        seen[code] = i
        out.append(Division(code, name, level, parent))
    by_code = {d.code: d for d in out}
    cities = [d for d in out if d.level == CITY]
    if len(cities) != 1:
        raise DivisionError(f"{source} 应恰有一个市级 (level 1) 行, 实有 {len(cities)} 个")
    for d in out:
        if d.level == CITY:
            continue
        parent_div = by_code.get(d.parent_code or "")
        if parent_div is None or parent_div.level != d.level - 1:
            raise DivisionError(
                f"{source} 第 {seen[d.code]} 行 parent_code {d.parent_code} 不是上一级的已知代码 "
                f"(code {d.code})"
            )
        if not d.code.startswith(scope_prefix(parent_div.code, parent_div.level)):
            raise DivisionError(
                f"{source} 第 {seen[d.code]} 行 code {d.code} 不以上级 {parent_div.code} 的前缀开头"
            )
    out.sort(key=lambda d: (d.level, d.code))
    return out


def load_divisions(path: str | Path | None = None) -> list[Division]:
    """Load a code list CSV; without a path, the shipped Ningbo 2023 list."""
    if path is None:
        ref = resources.files("gridgov.geo") / "data" / DEFAULT_DIVISIONS
        with ref.open("r", encoding="utf-8") as fh:
            return parse_divisions(csv.DictReader(fh), source=DEFAULT_DIVISIONS)
    p = Path(path)
    with p.open("r", encoding="utf-8-sig") as fh:
        return parse_divisions(csv.DictReader(fh), source=p.name)


def children_map(divisions: Sequence[Division]) -> dict[str, list[Division]]:
    out: dict[str, list[Division]] = {}
    for d in divisions:
        if d.parent_code is not None:
            out.setdefault(d.parent_code, []).append(d)
    return out
