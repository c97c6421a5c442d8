"""Working time: Chinese working days (holidays and make-up days) and office hours, for deadlines."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_SPEC = re.compile(r"^([1-9][0-9]{0,3})(wd|wh|h|m)$")


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """Office periods of a working day, as seconds after local midnight."""

    periods: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        periods: list[tuple[int, int]] = []
        for part in text.split(","):
            m = _PERIOD.match(part)
            if not m:
                raise ValueError(f"办公时间 {part.strip()!r} 格式无效, 应如 08:30-12:00")
            h1, m1, h2, m2 = (int(x) for x in m.groups())
            if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
                raise ValueError(f"办公时间 {part.strip()!r} 的时刻无效")
            a, b = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
            if b <= a or b > 86400:
                raise ValueError(f"办公时间 {part.strip()!r}: 结束须晚于开始")
            if periods and a < periods[-1][1]:
                raise ValueError(f"办公时间 {text!r}: 各时段须按时间先后排列且不重叠")
            periods.append((a, b))
        if not periods:
            raise ValueError("办公时间不能为空")
        return cls(tuple(periods))

    @property
    def day_seconds(self) -> int:
        return sum(b - a for a, b in self.periods)

    def worked_before(self, second: int) -> int:
        """Office seconds of a working day elapsed by `second` after midnight."""
        return sum(max(0, min(b, second) - a) for a, b in self.periods)

    def instant_after(self, worked: int) -> int:
        """The second of the day at which `worked` office seconds (0 < worked <= day) are done."""
        for a, b in self.periods:
            if worked <= b - a:
                return a + worked
            worked -= b - a
        return self.periods[-1][1]


@dataclass(frozen=True, slots=True)
class Allowance:
    """An allowed time: `seconds` of office time (working days/hours) or of plain clock time."""

    seconds: int
    office: bool
    text: str

    @classmethod
    def parse(cls, spec: str, day_seconds: int) -> Allowance:
        m = _SPEC.match(spec.strip())
        if not m:
            raise ValueError(
                f"时限 {spec!r} 无效; 可用: 3wd (工作日), 8wh (工作小时), 4h (小时), 30m (分钟)"
            )
        n, unit = int(m.group(1)), m.group(2)
        seconds = {"wd": n * day_seconds, "wh": n * 3600, "h": n * 3600, "m": n * 60}[unit]
        return cls(seconds, unit in ("wd", "wh"), spec.strip())

    def label(self) -> str:
        n, unit = (
            int(self.text[:-2] if self.text.endswith(("wd", "wh")) else self.text[:-1]),
            self.text,
        )
        if unit.endswith("wd"):
            return f"{n}个工作日"
        if unit.endswith("wh"):
            return f"{n}个工作小时"
        if unit.endswith("h"):
            return f"{n}小时"
        return f"{n}分钟"


class WorkCalendar:
    """Working days from an override table, then chinese-calendar, then Monday–Friday."""

    def __init__(
        self,
        office_hours: OfficeHours,
        overrides: Mapping[date, bool] | None = None,
        override_years: frozenset[int] = frozenset(),
        tz: ZoneInfo = SHANGHAI,
    ) -> None:
        self.office_hours = office_hours
        self.overrides = dict(overrides or {})
        self.override_years = override_years | {d.year for d in self.overrides}
        self.tz = tz
        self._days: dict[date, bool] = {}

    @classmethod
    def load(
        cls, office_hours: str = "08:30-12:00,13:30-17:30", overrides_file: Path | None = None
    ) -> WorkCalendar:
        hours = OfficeHours.parse(office_hours)
        overrides, years = load_overrides(overrides_file)
        return cls(hours, overrides, years)

    def known_year(self, year: int) -> bool:
        if year in self.override_years:
            return True
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            return False
        return True

    def is_workday(self, d: date) -> bool:
        hit = self._days.get(d)
        if hit is not None:
            return hit
        if d in self.overrides:
            value = self.overrides[d]
        else:
            try:
                value = bool(chinese_calendar.is_workday(d))
            except NotImplementedError:
                value = d.weekday() < 5
        self._days[d] = value
        return value

    # ---------------------------------------------------------------------------- arithmetic

    def _local(self, dt: datetime) -> datetime:
        if dt.tzinfo is None:
            raise ValueError("working-time arithmetic needs an aware datetime")
        return dt.astimezone(self.tz)

    def _at(self, d: date, second: int) -> datetime:
        base = datetime.combine(d, time(0), tzinfo=self.tz)
        return (base + timedelta(seconds=second)).astimezone(UTC)

    def add(self, start: datetime, seconds: int, *, office: bool = True) -> datetime:
        """The instant at which `seconds` of working (office) or clock time have passed.

        Office-time results are whole seconds; a deadline that lands on the end of a period is
        that end (12:00), not the start of the next one."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        if not office:
            return self._local(start).astimezone(UTC) + timedelta(seconds=seconds)
        if seconds == 0:
            return start.astimezone(UTC)
        local = self._local(start)
        day = local.date()
        sec = local.hour * 3600 + local.minute * 60 + local.second
        hours = self.office_hours
        if self.is_workday(day):
            left_today = hours.day_seconds - hours.worked_before(sec)
            if seconds <= left_today:
                done = hours.worked_before(sec) + seconds
                return self._at(day, hours.instant_after(done))
            seconds -= left_today
        while True:
            day += timedelta(days=1)
            if not self.is_workday(day):
                continue
            if seconds <= hours.day_seconds:
                return self._at(day, hours.instant_after(seconds))
            seconds -= hours.day_seconds

    def between(self, start: datetime, end: datetime, *, office: bool = True) -> int:
        """Working (office) or clock seconds in [start, end)."""
        if end <= start:
            return 0
        if not office:
            return int((end - start).total_seconds())
        a, b = self._local(start), self._local(end)
        hours = self.office_hours

        def sec(x: datetime) -> int:
            return x.hour * 3600 + x.minute * 60 + x.second

        if a.date() == b.date():
            if not self.is_workday(a.date()):
                return 0
            return hours.worked_before(sec(b)) - hours.worked_before(sec(a))
        total = 0
        if self.is_workday(a.date()):
            total += hours.day_seconds - hours.worked_before(sec(a))
        d = a.date() + timedelta(days=1)
        while d < b.date():
            if self.is_workday(d):
                total += hours.day_seconds
            d += timedelta(days=1)
        if self.is_workday(b.date()):
            total += hours.worked_before(sec(b))
        return total


@lru_cache(maxsize=4)
def load_overrides(path: Path | None) -> tuple[dict[date, bool], frozenset[int]]:
    """Holidays (False) and make-up workdays (True) for years chinese-calendar lacks."""
    if path is None:
        text = (
            resources.files("gridgov.events")
            .joinpath("data/calendar_overrides.toml")
            .read_text("utf-8")
        )
        source = "内置 calendar_overrides.toml"
    else:
        text = Path(path).read_text("utf-8")
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"节假日表 {source} 不是有效的 TOML: {exc}") from None
    out: dict[date, bool] = {}
    years: set[int] = set()
    for year, table in data.items():
        if not year.isdigit() or not isinstance(table, dict):
            raise ValueError(f"节假日表 {source}: [{year}] 须为年份表, 如 [2027]")
        years.add(int(year))
        for key, value in (("holidays", False), ("workdays", True)):
            for item in table.get(key, []):
                try:
                    d = date.fromisoformat(str(item))
                except ValueError:
                    raise ValueError(
                        f"节假日表 {source}: [{year}] {key} 中的日期 {item!r} 无效"
                    ) from None
                if d.year != int(year):
                    raise ValueError(
                        f"节假日表 {source}: [{year}] {key} 中的 {item} 不属于 {year} 年"
                    )
                out[d] = value
    return out, frozenset(years)
