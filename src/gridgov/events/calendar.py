"""Working time for event deadlines: Chinese working days, office hours and allowances."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_OFFICE_HOURS = "08:30-12:00,13:30-17:30"
OVERRIDES_RESOURCE = "data/calendar_overrides.toml"
_SHIPPED_NAME = "gridgov/events/" + OVERRIDES_RESOURCE

_US = 1_000_000  # arithmetic runs in whole microseconds, so sub-second starts stay exact
_PERIOD = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_ALLOWANCE = re.compile(r"([1-9][0-9]{0,3})(wd|wh|h|m)")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ALLOWANCE_FORMS = (
    "3wd (工作日), 8wh (工作小时), 4h (小时, 自然时间), 30m (分钟, 自然时间); 数字为 1–9999"
)
_OFFICE_EXAMPLE = '"08:30-12:00,13:30-17:30"'


def _hhmm(second: int) -> str:
    return f"{second // 3600:02d}:{second % 3600 // 60:02d}"


def _period_text(period: tuple[int, int]) -> str:
    return f"{_hhmm(period[0])}-{_hhmm(period[1])}"


def _check_periods(periods: tuple[tuple[int, int], ...], text: str) -> None:
    if not periods:
        raise ValueError(f"办公时间 {text!r} 没有时段: 应如 {_OFFICE_EXAMPLE}")
    previous: tuple[int, int] | None = None
    for start, end in periods:
        if not (0 <= start < 86400 and 0 < end <= 86400):
            raise ValueError(
                f"办公时间 {text!r} 中的时段 {_period_text((start, end))} 超出一天 (00:00–24:00)"
            )
        if end <= start:
            raise ValueError(
                f"办公时间 {text!r} 中的时段 {_period_text((start, end))} 无效: 结束时间须晚于开始时间"
            )
        if previous is not None and start < previous[1]:
            raise ValueError(
                f"办公时间 {text!r} 中的时段 {_period_text((start, end))} 与前一时段 "
                f"{_period_text(previous)} 重叠或顺序颠倒: 各时段须按先后排列且互不重叠"
            )
        previous = (start, end)


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """Office periods of a working day, as (start, end) seconds after local midnight."""

    periods: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        _check_periods(self.periods, ",".join(_period_text(p) for p in self.periods))

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        """Parse "08:30-12:00,13:30-17:30"; full-width digits and punctuation are accepted."""
        normalized = unicodedata.normalize("NFKC", text).strip()
        if not normalized:
            raise ValueError(f"办公时间为空: 应如 {_OFFICE_EXAMPLE}")
        periods: list[tuple[int, int]] = []
        for raw in normalized.split(","):
            part = raw.strip()
            m = _PERIOD.fullmatch(part)
            if m is None:
                raise ValueError(
                    f"办公时间 {text!r} 中的时段 {part!r} 格式无效: 应为 HH:MM-HH:MM, "
                    f"多个时段用逗号分隔, 如 {_OFFICE_EXAMPLE}"
                )
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            for hour, minute, is_end in ((h1, m1, False), (h2, m2, True)):
                if minute > 59 or hour > 24 or (hour == 24 and (minute or not is_end)):
                    raise ValueError(
                        f"办公时间 {text!r} 中的时刻 {hour:02d}:{minute:02d} 无效: "
                        "小时须为 00–23 (结束时间可为 24:00), 分钟须为 00–59"
                    )
            periods.append((h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60))
        _check_periods(tuple(periods), text)
        return cls(tuple(periods))

    @property
    def day_seconds(self) -> int:
        """Office seconds in one working day (27000 for 08:30-12:00,13:30-17:30)."""
        return sum(end - start for start, end in self.periods)

    def __str__(self) -> str:
        return ",".join(_period_text(p) for p in self.periods)


@dataclass(frozen=True, slots=True)
class Allowance:
    """An allowed time: `seconds` of office time (working days/hours) or of plain clock time."""

    seconds: int
    office: bool
    text: str

    @classmethod
    def parse(cls, spec: str, day_seconds: int) -> Allowance:
        """Parse "3wd", "8wh" (office time) or "4h", "30m" (clock time)."""
        if day_seconds <= 0:
            raise ValueError(f"一个工作日的办公秒数须为正数, 收到 {day_seconds}")
        m = _ALLOWANCE.fullmatch(unicodedata.normalize("NFKC", spec).strip().lower())
        if m is None:
            raise ValueError(f"时限 {spec!r} 无效; 可用: {_ALLOWANCE_FORMS}")
        n, unit = int(m.group(1)), m.group(2)
        seconds = {"wd": n * day_seconds, "wh": n * 3600, "h": n * 3600, "m": n * 60}[unit]
        return cls(seconds=seconds, office=unit in ("wd", "wh"), text=f"{n}{unit}")

    def label(self) -> str:
        """Chinese text for the UI: 3个工作日, 8个工作小时, 4小时, 30分钟."""
        m = _ALLOWANCE.fullmatch(self.text)
        if m is None:
            raise ValueError(f"时限 {self.text!r} 无效; 可用: {_ALLOWANCE_FORMS}")
        unit = {"wd": "个工作日", "wh": "个工作小时", "h": "小时", "m": "分钟"}[m.group(2)]
        return f"{m.group(1)}{unit}"


# ------------------------------------------------------------------------------ working days


@lru_cache(maxsize=64)
def _library_year(year: int) -> bytes | None:
    """chinese-calendar's workday flags for every day of `year`, or None if it lacks the year.

    Built once per process: the library checks its year range on every call (about 30 µs)."""
    if not 1 <= year <= 9999:
        return None
    first = date(year, 1, 1)
    try:
        chinese_calendar.is_workday(first)
    except NotImplementedError:
        return None
    days = date(year, 12, 31).toordinal() - first.toordinal() + 1
    return bytes(bool(chinese_calendar.is_workday(first + timedelta(days=i))) for i in range(days))


class _Year(NamedTuple):
    first: int  # ordinal of 1 January
    flags: bytes  # 1 = working day, by day of year
    cum: list[int]  # cum[i] = working days among the year's first i days
    total: int


class WorkCalendar:
    """Working days (overrides, then chinese-calendar, then Monday–Friday) and office time.

    Office periods are wall-clock times in `tz`; Asia/Shanghai has no clock changes, and the
    arithmetic assumes none fall inside office periods."""

    def __init__(
        self,
        office_hours: OfficeHours,
        overrides: Mapping[date, bool] | None = None,
        tz: ZoneInfo = SHANGHAI,
        *,
        known_years: Iterable[int] | None = None,
    ) -> None:
        """`overrides`: True = working day, False = holiday, winning over everything else.

        `known_years`: years whose full holiday table `overrides` carries (what `known_year`
        reports); by default the years of the override dates."""
        self.office_hours = office_hours
        self.tz = tz
        table = dict(overrides or {})
        self.overrides: Mapping[date, bool] = MappingProxyType(table)
        self.known_years: frozenset[int] = frozenset(
            {d.year for d in table} if known_years is None else known_years
        )
        self._periods = tuple((a * _US, b * _US) for a, b in office_hours.periods)
        self._day_us = office_hours.day_seconds * _US
        self._years: dict[int, _Year] = {}

    @classmethod
    def load(
        cls, office_hours: str = DEFAULT_OFFICE_HOURS, overrides_file: Path | None = None
    ) -> WorkCalendar:
        """The calendar with the shipped override table, or with `overrides_file` instead."""
        overrides, years = read_overrides(overrides_file)
        return cls(OfficeHours.parse(office_hours), overrides, known_years=years)

    def known_year(self, year: int) -> bool:
        """Whether the year's holidays are known (override table or chinese-calendar)."""
        return year in self.known_years or _library_year(year) is not None

    def is_workday(self, d: date) -> bool:
        y = self._year(d.year)
        return y.flags[d.toordinal() - y.first] == 1

    def _year(self, year: int) -> _Year:
        hit = self._years.get(year)
        if hit is not None:
            return hit
        first = date(year, 1, 1)
        days = date(year, 12, 31).toordinal() - first.toordinal() + 1
        library = _library_year(year)
        flags = bytearray(days)
        for i in range(days):
            if library is not None:
                flags[i] = library[i]
            else:
                flags[i] = (first + timedelta(days=i)).weekday() < 5
        for d, workday in self.overrides.items():
            if d.year == year:
                flags[d.toordinal() - first.toordinal()] = workday
        cum = [0] * (days + 1)
        for i in range(days):
            cum[i + 1] = cum[i] + flags[i]
        built = _Year(first.toordinal(), bytes(flags), cum, cum[-1])
        self._years[year] = built
        return built

    def _nth_workday_after(self, d: date, k: int) -> date:
        """The k-th (k >= 1) working day strictly after `d`, by whole-year tables."""
        ordinal = d.toordinal() + 1
        year = d.year if ordinal <= date(d.year, 12, 31).toordinal() else d.year + 1
        while True:
            if year > 9999:
                raise OverflowError("工作时间超出可表示的日期范围 (9999 年)")
            y = self._year(year)
            done = y.cum[ordinal - y.first]
            if k <= y.total - done:
                return date.fromordinal(y.first + bisect_left(y.cum, done + k) - 1)
            k -= y.total - done
            year += 1
            ordinal = y.first + len(y.flags)

    def _workdays_in(self, a: date, b: date) -> int:
        """Working days in [a, b)."""
        total = 0
        ordinal, end = a.toordinal(), b.toordinal()
        for year in range(a.year, b.year + 1):
            y = self._year(year)
            stop = min(end, y.first + len(y.flags))
            if stop > ordinal:
                total += y.cum[stop - y.first] - y.cum[ordinal - y.first]
            ordinal = max(ordinal, stop)
        return total

    # ------------------------------------------------------------------------- office time

    def _local(self, dt: datetime, name: str) -> datetime:
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError(f"工作时间计算需要带时区的时间, {name}={dt.isoformat()} 没有时区")
        return dt.astimezone(self.tz)

    def _worked_before(self, t: int) -> int:
        """Office microseconds of a working day elapsed by `t` microseconds after midnight."""
        return sum(max(0, min(end, t) - start) for start, end in self._periods)

    def _instant_after(self, worked: int) -> int:
        """Microsecond of the day at which `worked` (0 < worked <= day) office time is done."""
        for start, end in self._periods:
            if worked <= end - start:
                return start + worked
            worked -= end - start
        raise AssertionError("worked exceeds a working day")  # pragma: no cover

    def _at(self, d: date, t: int) -> datetime:
        local = datetime.combine(d, time(0), tzinfo=self.tz) + timedelta(microseconds=t)
        return local.astimezone(UTC)

    def add(self, start: datetime, seconds: int, *, office: bool = True) -> datetime:
        """The earliest instant by which `seconds` of working time have elapsed since `start`.

        office=False counts plain clock time. With office time, a start outside office hours
        counts from the next office period, and a deadline that fills a period exactly is that
        period's end (12:00), not the next period's start. The result is aware UTC; zero
        seconds gives `start` itself (in UTC)."""
        if seconds < 0:
            raise ValueError(f"时长须为非负秒数, 收到 {seconds}")
        local = self._local(start, "start")
        if not office or seconds == 0:
            return local.astimezone(UTC) + timedelta(seconds=seconds)
        day = local.date()
        need = seconds * _US
        if self.is_workday(day):
            done = self._worked_before(_time_us(local))
            if need <= self._day_us - done:
                return self._at(day, self._instant_after(done + need))
            need -= self._day_us - done
        whole, rest = divmod(need, self._day_us)
        if rest == 0:
            whole, rest = whole - 1, self._day_us
        last = self._nth_workday_after(day, whole + 1)
        return self._at(last, self._instant_after(rest))

    def between(self, start: datetime, end: datetime, *, office: bool = True) -> int:
        """Whole seconds of working time in [start, end); 0 when end <= start."""
        a, b = self._local(start, "start"), self._local(end, "end")
        if end <= start:
            return 0
        if not office:
            return (end - start) // timedelta(seconds=1)
        da, db = a.date(), b.date()
        if da == db:
            if not self.is_workday(da):
                return 0
            worked = self._worked_before(_time_us(b)) - self._worked_before(_time_us(a))
        else:
            worked = self._day_us * self._workdays_in(da + timedelta(days=1), db)
            if self.is_workday(da):
                worked += self._day_us - self._worked_before(_time_us(a))
            if self.is_workday(db):
                worked += self._worked_before(_time_us(b))
        return worked // _US


def _time_us(local: datetime) -> int:
    return ((local.hour * 60 + local.minute) * 60 + local.second) * _US + local.microsecond


# ------------------------------------------------------------------------------ override file


def read_overrides(path: Path | None = None) -> tuple[dict[date, bool], frozenset[int]]:
    """Holidays (False) and make-up workdays (True) from an override file, and its years.

    `path` None reads the file shipped in the package."""
    if path is None:
        name = _SHIPPED_NAME
        raw = resources.files("gridgov.events").joinpath(OVERRIDES_RESOURCE).read_bytes()
    else:
        name = str(path)
        raw = Path(path).read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"节假日覆盖文件 {name} 不是 UTF-8 编码") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"节假日覆盖文件 {name} 不是有效的 TOML: {exc}") from None
    overrides: dict[date, bool] = {}
    years: set[int] = set()
    for key, table in data.items():
        where = f"节假日覆盖文件 {name}: [{key}]"
        if not re.fullmatch(r"\d{4}", key) or int(key) < 1:
            raise ValueError(f"{where} 不是年份: 每个表以四位年份命名, 如 [2027]")
        if not isinstance(table, dict):
            raise ValueError(f"{where} 须为表 (含 holidays、workdays、source), 而不是单个值")
        year = int(key)
        unknown = sorted(set(table) - {"holidays", "workdays", "source"})
        if unknown:
            raise ValueError(f"{where} 中的键 {unknown[0]} 未知: 可用 holidays、workdays、source")
        source = table.get("source")
        if not isinstance(source, str) or not source.strip():
            raise ValueError(
                f"{where}.source 缺失或为空: 须写明国务院办公厅通知的标题和文号, 以便核对"
            )
        if "holidays" not in table:
            raise ValueError(f"{where}.holidays 缺失: 须列出该年全部放假日期")
        found: dict[date, bool] = {}
        for field, workday in (("holidays", False), ("workdays", True)):
            for i, item in enumerate(_as_list(table.get(field, []), f"{where}.{field}")):
                d = _as_date(item, f"{where}.{field}[{i}]")
                if d.year != year:
                    raise ValueError(f"{where}.{field}[{i}] = {d.isoformat()} 不在 {year} 年")
                if found.get(d, workday) != workday:
                    raise ValueError(f"{where}: {d.isoformat()} 同时出现在 holidays 和 workdays 中")
                found[d] = workday
        overrides.update(found)
        years.add(year)
    return overrides, frozenset(years)


def _as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f'{where} 须为日期列表, 如 ["2027-01-01", "2027-02-06"]')
    return value


def _as_date(item: Any, where: str) -> date:
    if isinstance(item, date) and not isinstance(item, datetime):
        return item
    if isinstance(item, str) and _ISO_DATE.fullmatch(item.strip()):
        try:
            return date.fromisoformat(item.strip())
        except ValueError:
            pass
    raise ValueError(f'{where} = {item!r} 不是有效日期: 应为 "YYYY-MM-DD"')
