"""Address standardisation: normalise free-text Chinese addresses and parse them into GA/T 2000.32 parts.

Pure: values in, values out. The division list and the table of historical names come in through
`Gazetteer`; nothing here reads a database or the clock.

Pipeline: `normalize_text` (character-level variants) → `parse_address` (admin units through the
gazetteer, then road, door number, compound, building, unit, floor, room) → `ParsedAddress.key()` (the
standard-address key of DOMAIN.md §4) and `address_similarity` (fuzzy matching within one road).

Decisions (change them here, not in callers):
- "-" is kept only between two Latin letters/digits ("12-3", "3-2-501", "A-1"); any other dash,
  and every other punctuation mark, space and symbol is dropped. Whitespace or "/" between two digits
  becomes "-" so that "3 2 501" does not collapse into "32501". What a kept dash means is decided by the
  parser from its position: right after a road it is part of the door number ("88-90号" is kept
  verbatim, range or sub-number alike); elsewhere "3-2-501" is building-unit-room and "5-301" is
  building-room (or unit-room once a building is known).
- "#" right after a number means 号 ("3#楼" = "3号楼").
- Chinese numerals become Arabic only directly before a marker (号 幢 栋 座 楼 单元 单 层 室 户 弄 巷 期 组);
  "第" is dropped when it introduces such a number ("第十二幢" → "12幢") and kept otherwise, because
  "第一医院" and "第二中学" are proper names. Numerals inside names (三江路, 一品苑, 五乡镇, 十字路口) stay.
- After a compound (小区, 花园, 新村 …), "N号" is a building ("XX新村12号" = "XX新村12幢"); after a road or a
  village it is the door number.
- "N楼" is a building unless a building is already known, the next room number starts with N
  ("5楼501室" is floor 5), or the compound is an office block (大厦, 大楼, 中心, 广场), where it is a floor.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from gridgov.geo.divisions import CITY, DISTRICT, TOWN, VILLAGE, Division, load_divisions

__all__ = [
    "CONFIDENCE_PENALTIES",
    "CONFIDENCE_WEIGHTS",
    "MISMATCH_CAP",
    "SIMILARITY_WEIGHTS",
    "Gazetteer",
    "GazetteerError",
    "NameMatch",
    "ParsedAddress",
    "PlaceHistory",
    "address_similarity",
    "canonical_village_name",
    "default_gazetteer",
    "load_place_history",
    "normal_form_patterns",
    "normalize_text",
    "parse_address",
    "parse_normal_address",
    "parse_place_history",
]

# ---------------------------------------------------------------------------------------------
# Weights (the one place to tune them)
# ---------------------------------------------------------------------------------------------

# Parse confidence = sum of these weights times how well each part is satisfied (see _confidence).
CONFIDENCE_WEIGHTS: Mapping[str, float] = {
    "consumed": 0.30,  # share of the normalised input placed into components (not left in `rest`)
    "county": 0.15,  # 1 confirmed by the gazetteer, 0.5 a name only
    "town": 0.15,
    "village": 0.15,
    "locator": 0.25,  # road + door, compound + building or village + door: 1; one of them alone: 0.5
}
# Subtracted for each note of this kind.
CONFIDENCE_PENALTIES: Mapping[str, float] = {
    "town_outside_county": 0.10,  # the named town lies in another county (and no known move explains it)
    "village_outside_town": 0.10,
    "village_ambiguous": 0.05,  # on top of the village weight counting only half
    "other_province": 0.30,
}

# address_similarity: weights of the compared components (sum 1.0).
SIMILARITY_WEIGHTS: Mapping[str, float] = {
    "village": 0.20,
    "road": 0.20,
    "door": 0.20,
    "compound": 0.10,
    "building": 0.15,
    "unit": 0.05,
    "room": 0.10,
}
# When both sides name a county, village or road and they differ, the score cannot exceed this.
MISMATCH_CAP = 0.3
# Partial credit: one side lacks the component; door numbers adjacent (|Δ| ≤ 2) or overlapping ranges;
# one compound name contains the other.
ONE_SIDE_MISSING = 0.5
DOOR_ADJACENT = 0.5
DOOR_OVERLAP = 0.8
COMPOUND_CONTAINED = 0.7

# ---------------------------------------------------------------------------------------------
# normalize_text
# ---------------------------------------------------------------------------------------------

_CHAR_MAP = str.maketrans(
    {
        # Traditional (or Japanese) forms of the markers and admin suffixes the parser reads.
        "號": "号",
        "棟": "栋",
        "樓": "楼",
        "單": "单",
        "層": "层",
        "戶": "户",
        "戸": "户",
        "區": "区",
        "縣": "县",
        "鎮": "镇",
        "鄉": "乡",
        "門": "门",
        "園": "园",
        "廣": "广",
        "場": "场",
        "貳": "二",
        # U+25CB WHITE CIRCLE is commonly typed for 〇.
        "○": "〇",
        "~": "-",
        "\u2212": "-",
        **{chr(c): chr(c - 32) for c in range(ord("a"), ord("z") + 1)},
    }
)
# Unicode categories dropped: punctuation (P), symbols (S), separators (Z), other (C), and combining
# marks (M, so that no mark can later recombine with a new neighbour). Dashes (Pd) become "-".
_DROP_CATEGORIES = frozenset("PSZCM")
_CN_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "".join(_CN_DIGITS) + "".join(_CN_UNITS)
_MARKERS = "号|幢|栋|座|楼|单元|单|层|室|户|弄|巷|期|组"
_SEPARATOR_BETWEEN_DIGITS = re.compile(r"(?<=[0-9])(?:\s|/)+(?=[0-9])")
_HASH_AFTER_NUMBER = re.compile(rf"(?<=[0-9{_CN_NUM}])#")
_DASH_RUN = re.compile(r"-{2,}")
_LONE_DASH = re.compile(r"(?<![0-9A-Z])-|-(?![0-9A-Z])")
_CN_NUMBER_BEFORE_MARKER = re.compile(rf"(?:第+)?([{_CN_NUM}]+)(?=(?:{_MARKERS}))")
_ORDINAL_DIGITS = re.compile(rf"第+([0-9]+)(?=(?:{_MARKERS}))")


def _cn_numeral(s: str) -> str | None:
    """Arabic digits for a Chinese numeral, or None when it is not a well-formed number.

    Without 十/百/千 the numeral is read digit by digit (五〇一 → 501, 一二〇一 → 1201); with them,
    positionally (十一 → 11, 二十三 → 23, 一百零五 → 105, 两百 → 200; colloquial 一百五 → 150).
    """
    if not any(c in _CN_UNITS for c in s):
        return "".join(str(_CN_DIGITS[c]) for c in s)
    total = 0
    digit: int | None = None
    last_unit = 10_000
    zero_seen = False
    for c in s:
        if c in _CN_DIGITS:
            value = _CN_DIGITS[c]
            if value == 0:
                if digit is not None:
                    return None
                zero_seen = True
                continue
            if digit is not None:
                return None
            digit = value
            continue
        unit = _CN_UNITS[c]
        if unit >= last_unit:
            return None
        if digit is None:
            if unit == 10 and total == 0 and not zero_seen:
                digit = 1
            else:
                return None
        total += digit * unit
        digit = None
        last_unit = unit
        zero_seen = False
    if digit is not None:
        total += digit if zero_seen else digit * (last_unit // 10)
    return str(total)


def _replace_cn_number(m: re.Match[str]) -> str:
    converted = _cn_numeral(m.group(1))
    return m.group(0) if converted is None else converted


def normalize_text(s: str) -> str:
    """Canonical characters for an address string (idempotent); see the module docstring for the rules.

    Full-width → half-width (NFKC), traditional marker characters → simplified, Latin letters upper-case,
    spaces and punctuation dropped, Chinese numerals before house/building/unit/floor/room markers →
    Arabic.
    """
    t = unicodedata.normalize("NFKC", s).translate(_CHAR_MAP)
    t = _SEPARATOR_BETWEEN_DIGITS.sub("-", t)
    t = _HASH_AFTER_NUMBER.sub("号", t)
    kept: list[str] = []
    for ch in t:
        cat = unicodedata.category(ch)
        if cat == "Pd":
            kept.append("-")
        elif cat[0] not in _DROP_CATEGORIES:
            kept.append(ch)
    t = _DASH_RUN.sub("-", "".join(kept))
    t = _LONE_DASH.sub("", t)
    t = _CN_NUMBER_BEFORE_MARKER.sub(_replace_cn_number, t)
    t = _ORDINAL_DIGITS.sub(r"\1", t)
    # Removing characters may have brought Hangul jamo together; recompose so a second pass is a no-op.
    return unicodedata.normalize("NFKC", t)


def normal_form_patterns() -> tuple[str, str]:
    """Two regular expressions without look-around (for Polars, DuckDB, RE2): a text that fully
    matches the first and nowhere matches the second is already its own `normalize_text`.

    The first admits only what every step above leaves unchanged: CJK unified ideographs of the
    basic block (U+4E00–U+9FA5, none with a compatibility form) other than the traditional
    characters `_CHAR_MAP` rewrites, ASCII digits, upper-case Latin letters and "-". The second
    finds what would still change: a dash not between two letters/digits, a Chinese numeral or a
    "第"-number before a marker.
    """
    mapped = {chr(c) for c in _CHAR_MAP if isinstance(c, int) and 0x4E00 <= c <= 0x9FA5}
    excluded = "".join(sorted(mapped))
    plain = f"^[[\u4e00-\u9fa5&&[^{excluded}]]0-9A-Z-]*$"
    marker = f"(?:{_MARKERS})"
    changed = rf"^-|-$|[^0-9A-Z]-|-[^0-9A-Z]|[{_CN_NUM}]{marker}|第[0-9]+{marker}"
    return plain, changed


# ---------------------------------------------------------------------------------------------
# Historical names
# ---------------------------------------------------------------------------------------------

HISTORY_FILE = "old_place_names.toml"


class GazetteerError(ValueError):
    """A division list or history file the gazetteer cannot use; the message names the entry."""


@dataclass(frozen=True, slots=True)
class OldCounty:
    old_name: str
    current_code: str  # 6 digits
    year: int
    source: str
    old_code: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class OldTown:
    old_name: str
    current_code: str  # 12 digits
    year: int
    source: str


@dataclass(frozen=True, slots=True)
class TownMove:
    from_county: str  # 6 digits
    to_county: str
    towns: tuple[str, ...]
    year: int
    source: str


@dataclass(frozen=True, slots=True)
class PlaceHistory:
    counties: tuple[OldCounty, ...] = ()
    towns: tuple[OldTown, ...] = ()
    moves: tuple[TownMove, ...] = ()


def _str_field(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise GazetteerError(f"{where}: 字段 {key} 缺失或不是字符串")
    return value


def _int_field(row: Mapping[str, Any], key: str, where: str) -> int:
    value = row.get(key)
    if not isinstance(value, int):
        raise GazetteerError(f"{where}: 字段 {key} 应为整数年份")
    return value


def parse_place_history(data: Mapping[str, Any], *, source: str = HISTORY_FILE) -> PlaceHistory:
    """Check the parsed TOML tables `county`, `town` and `town_move`."""
    counties: list[OldCounty] = []
    for i, row in enumerate(data.get("county", []), start=1):
        where = f"{source} [[county]] 第 {i} 项"
        old_code = row.get("old_code")
        counties.append(
            OldCounty(
                old_name=_str_field(row, "old_name", where),
                current_code=_str_field(row, "current_code", where),
                year=_int_field(row, "year", where),
                source=_str_field(row, "source", where),
                old_code=old_code if isinstance(old_code, str) else None,
                note=str(row.get("note", "")),
            )
        )
    towns = [
        OldTown(
            old_name=_str_field(row, "old_name", f"{source} [[town]] 第 {i} 项"),
            current_code=_str_field(row, "current_code", f"{source} [[town]] 第 {i} 项"),
            year=_int_field(row, "year", f"{source} [[town]] 第 {i} 项"),
            source=_str_field(row, "source", f"{source} [[town]] 第 {i} 项"),
        )
        for i, row in enumerate(data.get("town", []), start=1)
    ]
    moves: list[TownMove] = []
    for i, row in enumerate(data.get("town_move", []), start=1):
        where = f"{source} [[town_move]] 第 {i} 项"
        names = row.get("towns")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise GazetteerError(f"{where}: 字段 towns 应为乡镇名称列表")
        moves.append(
            TownMove(
                from_county=_str_field(row, "from_county", where),
                to_county=_str_field(row, "to_county", where),
                towns=tuple(names),
                year=_int_field(row, "year", where),
                source=_str_field(row, "source", where),
            )
        )
    return PlaceHistory(tuple(counties), tuple(towns), tuple(moves))


def load_place_history(path: str | Path | None = None) -> PlaceHistory:
    """Load a history TOML; without a path, the shipped Ningbo file."""
    if path is None:
        ref = resources.files("gridgov.resolve") / "data" / HISTORY_FILE
        with ref.open("rb") as fh:
            return parse_place_history(tomllib.load(fh))
    p = Path(path)
    with p.open("rb") as fh:
        return parse_place_history(tomllib.load(fh), source=p.name)


# ---------------------------------------------------------------------------------------------
# Gazetteer
# ---------------------------------------------------------------------------------------------

_PROVINCES = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
}
_COUNTY_SUFFIXES = ("区", "县", "市")
_TOWN_SUFFIXES = ("街道", "镇", "乡")
# Villagers' committees and residents' committees: every suffix form names the same unit.
_VILLAGER_SUFFIXES = ("村民委员会", "村村委会", "村委会", "村")
_RESIDENT_SUFFIXES = ("社区居民委员会", "社区居委会", "居民委员会", "居委会", "社区")

# Match forms, best first: the official name, the same core with another suffix, a bare core, an old name.
OFFICIAL, VARIANT, SHORT, OLD = "official", "variant", "short", "old"
_FORM_RANK = {OFFICIAL: 0, VARIANT: 1, OLD: 2, SHORT: 3}


@dataclass(frozen=True, slots=True)
class NameMatch:
    """One reading of a written name: the current unit it denotes and how it was written."""

    unit: Division
    form: str  # OFFICIAL, VARIANT (other suffix), SHORT (suffix dropped) or OLD (historical name)
    old_name: str | None = None


def _strip_suffix(name: str, suffixes: Iterable[str]) -> tuple[str, str] | None:
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def _village_forms(name: str) -> tuple[str, list[str]]:
    """(display name, all written forms) of a village-level unit."""
    split = _strip_suffix(name, ("村民委员会", "村委会"))
    if split is None and name.endswith("村") and not name.endswith("新村"):
        split = (name[:-1], "村")
    if split is not None:
        core = split[0]
        if core.endswith("村") and len(core) >= 2:  # 宝同村村委会: the village is 宝同村
            core = core[:-1]
        return core + "村", [core + s for s in _VILLAGER_SUFFIXES]
    split = _strip_suffix(name, _RESIDENT_SUFFIXES)
    if split is not None:
        core, suffix = split
        display = core + ("社区" if suffix.startswith("社区") else "居委会")
        return display, [core + s for s in _RESIDENT_SUFFIXES]
    return name, [name]


def canonical_village_name(written: str) -> str:
    """Display form of a village name written with any committee suffix (宝同村委会 → 宝同村)."""
    return _village_forms(written)[0]


class Gazetteer:
    """Every county, town and village name of one city with its code, short forms and old names."""

    def __init__(self, divisions: Sequence[Division], history: PlaceHistory) -> None:
        cities = [d for d in divisions if d.level == CITY]
        if len(cities) != 1:
            raise GazetteerError(f"区划列表应恰有一个市级单位, 实有 {len(cities)} 个")
        self.city: Division = cities[0]
        self.province: str | None = _PROVINCES.get(self.city.code[:2])
        self._units: dict[str, Division] = {d.code: d for d in divisions}
        self._counties: dict[str, dict[str, NameMatch]] = {}
        self._towns: dict[str, dict[str, NameMatch]] = {}
        self._villages: dict[str, dict[str, NameMatch]] = {}
        self._village_display: dict[str, str] = {}
        self._moves: dict[tuple[str, str], TownMove] = {}
        for d in divisions:
            if d.level == DISTRICT:
                self._add(self._counties, d.name, NameMatch(d, OFFICIAL))
                split = _strip_suffix(d.name, _COUNTY_SUFFIXES)
                if split is not None and len(split[0]) >= 2:
                    self._add(self._counties, split[0], NameMatch(d, SHORT))
            elif d.level == TOWN:
                self._add(self._towns, d.name, NameMatch(d, OFFICIAL))
                split = _strip_suffix(d.name, _TOWN_SUFFIXES)
                if split is not None:
                    core = split[0]
                    for suffix in _TOWN_SUFFIXES:
                        self._add(self._towns, core + suffix, NameMatch(d, VARIANT))
                    if len(core) >= 2:
                        self._add(self._towns, core, NameMatch(d, SHORT))
            elif d.level == VILLAGE:
                display, forms = _village_forms(d.name)
                self._village_display[d.code] = display
                self._add(self._villages, d.name, NameMatch(d, OFFICIAL))
                for form in forms:
                    self._add(self._villages, form, NameMatch(d, VARIANT))
        self._apply_history(history)
        self._city_short = self.city.name[:-1] if self.city.name.endswith("市") else self.city.name
        # For each table, the lengths of its names by first character, longest first: a prefix
        # lookup tries only lengths some name starting there has (most characters start none).
        self._lengths: dict[int, dict[str, tuple[int, ...]]] = {}
        for t in (self._counties, self._towns, self._villages):
            by_first: dict[str, set[int]] = {}
            for k in t:
                if k:
                    by_first.setdefault(k[0], set()).add(len(k))
            self._lengths[id(t)] = {c: tuple(sorted(n, reverse=True)) for c, n in by_first.items()}

    @classmethod
    def from_divisions(
        cls, divisions: Sequence[Division], *, history: PlaceHistory | None = None
    ) -> Gazetteer:
        """Build from a division list; without `history`, the shipped old_place_names.toml."""
        return cls(divisions, load_place_history() if history is None else history)

    @staticmethod
    def _add(table: dict[str, dict[str, NameMatch]], key: str, match: NameMatch) -> None:
        by_code = table.setdefault(key, {})
        current = by_code.get(match.unit.code)
        if current is None or _FORM_RANK[match.form] < _FORM_RANK[current.form]:
            by_code[match.unit.code] = match

    def _apply_history(self, history: PlaceHistory) -> None:
        for c in history.counties:
            unit = self._units.get(c.current_code.ljust(12, "0"))
            if unit is None or unit.level != DISTRICT:
                raise GazetteerError(
                    f"{HISTORY_FILE}: 旧名 {c.old_name} 的 current_code {c.current_code} 不是已知的区县代码"
                )
            self._add(self._counties, c.old_name, NameMatch(unit, OLD, c.old_name))
        for t in history.towns:
            unit = self._units.get(t.current_code)
            if unit is None or unit.level != TOWN:
                raise GazetteerError(
                    f"{HISTORY_FILE}: 旧名 {t.old_name} 的 current_code {t.current_code} 不是已知的乡镇代码"
                )
            self._add(self._towns, t.old_name, NameMatch(unit, OLD, t.old_name))
        for mv in history.moves:
            for name in mv.towns:
                hits = [
                    m.unit
                    for m in self._towns.get(name, {}).values()
                    if m.form == OFFICIAL and m.unit.code.startswith(mv.to_county)
                ]
                if len(hits) != 1:
                    raise GazetteerError(
                        f"{HISTORY_FILE}: town_move 中的 {name} 在 {mv.to_county} 下找不到唯一的乡镇"
                    )
                self._moves[(mv.from_county, hits[0].code)] = mv

    # -- lookups ------------------------------------------------------------------------------

    def unit(self, code: str) -> Division | None:
        """The unit for a 6-, 9- or 12-digit code."""
        return self._units.get(code.ljust(12, "0"))

    def village_display_name(self, code: str) -> str | None:
        return self._village_display.get(code)

    def moved_town(self, from_county: str, town_code: str) -> TownMove | None:
        """The recorded move that took `town_code` out of county `from_county` (6 digits), if any."""
        return self._moves.get((from_county, town_code))

    @staticmethod
    def _unique(matches: Iterable[NameMatch], scope: str) -> NameMatch | None:
        found = [m for m in matches if m.unit.code.startswith(scope)]
        return found[0] if len(found) == 1 else None

    def _without_city(self, name: str) -> str:
        """`name` normalised, without a leading province and city (浙江省宁波市海曙区 → 海曙区)."""
        t = normalize_text(name)
        if self.province:
            for p in (self.province, self.province.removesuffix("省")):
                if t.startswith(p) and len(t) > len(p):
                    t = t[len(p) :]
                    break
        for c in (self.city.name, self._city_short):
            if t.startswith(c) and len(t) > len(c):
                return t[len(c) :]
        return t

    def resolve_county(self, name: str) -> NameMatch | None:
        """A county-level unit by any of its names (宁波市海曙区, 海曙区, 海曙, 江东区 …)."""
        return self._unique(self._counties.get(self._without_city(name), {}).values(), "")

    def resolve_town(self, name: str, *, county_code: str | None = None) -> NameMatch | None:
        """A town by name, unique within the county (6 digits) when given, else city-wide."""
        scope = (county_code or "")[:6]
        return self._unique(self._towns.get(normalize_text(name), {}).values(), scope)

    def resolve_village(
        self, name: str, *, town_code: str | None = None, county_code: str | None = None
    ) -> NameMatch | None:
        """A village by name, only when unique within the town (or county, or city when neither given)."""
        scope = (town_code or "")[:9] or (county_code or "")[:6]
        return self._unique(self._villages.get(normalize_text(name), {}).values(), scope)

    def _prefixes(
        self, table: dict[str, dict[str, NameMatch]], text: str, pos: int
    ) -> list[tuple[int, list[NameMatch]]]:
        """Names in `table` that start at text[pos], longest first."""
        out: list[tuple[int, list[NameMatch]]] = []
        if pos >= len(text):
            return out
        room = len(text) - pos
        for length in self._lengths[id(table)].get(text[pos], ()):
            if length > room:
                continue
            hit = table.get(text[pos : pos + length])
            if hit:
                out.append((length, list(hit.values())))
        return out


@functools.cache
def default_gazetteer() -> Gazetteer:
    """The shipped Ningbo 2023 gazetteer, built once per process."""
    return Gazetteer.from_divisions(load_divisions())


# ---------------------------------------------------------------------------------------------
# ParsedAddress
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """Components of one address (GA/T 2000.32 order). Codes are set only when the gazetteer confirmed
    the unit; names may be set without a code (unknown or ambiguous unit)."""

    source: str
    province: str | None = None
    city: str | None = None
    county: str | None = None
    county_code: str | None = None  # 6 digits
    town: str | None = None
    town_code: str | None = None  # 9 digits
    village: str | None = None
    village_code: str | None = None  # 12 digits
    group: str | None = None  # villagers' group, "3组"
    road: str | None = None
    door: str | None = None  # "88号", "88-90号"
    compound: str | None = None
    building: str | None = None  # "3幢"
    unit: str | None = None  # "2单元"
    floor: str | None = None  # "5层"
    room: str | None = None  # "501室"
    rest: str = ""
    confidence: float = 0.0
    old_names: tuple[str, ...] = ()  # historical names the input used (江东区, 奉化市 …)
    notes: tuple[str, ...] = ()  # village_ambiguous, town_outside_county …

    @property
    def used_old_name(self) -> bool:
        return bool(self.old_names)

    @property
    def normalized(self) -> str:
        """Canonical address string rebuilt from the components (without `rest`)."""
        parts = (
            self.province,
            self.city,
            self.county,
            self.town,
            self.village,
            self.group,
            self.road,
            self.door,
            self.compound,
            self.building,
            self.unit,
            self.floor,
            self.room,
        )
        return "".join(p for p in parts if p)

    def key(self) -> str:
        """Standard-address key (DOMAIN.md §4): village + road + door + building + unit + room.

        The village is its 12-digit code; when the code is unknown, its name prefixed by the most
        specific known code ("330212105/河头村"), or that code alone when no village was named, so that
        equal road names in different towns do not collide.
        """
        if self.village_code:
            place = self.village_code
        else:
            scope = self.town_code or self.county_code or ""
            place = f"{scope}/{self.village}" if self.village else scope
        return "|".join(
            (
                place,
                self.road or "",
                self.door or "",
                self.building or "",
                self.unit or "",
                self.room or "",
            )
        )


# ---------------------------------------------------------------------------------------------
# parse_address
# ---------------------------------------------------------------------------------------------

# Characters after a short name that show it is the start of a longer proper name (海曙路, 北仑港 …).
_NAME_CONTINUATION = frozenset("路街道巷弄桥江河港湖山大东南西北")
_ROAD_START = frozenset("路街巷弄桥")
_ROAD_SUFFIX = r"(?:大道|大街|路|街(?!道)|巷|弄)"
# A road directly followed by a number: longest name, no second 路 inside (后街路, 江东北路).
_ROAD_THEN_NUMBER = re.compile(rf"([^0-9A-Z路]{{1,14}}?{_ROAD_SUFFIX})(?=[0-9])")
# Otherwise the shortest name ending in a road suffix (天童南路万达广场 → 天童南路).
_ROAD_ANY = re.compile(rf"([^0-9A-Z]{{1,14}}?{_ROAD_SUFFIX})")
_LANE = re.compile(r"([0-9]+)(弄|巷)")
_COMPOUND_SUFFIX = re.compile(
    r".*(?:小区|花园|公寓|新村|家园|大厦|广场|公馆|山庄|别墅|中心|大楼|苑|园|府|城|庭|邸|湾|居|阁|坊|院)"
)
_BARE_COMPOUND = frozenset(("小区", "新村", "公寓", "大厦", "花园", "大楼", "家园", "广场"))
_OFFICE_COMPOUND = ("大厦", "大楼", "中心", "广场")
_SUB_AREA = re.compile(r"[东南西北中][区苑]|[0-9]+期")
_LANDMARK_START = ("近", "靠近", "旁", "对面", "附近", "往", "朝", "距")
_NUMBER = r"[0-9]+[A-Z]?"
_TOKEN = re.compile(
    rf"""
    (?P<bur>{_NUMBER}-[0-9]+-{_NUMBER})(?:室|户)?
    |(?P<hao>{_NUMBER}(?:-{_NUMBER})?)号(?!楼)
    |(?P<bld>{_NUMBER}|[A-Z]{{1,2}})(?:号楼|幢|栋|座)
    |(?P<pair>{_NUMBER}-{_NUMBER})(?:室|户)?
    |(?P<unit>[0-9]+)(?:单元|单)
    |(?P<layer>[0-9]+)层
    |(?P<lou>{_NUMBER})楼
    |(?P<room>{_NUMBER})(?:室|户)
    |(?P<phase>[0-9]+)期
    |(?P<group>[0-9]+)组
    |(?P<zone>[A-Z]{{1,2}})区
    |(?P<bare>{_NUMBER})(?![0-9])
    """,
    re.VERBOSE,
)
_CHUNK = re.compile(r"[^0-9A-Z]+|[A-Z]+")
_GENERIC_CITY = re.compile(r"[^0-9A-Z-]{2,4}?市")
_NON_NUMERIC = re.compile(r"[^0-9A-Z-]+")
_GENERIC_VILLAGE_SUFFIXES = (
    "社区居民委员会",
    "社区居委会",
    "村民委员会",
    "居民委员会",
    "村村委会",
    "村委会",
    "居委会",
    "社区",
    "村",
)
_NOT_A_COUNTY = ("小", "社", "园", "景", "校", "片", "生活", "开发", "保税", "城", "街")
_ROADISH = re.compile(r"[路街巷弄]")


class _Parse:
    """Mutable state while one address is parsed."""

    def __init__(self, source: str, gazetteer: Gazetteer | None) -> None:
        self.source = source
        self.text = normalize_text(source)
        self.pos = 0
        self.gaz = gazetteer
        self.f: dict[str, str | None] = {}
        self.county_unit: Division | None = None
        self.town_unit: Division | None = None
        self.village_unit: Division | None = None
        self.rest: list[str] = []
        self.old_names: list[str] = []
        self.notes: list[str] = []

    def at(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def next_char(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    # -- admin units with a gazetteer -----------------------------------------------------------

    def province_and_city(self) -> None:
        gaz = self.gaz
        for name in _PROVINCES.values():
            if self.at(name):
                self.f["province"] = name
                self.pos += len(name)
                if gaz is not None and name != gaz.province:
                    self.notes.append("other_province")
                break
        else:
            if gaz is not None and gaz.province and gaz.province.endswith("省"):
                short = gaz.province[:-1]
                if self.at(short) and self.text.startswith(gaz._city_short, self.pos + len(short)):
                    self.f["province"] = gaz.province
                    self.pos += len(short)
        if gaz is None:
            m = _GENERIC_CITY.match(self.text, self.pos)
            if m:
                start = self.pos
                self.pos = m.end()
                self.generic_county()
                if self.f.get("county"):
                    self.f["city"] = m.group(0)
                else:
                    self.pos = start
            return
        if self.at(gaz.city.name):
            self.f["city"] = gaz.city.name
            self.pos += len(gaz.city.name)
        elif self.at(gaz._city_short):
            after = self.pos + len(gaz._city_short)
            if gaz._prefixes(gaz._counties, self.text, after) or gaz._prefixes(
                gaz._towns, self.text, after
            ):
                self.f["city"] = gaz.city.name
                self.pos = after

    def _village_follows(self, gaz: Gazetteer, pos: int, scope: str) -> bool:
        return any(
            m.unit.code.startswith(scope)
            for _, ms in gaz._prefixes(gaz._villages, self.text, pos)
            for m in ms
        )

    def _town_follows(self, gaz: Gazetteer, pos: int, scope: str) -> bool:
        return any(
            m.unit.code.startswith(scope) and m.form != SHORT
            for _, ms in gaz._prefixes(gaz._towns, self.text, pos)
            for m in ms
        )

    def county(self, gaz: Gazetteer) -> None:
        for length, matches in gaz._prefixes(gaz._counties, self.text, self.pos):
            if len(matches) != 1:
                continue
            m = matches[0]
            after = self.pos + length
            if m.form == SHORT:
                scope = m.unit.code[:6]
                followed = self._town_follows(gaz, after, scope) or self._village_follows(
                    gaz, after, scope
                )
                loose_ok = "city" in self.f and self.next_char(length) not in _NAME_CONTINUATION
                if not (followed or loose_ok):
                    continue
            self.county_unit = m.unit
            if m.form == OLD and m.old_name:
                self.old_names.append(m.old_name)
            self.pos = after
            return

    def town(self, gaz: Gazetteer) -> None:
        county6 = self.county_unit.code[:6] if self.county_unit else ""
        for length, matches in gaz._prefixes(gaz._towns, self.text, self.pos):
            written = self.text[self.pos : self.pos + length]
            after = self.pos + length
            chosen: NameMatch | None = None
            moved: TownMove | None = None
            outside = False
            if county6:
                inside = [m for m in matches if m.unit.code.startswith(county6)]
                if len(inside) == 1:
                    chosen = inside[0]
                elif not inside:
                    moves = [
                        (m, mv)
                        for m in matches
                        if (mv := gaz.moved_town(county6, m.unit.code)) is not None
                    ]
                    if len(moves) == 1:
                        chosen, moved = moves[0]
                    elif len(matches) == 1 and matches[0].form != SHORT:
                        chosen, outside = matches[0], True
            elif len(matches) == 1:
                chosen = matches[0]
            if chosen is None:
                continue
            if chosen.form == SHORT:
                ok = after == len(self.text) or self._village_follows(
                    gaz, after, chosen.unit.code[:9]
                )
                if not ok:
                    continue
            if moved is not None and self.county_unit is not None:
                self.old_names.append(self.county_unit.name + written)
            elif chosen.form == OLD and chosen.old_name:
                self.old_names.append(chosen.old_name)
            elif chosen.form == VARIANT:
                self.notes.append("town_suffix_variant")
            if outside:
                self.notes.append("town_outside_county")
            self.town_unit = chosen.unit
            self.county_unit = gaz.unit(chosen.unit.code[:6])
            self.pos = after
            return

    def village(self, gaz: Gazetteer) -> None:
        if self.town_unit is not None:
            scope = self.town_unit.code[:9]
        elif self.county_unit is not None:
            scope = self.county_unit.code[:6]
        else:
            scope = ""
        for length, matches in gaz._prefixes(gaz._villages, self.text, self.pos):
            if self.next_char(length) in _ROAD_START:  # 南门村路: a road named after a village
                continue
            written = self.text[self.pos : self.pos + length]
            inside = {m.unit.code: m for m in matches if m.unit.code.startswith(scope)}
            if len(inside) == 1:
                unit = next(iter(inside.values())).unit
                self.village_unit = unit
                self.town_unit = gaz.unit(unit.code[:9])
                self.county_unit = gaz.unit(unit.code[:6])
            else:
                self.f["village"] = canonical_village_name(written)
                self.notes.append("village_ambiguous" if inside else "village_outside_town")
            self.pos += length
            return

    # -- admin units by pattern (no gazetteer, or a unit the gazetteer does not know) -----------

    def _generic(
        self, suffixes: Sequence[str], max_core: int, accept: Callable[[str, str, int], bool]
    ) -> tuple[str, str] | None:
        """The shortest (core, suffix) at pos with a core of at least 2 characters that `accept`s."""
        text = self.text
        for n in range(2, max_core + 1):
            core = text[self.pos : self.pos + n]
            if len(core) < n or not _NON_NUMERIC.fullmatch(core):
                return None
            for suffix in suffixes:
                end = self.pos + n + len(suffix)
                if text.startswith(suffix, self.pos + n) and accept(core, suffix, end):
                    return core, suffix
        return None

    def generic_county(self) -> None:
        def accept(core: str, suffix: str, end: int) -> bool:
            return not (
                core.endswith(_NOT_A_COUNTY)
                or _ROADISH.search(core)
                or self.text.startswith(_TOWN_SUFFIXES, end)  # 三七市镇 is a town
            )

        found = self._generic(_COUNTY_SUFFIXES, 4, accept)
        if found is not None:
            self.f["county"] = found[0] + found[1]
            self.pos += len(self.f["county"] or "")

    def generic_town(self) -> None:
        def accept(core: str, suffix: str, end: int) -> bool:
            return not _ROADISH.search(core)

        found = self._generic(_TOWN_SUFFIXES, 5, accept)
        if found is not None:
            self.f["town"] = found[0] + found[1]
            self.pos += len(self.f["town"] or "")

    def generic_village(self) -> None:
        def accept(core: str, suffix: str, end: int) -> bool:
            return not (
                _ROADISH.search(core)
                or (suffix == "村" and core.endswith("新"))
                or _COMPOUND_SUFFIX.match(core)
                or self.text.startswith(("委", "民委"), end)  # the longer suffix forms come first
                or self.text[end : end + 1] in _ROAD_START
            )

        found = self._generic(_GENERIC_VILLAGE_SUFFIXES, 8, accept)
        if found is not None:
            written = found[0] + found[1]
            self.f["village"] = canonical_village_name(written)
            self.pos += len(written)

    def admin(self) -> None:
        self.province_and_city()
        gaz = self.gaz
        if gaz is not None:
            self.county(gaz)
        if self.county_unit is None and "county" not in self.f:
            self.generic_county()
        if gaz is not None:
            self.town(gaz)
        if self.town_unit is None and "town" not in self.f:
            self.generic_town()
        if gaz is not None:
            self.village(gaz)
        if self.village_unit is None and "village" not in self.f:
            self.generic_village()

    # -- road, door, compound, building, unit, floor, room -------------------------------------

    def street(self) -> None:
        text = self.text
        f = self.f
        while self.pos < len(text):
            i = self.pos
            if not any(f.get(k) for k in ("road", "door", "compound", "building", "unit", "room")):
                m = _ROAD_THEN_NUMBER.match(text, i) or _ROAD_ANY.match(text, i)
                if m and not m.group(1).startswith(_LANDMARK_START):
                    road, self.pos = m.group(1), m.end()
                    lane = _LANE.match(text, self.pos)
                    if lane and _TOKEN.match(
                        text, lane.end()
                    ):  # 中马路123弄5号: the lane is the road
                        road, self.pos = road + lane.group(0), lane.end()
                    f["road"] = road
                    continue
            tok = _TOKEN.match(text, i)
            if tok is not None:
                self.token(tok)
                self.pos = tok.end()
                continue
            chunk = _CHUNK.match(text, i)
            if chunk is None:  # a lone "-" cannot survive normalisation; guard anyway
                self.rest.append(text[i])
                self.pos = i + 1
                continue
            self.chunk(chunk.group(0), chunk.end())
            self.pos = chunk.end()

    def token(self, tok: re.Match[str]) -> None:
        f = self.f
        kind = tok.lastgroup
        value = tok.group(kind) if kind else tok.group(0)
        placed = False
        if kind == "bur" and not f.get("building"):
            b, u, r = value.split("-")
            f["building"], f["unit"], f["room"] = b + "幢", u + "单元", r + "室"
            placed = True
        elif kind == "hao":
            if not any(f.get(k) for k in ("door", "compound", "building", "unit")):
                f["door"] = value + "号"
                placed = True
            elif not f.get("building") and "-" not in value:
                f["building"] = value + "幢"
                placed = True
        elif kind == "bld" and not f.get("building"):
            f["building"] = value + "幢"
            placed = True
        elif kind == "pair":
            a, b = value.split("-")
            if f.get("road") and not any(f.get(k) for k in ("door", "compound", "building")):
                f["door"] = value + "号"
                placed = True
            elif not f.get("building") and not f.get("unit"):
                f["building"], f["room"] = a + "幢", b + "室"
                placed = True
            elif not f.get("unit") and not f.get("room"):
                f["unit"], f["room"] = a + "单元", b + "室"
                placed = True
        elif kind == "unit" and not f.get("unit"):
            f["unit"] = value + "单元"
            placed = True
        elif kind == "layer" and not f.get("floor"):
            f["floor"] = value + "层"
            placed = True
        elif kind == "lou":
            placed = self.lou(value, tok.end())
        elif kind == "room" and not f.get("room"):
            f["room"] = value + "室"
            placed = True
        elif kind == "phase" and f.get("compound") and not f.get("building"):
            f["compound"] = f"{f['compound']}{value}期"
            placed = True
        elif kind == "group" and not f.get("group") and not f.get("road"):
            f["group"] = value + "组"
            placed = True
        elif kind == "zone" and f.get("compound") and not f.get("building"):
            f["compound"] = f"{f['compound']}{value}区"
            placed = True
        elif kind == "bare":
            if f.get("road") and not any(f.get(k) for k in ("door", "compound", "building")):
                f["door"] = value + "号"
                placed = True
            elif not f.get("room") and any(
                f.get(k) for k in ("door", "compound", "building", "unit", "floor")
            ):
                f["room"] = value + "室"
                placed = True
        if not placed:
            self.rest.append(tok.group(0))

    def lou(self, value: str, end: int) -> bool:
        f = self.f
        nxt = _TOKEN.match(self.text, end)
        next_room = nxt is not None and nxt.lastgroup in ("room", "bare")
        room_on_floor = (
            next_room
            and nxt is not None
            and (nxt.group(nxt.lastgroup or 0) or "").startswith(value)
            and len(nxt.group(nxt.lastgroup or 0) or "") > len(value)
        )
        office = (f.get("compound") or "").endswith(_OFFICE_COMPOUND)
        if f.get("building") or room_on_floor or office:
            if f.get("floor"):
                return False
            f["floor"] = value + "层"
            return True
        f["building"] = value + "幢"
        return True

    def chunk(self, chunk: str, end: int) -> None:
        f = self.f
        if chunk.startswith(_LANDMARK_START):
            self.rest.append(chunk)
            return
        if not f.get("compound") and not f.get("building"):
            if f.get("road") and chunk in _BARE_COMPOUND and not f.get("door"):
                # "四明路小区": the road name is the compound's name.
                f["compound"], f["road"] = f"{f['road']}{chunk}", None
                return
            m = _COMPOUND_SUFFIX.match(chunk)
            if m is not None:
                f["compound"] = chunk[: m.end()]
                left = chunk[m.end() :]
                if left:
                    road = _ROAD_ANY.fullmatch(left)
                    if road is not None and not f.get("road"):
                        f["road"] = left
                    elif _SUB_AREA.fullmatch(left):
                        f["compound"] = chunk
                    else:
                        self.rest.append(left)
                return
            nxt = _TOKEN.match(self.text, end)
            if nxt is not None and nxt.lastgroup in ("bld", "hao", "bur", "lou"):
                f["compound"] = chunk
                return
        if f.get("compound") and not f.get("building") and _SUB_AREA.fullmatch(chunk):
            f["compound"] = f"{f['compound']}{chunk}"
            return
        self.rest.append(chunk)

    # -- result ----------------------------------------------------------------------------------

    def result(self) -> ParsedAddress:
        f = self.f
        gaz = self.gaz
        county = f.get("county")
        town = f.get("town")
        village = f.get("village")
        province, city = f.get("province"), f.get("city")
        county_code = town_code = village_code = None
        if self.county_unit is not None and gaz is not None:
            county, county_code = self.county_unit.name, self.county_unit.code[:6]
            province = province if "other_province" in self.notes else gaz.province
            city = gaz.city.name
        if self.town_unit is not None:
            town, town_code = self.town_unit.name, self.town_unit.code[:9]
        if self.village_unit is not None and gaz is not None:
            village_code = self.village_unit.code
            village = gaz.village_display_name(village_code) or self.village_unit.name
        draft = ParsedAddress(
            source=self.source,
            province=province,
            city=city,
            county=county,
            county_code=county_code,
            town=town,
            town_code=town_code,
            village=village,
            village_code=village_code,
            group=f.get("group"),
            road=f.get("road"),
            door=f.get("door"),
            compound=f.get("compound"),
            building=f.get("building"),
            unit=f.get("unit"),
            floor=f.get("floor"),
            room=f.get("room"),
            rest="".join(self.rest),
            old_names=tuple(dict.fromkeys(self.old_names)),
            notes=tuple(dict.fromkeys(self.notes)),
        )
        return replace(draft, confidence=_confidence(draft, len(self.text)))


def _confidence(p: ParsedAddress, text_len: int) -> float:
    if text_len == 0:
        return 0.0
    w = CONFIDENCE_WEIGHTS
    score = w["consumed"] * (text_len - len(p.rest)) / text_len
    for name, code in (
        ("county", p.county_code),
        ("town", p.town_code),
        ("village", p.village_code),
    ):
        if code:
            score += w[name]
        elif getattr(p, name):
            score += w[name] * 0.5
    if (
        (p.road and p.door)
        or (p.compound and p.building)
        or ((p.village_code or p.village) and p.door)
    ):
        score += w["locator"]
    elif p.road or p.compound or p.door or p.building:
        score += w["locator"] * 0.5
    for note in p.notes:
        score -= CONFIDENCE_PENALTIES.get(note, 0.0)
    return round(min(1.0, max(0.0, score)), 3)


def parse_address(s: str, *, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """Parse a free-text address into components.

    With a gazetteer (e.g. `default_gazetteer()`), admin units are confirmed and coded, short and old
    names resolved, and province/city filled in from the county; without one, admin units are read by
    suffix patterns only and carry no codes (lower confidence).
    """
    state = _Parse(s, gazetteer)
    state.admin()
    state.street()
    return state.result()


def parse_normal_address(text: str, *, gazetteer: Gazetteer | None = None) -> ParsedAddress:
    """`parse_address` of a text the caller knows to be in normal form (`normalize_text(text) ==
    text`, e.g. checked by `normal_form_patterns`), without normalising it again: for bulk callers
    that parse millions of stored, already normalised addresses."""
    state = _Parse("", gazetteer)
    state.source = state.text = text
    state.admin()
    state.street()
    return state.result()


# ---------------------------------------------------------------------------------------------
# address_similarity
# ---------------------------------------------------------------------------------------------

_DOOR_NUMBERS = re.compile(r"([0-9]+)[A-Z]?(?:-([0-9]+)[A-Z]?)?号?")


def _door_range(door: str) -> tuple[int, int] | None:
    m = _DOOR_NUMBERS.fullmatch(door)
    if m is None:
        return None
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) else low
    return (low, high) if high >= low else (low, low)


def _door_score(a: str, b: str) -> float:
    if a == b:
        return 1.0
    ra, rb = _door_range(a), _door_range(b)
    if ra is None or rb is None:
        return 0.0
    if ra[0] <= rb[1] and rb[0] <= ra[1]:
        return DOOR_OVERLAP
    gap = min(abs(ra[0] - rb[1]), abs(rb[0] - ra[1]))
    return DOOR_ADJACENT if gap <= 2 else 0.0


def address_similarity(a: ParsedAddress, b: ParsedAddress) -> float:
    """Similarity in [0, 1] of two parsed addresses, for fuzzy matching within the same road.

    Weighted per SIMILARITY_WEIGHTS; a component both sides lack counts as agreement, one side lacking it
    as ONE_SIDE_MISSING. Door numbers score exact 1, overlapping ranges DOOR_OVERLAP, |Δ| ≤ 2 (the next
    door on the same side) DOOR_ADJACENT. Different counties, villages or roads cap the score at
    MISMATCH_CAP, so only addresses in the same place and road can score high.
    """
    va: str | None
    vb: str | None
    if a.village_code and b.village_code:
        va, vb = a.village_code, b.village_code
    else:
        va = canonical_village_name(a.village) if a.village else None
        vb = canonical_village_name(b.village) if b.village else None
    pairs: dict[str, tuple[str | None, str | None]] = {
        "village": (va, vb),
        "road": (a.road, b.road),
        "door": (a.door, b.door),
        "compound": (a.compound, b.compound),
        "building": (a.building, b.building),
        "unit": (a.unit, b.unit),
        "room": (a.room, b.room),
    }
    score = 0.0
    for name, (x, y) in pairs.items():
        if x is None and y is None:
            part = 1.0
        elif x is None or y is None:
            part = ONE_SIDE_MISSING
        elif name == "door":
            part = _door_score(x, y)
        elif name == "compound" and x != y:
            part = COMPOUND_CONTAINED if (x in y or y in x) else 0.0
        else:
            part = 1.0 if x == y else 0.0
        score += SIMILARITY_WEIGHTS[name] * part
    mismatch = (
        (a.county_code and b.county_code and a.county_code != b.county_code)
        or (va and vb and va != vb)
        or (a.road and b.road and a.road != b.road)
    )
    if mismatch:
        score = min(score, MISMATCH_CAP)
    return round(score, 4)
