"""Working-time arithmetic: weekends, the Spring Festival, National Day, make-up workdays, overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.events.workcal import SHANGHAI, Allowance, OfficeHours, WorkCalendar, load_overrides

CAL = WorkCalendar(OfficeHours.parse("08:30-12:00,13:30-17:30"))
DAY = 27000  # 7.5 office hours


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "seconds", "deadline", "why"),
    [
        (bj(2026, 11, 27, 16, 0), DAY, bj(2026, 11, 30, 16, 0), "Friday afternoon + 1 wd → Monday"),
        (
            bj(2026, 11, 28, 10, 0),
            3600,
            bj(2026, 11, 30, 9, 30),
            "Saturday: counting starts Monday",
        ),
        (
            bj(2026, 11, 30, 8, 30),
            12600,
            bj(2026, 11, 30, 12, 0),
            "ends exactly at the lunch break",
        ),
        (bj(2026, 11, 30, 12, 30), 1800, bj(2026, 11, 30, 14, 0), "starts in the lunch break"),
        (bj(2026, 11, 30, 20, 0), 3600, bj(2026, 12, 1, 9, 30), "starts at night"),
        (bj(2026, 11, 30, 6, 0), DAY, bj(2026, 11, 30, 17, 30), "before office hours: a whole day"),
        # The afternoon before National Day 2026 (holiday Oct 1–7, Mid-Autumn Sep 25–27).
        (bj(2026, 9, 30, 15, 0), DAY, bj(2026, 10, 8, 15, 0), "afternoon before National Day"),
        # Oct 10 2026 is a Saturday make-up workday.
        (bj(2026, 10, 9, 17, 0), 3600, bj(2026, 10, 10, 9, 0), "make-up Saturday counts"),
        (bj(2026, 10, 10, 17, 0), 3600, bj(2026, 10, 12, 9, 0), "then Sunday does not"),
        # Spring Festival 2026: Feb 14 (Sat) make-up workday, Feb 15–23 holiday.
        (bj(2026, 2, 13, 16, 0), 3 * DAY, bj(2026, 2, 25, 16, 0), "across the Spring Festival"),
        (bj(2026, 2, 18, 10, 0), 3600, bj(2026, 2, 24, 9, 30), "reported during the holiday"),
        (bj(2026, 9, 24, 16, 0), 2 * DAY, bj(2026, 9, 29, 16, 0), "across Mid-Autumn"),
        (
            bj(2026, 11, 27, 10, 0),
            15 * DAY,
            bj(2026, 12, 18, 10, 0),
            "15 working days (illegal building)",
        ),
    ],
)
def test_deadlines(start: datetime, seconds: int, deadline: datetime, why: str) -> None:
    got = CAL.add(start, seconds)
    assert got == deadline.astimezone(UTC), why
    assert got.tzinfo is UTC
    assert CAL.between(start, got) == seconds


def test_library_tables_are_the_ones_we_assume() -> None:
    assert CAL.is_workday(date(2026, 2, 14)) and CAL.is_workday(date(2026, 2, 28))
    assert not any(CAL.is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert not any(CAL.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert CAL.is_workday(date(2026, 9, 20)) and CAL.is_workday(date(2026, 10, 10))
    assert CAL.known_year(2026) and CAL.known_year(2004)


def test_clock_time_ignores_office_hours() -> None:
    start = bj(2026, 10, 1, 23, 0)  # a holiday night
    assert CAL.add(start, 7200, office=False) == bj(2026, 10, 2, 1, 0).astimezone(UTC)
    assert CAL.between(start, bj(2026, 10, 2, 1, 0), office=False) == 7200
    assert CAL.add(start, 0) == start.astimezone(UTC)


def test_between_edge_cases() -> None:
    assert CAL.between(bj(2026, 12, 1, 10, 0), bj(2026, 12, 1, 9, 0)) == 0
    assert CAL.between(bj(2026, 11, 28, 9, 0), bj(2026, 11, 29, 18, 0)) == 0  # weekend
    assert CAL.between(bj(2026, 11, 30, 0, 0), bj(2026, 12, 1, 0, 0)) == DAY
    assert CAL.between(bj(2026, 9, 30, 15, 0), bj(2026, 10, 8, 15, 0)) == DAY


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CAL.add(datetime(2026, 11, 30, 9, 0), 60)  # noqa: DTZ001


def test_unknown_years_fall_back_to_weekdays(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert not CAL.known_year(2099)
    assert CAL.is_workday(date(2099, 10, 1))  # a Thursday, no table
    assert not CAL.is_workday(date(2099, 10, 3))  # Saturday
    path = tmp_path / "cal.toml"
    path.write_text(
        '[2099]\nsource = "test"\nholidays = ["2099-10-01"]\nworkdays = ["2099-10-03"]\n', "utf-8"
    )
    cal = WorkCalendar.load("08:30-12:00,13:30-17:30", path)
    assert cal.known_year(2099)
    assert not cal.is_workday(date(2099, 10, 1)) and cal.is_workday(date(2099, 10, 3))
    assert cal.add(bj(2099, 9, 30, 17, 0), 3600) == bj(2099, 10, 2, 9, 0).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[2099]\nholidays = ["2099-13-01"]\n', "无效"),
        ('[2099]\nholidays = ["2098-01-01"]\n', "不属于"),
        ("[abc]\n", "年份"),
        ("not toml [", "TOML"),
    ],
)
def test_bad_override_files_are_named(tmp_path, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ValueError, match=message):
        load_overrides(path)


def test_shipped_override_file_loads() -> None:
    overrides, years = load_overrides(None)
    assert isinstance(overrides, dict) and all(isinstance(y, int) for y in years)


@pytest.mark.parametrize(
    "text", ["", "8:30", "09:00-08:00", "08:30-12:00,11:00-13:00", "25:00-26:00", "a-b"]
)
def test_bad_office_hours(text: str) -> None:
    with pytest.raises(ValueError, match="办公时间"):
        OfficeHours.parse(text)


def test_office_hours_and_allowances() -> None:
    hours = OfficeHours.parse("09:00-12:00, 14:00-18:00")
    assert hours.day_seconds == 7 * 3600
    assert Allowance.parse("3wd", hours.day_seconds) == Allowance(3 * 7 * 3600, True, "3wd")
    assert Allowance.parse("4wh", DAY) == Allowance(4 * 3600, True, "4wh")
    assert Allowance.parse("2h", DAY) == Allowance(7200, False, "2h")
    assert Allowance.parse("30m", DAY) == Allowance(1800, False, "30m")
    assert [Allowance.parse(s, DAY).label() for s in ("3wd", "8wh", "2h", "30m")] == [
        "3个工作日",
        "8个工作小时",
        "2小时",
        "30分钟",
    ]
    for bad in ("3d", "0wd", "wd", "1.5wd", "-1h"):
        with pytest.raises(ValueError, match="时限"):
            Allowance.parse(bad, DAY)


starts = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
    max_value=datetime(2026, 12, 20),  # noqa: DTZ001
    timezones=st.just(SHANGHAI),
).map(lambda d: d.replace(microsecond=0))


@settings(max_examples=300, deadline=None)
@given(start=starts, seconds=st.integers(min_value=0, max_value=20 * DAY))
def test_add_and_between_agree(start: datetime, seconds: int) -> None:
    end = CAL.add(start, seconds)
    assert CAL.between(start, end) == seconds
    assert end >= start
    if seconds > 0:
        local = end.astimezone(SHANGHAI)
        sec = local.hour * 3600 + local.minute * 60 + local.second
        assert CAL.is_workday(local.date())
        assert any(a < sec <= b for a, b in CAL.office_hours.periods)
        assert CAL.add(start, seconds + 1) > end


@settings(max_examples=100, deadline=None)
@given(start=starts, a=st.integers(0, 5 * DAY), b=st.integers(0, 5 * DAY))
def test_add_is_additive(start: datetime, a: int, b: int) -> None:
    assert CAL.add(CAL.add(start, a), b) == CAL.add(start, a + b)
