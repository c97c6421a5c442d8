"""Working-time calendar: holidays, make-up workdays, office hours, overrides, allowances."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.events.calendar import (
    SHANGHAI,
    Allowance,
    OfficeHours,
    WorkCalendar,
    read_overrides,
)

HOURS = OfficeHours.parse("08:30-12:00,13:30-17:30")
CAL = WorkCalendar(HOURS)  # chinese-calendar only, independent of the shipped override file
DAY = 27000  # 7.5 office hours
H = 3600


def bj(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=SHANGHAI)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.toml"
    path.write_text(text, "utf-8")
    return path


# --------------------------------------------------------------------------- deadlines

DEADLINES = [
    # weekends and office periods (2026-11-27 is a Friday)
    (bj(2026, 11, 27, 16), DAY, bj(2026, 11, 30, 16), "Friday afternoon + 1 wd → Monday"),
    (bj(2026, 11, 27, 17), H, bj(2026, 11, 30, 9), "half an hour Friday, half Monday"),
    (bj(2026, 11, 28, 10), H, bj(2026, 11, 30, 9, 30), "Saturday: counting starts Monday"),
    (bj(2026, 11, 29, 23, 59), 1800, bj(2026, 11, 30, 9), "Sunday night"),
    (bj(2026, 11, 30, 8, 30), 12600, bj(2026, 11, 30, 12), "fills the morning: 12:00, not 13:30"),
    (bj(2026, 11, 30, 8, 30), 12601, bj(2026, 11, 30, 13, 30, 1), "one second into the afternoon"),
    (bj(2026, 11, 30, 12, 30), 1800, bj(2026, 11, 30, 14), "starts in the lunch break"),
    (bj(2026, 11, 30, 12), 1, bj(2026, 11, 30, 13, 30, 1), "starts at the end of the morning"),
    (bj(2026, 11, 30, 20), H, bj(2026, 12, 1, 9, 30), "starts at night"),
    (bj(2026, 11, 30, 6), DAY, bj(2026, 11, 30, 17, 30), "before office hours: that whole day"),
    (bj(2026, 11, 30, 17, 30), DAY, bj(2026, 12, 1, 17, 30), "at closing time: the next day"),
    (bj(2026, 11, 30, 17, 30), 1, bj(2026, 12, 1, 8, 30, 1), "closing time + 1 s"),
    (bj(2026, 11, 30, 9), 2 * DAY, bj(2026, 12, 2, 9), "two days, same clock time"),
    (bj(2026, 12, 4, 13, 30), 14400, bj(2026, 12, 4, 17, 30), "fills Friday afternoon exactly"),
    (bj(2026, 11, 27, 10), 15 * DAY, bj(2026, 12, 18, 10), "15 wd (illegal building)"),
    (
        bj(2026, 11, 30, 11, 59, 59, 500000),
        1,
        bj(2026, 11, 30, 13, 30, 0, 500000),
        "sub-second start keeps its fraction across lunch",
    ),
    # Spring Festival 2026: holiday Feb 15 (Sun)–23 (Mon), make-up Sat Feb 14 and Sat Feb 28
    (bj(2026, 2, 13, 16), DAY, bj(2026, 2, 14, 16), "make-up Saturday Feb 14 counts"),
    (bj(2026, 2, 13, 16), 3 * DAY, bj(2026, 2, 25, 16), "across the Spring Festival"),
    (bj(2026, 2, 14, 17), H, bj(2026, 2, 24, 9), "last make-up day, then the holiday"),
    (bj(2026, 2, 18, 10), H, bj(2026, 2, 24, 9, 30), "reported during the holiday"),
    (bj(2026, 2, 27, 17, 30), H, bj(2026, 2, 28, 9, 30), "make-up Saturday Feb 28 counts"),
    (bj(2026, 2, 28, 16), DAY, bj(2026, 3, 2, 16), "after Feb 28, Sunday does not"),
    # National Day 2026: Mid-Autumn Sep 25–27, holiday Oct 1–7, make-up Sun Sep 20, Sat Oct 10
    (bj(2026, 9, 30, 15), DAY, bj(2026, 10, 8, 15), "afternoon before National Day → Oct 8"),
    (bj(2026, 9, 30, 15), 3 * DAY, bj(2026, 10, 10, 15), "Oct 8, 9 and make-up Sat Oct 10"),
    (bj(2026, 9, 19, 10), H, bj(2026, 9, 20, 9, 30), "make-up Sunday Sep 20 counts"),
    (bj(2026, 9, 24, 16), 2 * DAY, bj(2026, 9, 29, 16), "across Mid-Autumn"),
    (bj(2026, 10, 3, 9), H, bj(2026, 10, 8, 9, 30), "reported during National Day"),
    (bj(2026, 10, 9, 17), H, bj(2026, 10, 10, 9), "Friday Oct 9 into make-up Saturday"),
    (bj(2026, 10, 10, 17), H, bj(2026, 10, 12, 9), "then Sunday Oct 11 does not count"),
    # 2025: Spring Festival Jan 28–Feb 4 (make-up Sun Jan 26, Sat Feb 8), Labour Day May 1–5,
    # National Day with Mid-Autumn Oct 1–8 (make-up Sun Sep 28, Sat Oct 11)
    (bj(2025, 1, 24, 16), DAY, bj(2025, 1, 26, 16), "2025 make-up Sunday Jan 26"),
    (bj(2025, 1, 27, 16), DAY, bj(2025, 2, 5, 16), "2025 across the Spring Festival"),
    (bj(2025, 2, 7, 17, 30), H, bj(2025, 2, 8, 9, 30), "2025 make-up Saturday Feb 8"),
    (bj(2025, 4, 30, 16), DAY, bj(2025, 5, 6, 16), "2025 across Labour Day"),
    (bj(2025, 9, 26, 17), H, bj(2025, 9, 28, 9), "2025 make-up Sunday Sep 28"),
    (bj(2025, 9, 30, 15), DAY, bj(2025, 10, 9, 15), "2025 afternoon before National Day"),
    (bj(2025, 10, 9, 9), 3 * DAY, bj(2025, 10, 13, 9), "2025 make-up Saturday Oct 11"),
    # start given in UTC: 2026-11-30 01:00Z is 09:00 in Shanghai
    (datetime(2026, 11, 30, 1, tzinfo=UTC), H, bj(2026, 11, 30, 10), "UTC input"),
]


@pytest.mark.parametrize(("start", "seconds", "deadline", "why"), DEADLINES)
def test_deadlines(start: datetime, seconds: int, deadline: datetime, why: str) -> None:
    got = CAL.add(start, seconds)
    assert got == deadline, why
    assert got.tzinfo is UTC
    assert CAL.between(start, got) == seconds


def test_library_tables_are_the_ones_we_assume() -> None:
    spring_2026 = [date(2026, 2, d) for d in range(15, 24)]
    national_2026 = [date(2026, 10, d) for d in range(1, 8)]
    spring_2025 = [date(2025, 1, d) for d in range(28, 32)] + [
        date(2025, 2, d) for d in (1, 2, 3, 4)
    ]
    national_2025 = [date(2025, 10, d) for d in range(1, 9)]
    for holiday in spring_2026 + national_2026 + spring_2025 + national_2025:
        assert not CAL.is_workday(holiday), holiday
    make_up = [
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 9, 20),
        date(2026, 10, 10),
        date(2025, 1, 26),
        date(2025, 2, 8),
        date(2025, 9, 28),
        date(2025, 10, 11),
    ]
    assert all(d.weekday() >= 5 and CAL.is_workday(d) for d in make_up)
    assert CAL.is_workday(date(2026, 10, 8)) and CAL.is_workday(date(2026, 10, 9))
    assert not CAL.is_workday(date(2026, 10, 11))  # the Sunday after the make-up Saturday


def test_every_day_of_2025_and_2026_matches_chinese_calendar() -> None:
    d = date(2025, 1, 1)
    while d.year < 2027:
        assert CAL.is_workday(d) == chinese_calendar.is_workday(d), d
        d += timedelta(days=1)


def test_zero_and_clock_time() -> None:
    night = bj(2026, 10, 1, 23)  # a holiday night
    assert CAL.add(night, 0) == night and CAL.add(night, 0).tzinfo is UTC
    assert CAL.add(night, 0, office=False) == night
    assert CAL.add(night, 7200, office=False) == bj(2026, 10, 2, 1)
    assert CAL.add(bj(2026, 11, 27, 17), 4 * H, office=False) == bj(2026, 11, 27, 21)
    assert CAL.between(night, bj(2026, 10, 2, 1), office=False) == 7200
    assert CAL.between(night, bj(2026, 10, 2, 1), office=True) == 0
    assert CAL.between(bj(2026, 1, 1, 0, 0, 0, 1), bj(2026, 1, 1, 0, 0, 1), office=False) == 0
    assert CAL.between(bj(2026, 1, 2), bj(2026, 1, 1), office=False) == 0


def test_negative_seconds_are_refused() -> None:
    with pytest.raises(ValueError, match="非负"):
        CAL.add(bj(2026, 11, 30, 9), -1)


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        (bj(2026, 12, 1, 10), bj(2026, 12, 1, 9), 0),
        (bj(2026, 12, 1, 10), bj(2026, 12, 1, 10), 0),
        (bj(2026, 11, 28, 9), bj(2026, 11, 29, 18), 0),  # weekend
        (bj(2026, 11, 30, 12), bj(2026, 11, 30, 13, 30), 0),  # lunch
        (bj(2026, 11, 30, 11), bj(2026, 11, 30, 14), 5400),
        (bj(2026, 11, 30, 0), bj(2026, 12, 1, 0), DAY),
        (bj(2026, 11, 30, 18), bj(2026, 12, 1, 8), 0),  # night
        (bj(2026, 11, 30, 9), bj(2026, 11, 30, 9, 0, 0, 999999), 0),  # floors to whole seconds
        (bj(2026, 9, 30, 15), bj(2026, 10, 8, 15), DAY),
        (bj(2026, 2, 13), bj(2026, 2, 25), 3 * DAY),  # Feb 13, 14, 24
        (bj(2025, 12, 31, 12), bj(2026, 1, 5, 12), 14400 + DAY + 12600),  # Jan 1–3 off, Sun 4 on
        (bj(2025, 1, 1), bj(2027, 1, 1), (248 + 248) * DAY),
    ],
)
def test_between(start: datetime, end: datetime, seconds: int) -> None:
    assert CAL.between(start, end) == seconds


def test_working_days_per_year() -> None:
    for year in (2025, 2026):
        days = sum(
            CAL.is_workday(date(year, 1, 1) + timedelta(days=i))
            for i in range(365)  # neither is a leap year
        )
        # 365 days − 104 weekend days − 13 statutory holidays (13 since 2025); make-up days net out
        assert days == 248
        assert CAL.between(bj(year, 1, 1), bj(year + 1, 1, 1)) == 248 * DAY


def test_naive_times_are_refused() -> None:
    naive = datetime(2026, 11, 30, 9, 0)  # noqa: DTZ001
    with pytest.raises(ValueError, match=r"时区.*start=2026-11-30T09:00:00"):
        CAL.add(naive, 60)
    with pytest.raises(ValueError, match="时区"):
        CAL.add(naive, 60, office=False)
    with pytest.raises(ValueError, match="end="):
        CAL.between(bj(2026, 11, 30, 9), naive)


def test_custom_office_hours_and_time_zone() -> None:
    cal = WorkCalendar(OfficeHours.parse("09:00-17:00"), tz=SHANGHAI)
    assert cal.add(bj(2026, 11, 27, 16), 2 * H) == bj(2026, 11, 30, 10)
    assert cal.add(bj(2026, 11, 30, 9), 8 * H) == bj(2026, 11, 30, 17)
    allday = WorkCalendar(OfficeHours.parse("00:00-24:00"))
    assert allday.add(bj(2026, 11, 30, 12), 12 * H) == bj(2026, 12, 1, 0)
    assert allday.add(bj(2026, 11, 27, 12), 13 * H) == bj(2026, 11, 30, 1)
    assert allday.between(bj(2026, 11, 27, 12), bj(2026, 11, 30, 1)) == 13 * H


# ---------------------------------------------------------------- overrides and unknown years


def test_unknown_year_falls_back_to_monday_to_friday() -> None:
    assert not CAL.known_year(2099) and not CAL.known_year(2003)
    assert CAL.known_year(2004) and CAL.known_year(2025) and CAL.known_year(2026)
    assert CAL.is_workday(date(2099, 10, 1))  # a Thursday: National Day unknown
    assert not CAL.is_workday(date(2099, 10, 3))  # Saturday
    assert CAL.add(bj(2099, 9, 30, 17), H) == bj(2099, 10, 1, 9)


def test_override_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[2099]\nholidays = ["2099-10-01", 2099-10-02]\nworkdays = ["2099-10-03"]\n'
        'source = "test notice"\n',
    )
    cal = WorkCalendar.load("08:30-12:00,13:30-17:30", path)
    assert cal.known_year(2099) and not cal.known_year(2098)
    assert not cal.is_workday(date(2099, 10, 1)) and not cal.is_workday(date(2099, 10, 2))
    assert cal.is_workday(date(2099, 10, 3))  # make-up Saturday
    assert not cal.is_workday(date(2099, 10, 4))  # plain Sunday
    assert cal.add(bj(2099, 9, 30, 17), H) == bj(2099, 10, 3, 9)
    assert cal.add(bj(2099, 9, 30, 17), H + DAY) == bj(2099, 10, 5, 9)
    assert cal.between(bj(2099, 9, 30), bj(2099, 10, 6)) == 3 * DAY  # Sep 30, Oct 3, Oct 5


def test_override_wins_over_chinese_calendar(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[2026]\nholidays = ["2026-12-01"]\nworkdays = ["2026-12-05"]\nsource = "local order"\n',
    )
    cal = WorkCalendar.load(overrides_file=path)
    assert not cal.is_workday(date(2026, 12, 1)) and cal.is_workday(date(2026, 12, 5))
    assert cal.is_workday(date(2026, 10, 10))  # the rest still comes from chinese-calendar
    assert cal.add(bj(2026, 11, 30, 17), H) == bj(2026, 12, 2, 9)
    assert cal.add(bj(2026, 12, 4, 17), H) == bj(2026, 12, 5, 9)
    assert CAL.add(bj(2026, 11, 30, 17), H) == bj(2026, 12, 1, 9)  # other calendars unaffected


def test_overrides_given_directly() -> None:
    overrides = {date(2099, 1, 2): False}
    cal = WorkCalendar(HOURS, overrides)
    assert cal.known_year(2099) and not cal.is_workday(date(2099, 1, 2))
    assert not WorkCalendar(HOURS, overrides, known_years=()).known_year(2099)
    assert WorkCalendar(HOURS, known_years=[2100]).known_year(2100)


def test_shipped_override_file_loads() -> None:
    overrides, years = read_overrides()
    assert all(d.year in years for d in overrides)
    cal = WorkCalendar.load()
    assert cal.office_hours.day_seconds == DAY
    assert cal.add(bj(2026, 9, 30, 15), DAY) == bj(2026, 10, 8, 15)
    assert not cal.known_year(2099)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "不是有效的 TOML"),
        ('[abc]\nsource = "x"\nholidays = []\n', r"\[abc\] 不是年份"),
        ('"2099" = 1\n', r"\[2099\] 须为表"),
        (
            '[2099]\nsource = "x"\nholidays = ["2099-13-01"]\n',
            r"\[2099\]\.holidays\[0\].*不是有效日期",
        ),
        ('[2099]\nsource = "x"\nholidays = ["99-1-1"]\n', r"\[2099\]\.holidays\[0\]"),
        (
            '[2099]\nsource = "x"\nholidays = ["2098-01-01"]\n',
            r"\[2099\]\.holidays\[0\].*不在 2099 年",
        ),
        ('[2099]\nsource = "x"\nholidays = "2099-01-01"\n', r"\[2099\]\.holidays 须为日期列表"),
        ('[2099]\nsource = "x"\nholidays = []\nworkdays = [1]\n', r"\[2099\]\.workdays\[0\]"),
        ('[2099]\nholidays = ["2099-01-01"]\n', r"\[2099\]\.source 缺失"),
        ('[2099]\nsource = ""\nholidays = []\n', r"\[2099\]\.source"),
        ('[2099]\nsource = "x"\n', r"\[2099\]\.holidays 缺失"),
        ('[2099]\nsource = "x"\nholiday = []\n', "键 holiday 未知"),
        (
            '[2099]\nsource = "x"\nholidays = ["2099-01-03"]\nworkdays = ["2099-01-03"]\n',
            "同时出现在 holidays 和 workdays",
        ),
    ],
)
def test_bad_override_files_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        WorkCalendar.load(overrides_file=path)
    assert str(path) in str(info.value)


def test_missing_override_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        read_overrides(tmp_path / "nope.toml")


# ------------------------------------------------------------------------- office hours


@pytest.mark.parametrize(
    ("text", "periods", "day_seconds"),
    [
        ("08:30-12:00,13:30-17:30", ((30600, 43200), (48600, 63000)), 27000),
        (" 8:30 - 12:00 , 13:30-17:30 ", ((30600, 43200), (48600, 63000)), 27000),
        ("０８：３０－１２：００，１３：３０－１７：３０", ((30600, 43200), (48600, 63000)), 27000),
        ("09:00-17:00", ((32400, 61200),), 28800),
        ("00:00-24:00", ((0, 86400),), 86400),
        ("08:00-12:00,12:00-13:00", ((28800, 43200), (43200, 46800)), 18000),
    ],
)
def test_office_hours_parse(
    text: str, periods: tuple[tuple[int, int], ...], day_seconds: int
) -> None:
    hours = OfficeHours.parse(text)
    assert hours.periods == periods
    assert hours.day_seconds == day_seconds
    assert OfficeHours.parse(str(hours)) == hours


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "办公时间为空"),
        ("   ", "办公时间为空"),
        ("8:30", "'8:30' 格式无效"),
        ("a-b", "格式无效"),
        ("08:30-12:00;13:30-17:30", "格式无效"),
        ("08:30-12:00,", "'' 格式无效"),
        ("09:00-08:00", "09:00-08:00 无效: 结束时间须晚于开始时间"),
        ("09:00-09:00", "结束时间须晚于开始时间"),
        ("08:30-12:00,11:00-13:00", "11:00-13:00 与前一时段 08:30-12:00 重叠或顺序颠倒"),
        ("13:30-17:30,08:30-12:00", "08:30-12:00 与前一时段 13:30-17:30 重叠或顺序颠倒"),
        ("25:00-26:00", "时刻 25:00 无效"),
        ("08:60-09:00", "时刻 08:60 无效"),
        ("24:00-24:00", "时刻 24:00 无效"),
        ("23:00-24:30", "时刻 24:30 无效"),
    ],
)
def test_bad_office_hours(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OfficeHours.parse(text)


def test_office_hours_checked_when_built_directly() -> None:
    with pytest.raises(ValueError, match="重叠"):
        OfficeHours(((30600, 43200), (40000, 50000)))
    with pytest.raises(ValueError, match="没有时段"):
        OfficeHours(())


# --------------------------------------------------------------------------- allowances


@pytest.mark.parametrize(
    ("spec", "allowance", "label"),
    [
        ("3wd", Allowance(3 * DAY, True, "3wd"), "3个工作日"),
        ("15wd", Allowance(15 * DAY, True, "15wd"), "15个工作日"),
        ("8wh", Allowance(8 * H, True, "8wh"), "8个工作小时"),
        ("4h", Allowance(4 * H, False, "4h"), "4小时"),
        ("30m", Allowance(1800, False, "30m"), "30分钟"),
        (" 2WD ", Allowance(2 * DAY, True, "2wd"), "2个工作日"),
        ("9999m", Allowance(9999 * 60, False, "9999m"), "9999分钟"),
    ],
)
def test_allowance_parse(spec: str, allowance: Allowance, label: str) -> None:
    got = Allowance.parse(spec, DAY)
    assert got == allowance
    assert got.label() == label


def test_allowance_working_days_follow_office_hours() -> None:
    day = OfficeHours.parse("09:00-12:00,14:00-18:00").day_seconds
    assert Allowance.parse("3wd", day) == Allowance(3 * 7 * H, True, "3wd")
    assert Allowance.parse("3wh", day) == Allowance(3 * H, True, "3wh")


@pytest.mark.parametrize(
    "spec", ["", "3d", "0wd", "wd", "1.5wd", "-1h", "3 wd", "10000wd", "3wdx", "h4", "030m"]
)
def test_bad_allowance(spec: str) -> None:
    with pytest.raises(ValueError, match=f"时限 {spec!r} 无效.*3wd.*8wh.*4h.*30m"):
        Allowance.parse(spec, DAY)


def test_allowance_label_refuses_unknown_text() -> None:
    with pytest.raises(ValueError, match="'3d'"):
        Allowance(3, True, "3d").label()


# ------------------------------------------------------------------------------ properties

starts = st.datetimes(
    min_value=datetime(2024, 12, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
    max_value=datetime(2026, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([SHANGHAI, UTC]),
)
amounts = st.integers(min_value=0, max_value=25 * DAY)


def reference_add(cal: WorkCalendar, start: datetime, seconds: int) -> datetime:
    """Day by day over office periods: slow and plain, to check the arithmetic against."""
    local = start.astimezone(cal.tz)
    day = local.date()
    left = timedelta(seconds=seconds)
    while True:
        if cal.is_workday(day):
            for a, b in cal.office_hours.periods:
                begin = max(bj(day.year, day.month, day.day) + timedelta(seconds=a), local)
                end = bj(day.year, day.month, day.day) + timedelta(seconds=b)
                if end > begin:
                    if left <= end - begin:
                        return (begin + left).astimezone(UTC)
                    left -= end - begin
        day += timedelta(days=1)


@settings(max_examples=300, deadline=None)
@given(start=starts, seconds=st.integers(min_value=1, max_value=25 * DAY))
def test_add_matches_reference(start: datetime, seconds: int) -> None:
    assert CAL.add(start, seconds) == reference_add(CAL, start, seconds)


@settings(max_examples=300, deadline=None)
@given(start=starts, seconds=amounts)
def test_add_and_between_round_trip(start: datetime, seconds: int) -> None:
    end = CAL.add(start, seconds)
    assert CAL.between(start, end) == seconds
    assert CAL.between(start, CAL.add(start, seconds, office=False), office=False) == seconds
    assert end >= start


@settings(max_examples=300, deadline=None)
@given(start=starts, seconds=st.integers(min_value=1, max_value=25 * DAY))
def test_deadline_is_inside_or_at_end_of_an_office_period(start: datetime, seconds: int) -> None:
    local = CAL.add(start, seconds).astimezone(SHANGHAI)
    second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    assert CAL.is_workday(local.date())
    assert any(a < second <= b for a, b in HOURS.periods)


@settings(max_examples=200, deadline=None)
@given(start=starts, seconds=amounts, later=st.integers(min_value=0, max_value=10 * DAY))
def test_monotonic(start: datetime, seconds: int, later: int) -> None:
    assert CAL.add(start, seconds + 1) > CAL.add(start, seconds)
    moved = start + timedelta(seconds=later)
    assert CAL.add(moved, seconds) >= CAL.add(start, seconds)
    assert CAL.between(start, moved + timedelta(days=1)) >= CAL.between(start, moved)
    assert CAL.between(moved, moved + timedelta(days=30)) <= CAL.between(
        start, moved + timedelta(days=30)
    )


@settings(max_examples=200, deadline=None)
@given(start=starts, a=amounts, b=amounts)
def test_add_is_additive(start: datetime, a: int, b: int) -> None:
    assert CAL.add(CAL.add(start, a), b) == CAL.add(start, a + b)
