"""Pure field rules: track length, duration, building coverage, field-fact checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridgov.field import rules
from gridgov.field.rules import Fix

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
# 1e-3 degree of latitude is about 111.2 m.
M_PER_MILLIDEG_LAT = 111.195


def walk(n: int, step_deg: float = 1e-4, seconds: int = 30) -> list[Fix]:
    return [
        Fix(T0 + timedelta(seconds=i * seconds), 121.5, 29.8 + i * step_deg, 5.0) for i in range(n)
    ]


def test_haversine_one_millidegree_of_latitude() -> None:
    d = rules.haversine_m(121.5, 29.8, 121.5, 29.801)
    assert d == pytest.approx(M_PER_MILLIDEG_LAT, rel=1e-3)


def test_track_length_sums_segments_and_drops_bad_fixes() -> None:
    fixes = walk(11)  # ten steps of ~11.1 m
    assert rules.track_length_m(fixes) == pytest.approx(111.2, rel=1e-2)
    # An imprecise fix and an impossible jump (2 km in 30 s) do not add distance.
    noisy = [*fixes[:5], Fix(fixes[5].at, 121.6, 29.9, 5.0), *fixes[6:]]
    noisy.append(Fix(T0 + timedelta(seconds=15), 121.5, 29.9, 500.0))
    assert rules.track_length_m(noisy) == pytest.approx(rules.track_length_m(fixes), rel=1e-6)


def test_duration_to_stop_or_last_fix() -> None:
    fixes = walk(5, seconds=60)
    assert rules.duration_s(T0, None, fixes) == 240
    assert rules.duration_s(T0, T0 + timedelta(hours=1), fixes) == 3600


def test_coverage_counts_buildings_within_50_m_of_a_segment() -> None:
    track = [Fix(T0, 121.5, 29.8), Fix(T0 + timedelta(minutes=2), 121.5, 29.803)]
    # Beside the middle of the segment: 30 m east (in), 80 m east (out); beyond the end: 40 m (in).
    east_30 = 30 / (111_195 * 0.8678)  # cos(29.8°) ≈ 0.8678
    east_80 = 80 / (111_195 * 0.8678)
    buildings = [
        (121.5 + east_30, 29.8015),
        (121.5 + east_80, 29.8015),
        (121.5, 29.803 + 40 / 111_195),
    ]
    assert rules.covered([track], buildings) == [True, False, True]
    cov = rules.coverage([track], buildings)
    assert (cov.buildings, cov.covered) == (3, 2)
    assert cov.share == pytest.approx(2 / 3)


def test_coverage_does_not_draw_a_line_across_a_gap_in_the_sampling() -> None:
    """The app samples every 10 s while open; a fix 20 minutes after the last one (the app was
    closed meanwhile) does not cover the buildings along the straight line between them."""
    middle = [(121.5, 29.8015)]  # on the line, ~170 m from either end
    ends = [(121.5, 29.8), (121.5, 29.803)]
    walked = [Fix(T0 + timedelta(seconds=10 * i), 121.5, 29.8 + i * 1e-4) for i in range(31)]
    assert rules.covered([walked], middle + ends) == [True, True, True]
    jumped = [Fix(T0, 121.5, 29.8), Fix(T0 + timedelta(minutes=20), 121.5, 29.803)]
    assert rules.covered([jumped], middle + ends) == [False, True, True]
    # A gap in the middle of a sampled walk: the walked parts still count.
    gap = [*walked[:5], *(Fix(f.at + timedelta(minutes=20), f.lon, f.lat) for f in walked[26:])]
    assert rules.covered([gap], middle + ends) == [False, True, True]
    # The distance keeps the straight line: the least the worker moved.
    assert rules.track_length_m(jumped) == pytest.approx(3 * M_PER_MILLIDEG_LAT, rel=1e-3)


def test_coverage_of_no_buildings_or_no_track() -> None:
    assert rules.coverage([], []).share == 0.0
    assert rules.coverage([[]], [(121.5, 29.8)]).covered == 0
    assert rules.coverage([[Fix(T0, 121.5, 29.8)]], [(121.5, 29.8)]).covered == 1


@given(st.lists(st.floats(min_value=-1e-3, max_value=1e-3), min_size=2, max_size=30))
def test_length_is_at_least_the_straight_line(offsets: list[float]) -> None:
    fixes = [
        Fix(T0 + timedelta(minutes=i), 121.5 + o, 29.8 + i * 1e-4) for i, o in enumerate(offsets)
    ]
    kept = rules.usable(fixes)
    first, last = kept[0], kept[-1]
    straight = rules.haversine_m(first.lon, first.lat, last.lon, last.lat)
    assert rules.track_length_m(fixes) >= straight - 1e-6


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("phone", "13800138000", True),
        ("phone", "0574-87654321", True),
        ("phone", "23800138000", False),
        ("phone", "abc", False),
        ("residence_status", "present", True),
        ("residence_status", "在住", False),
        ("use", "rented", True),
        ("use", "hotel", False),
        ("actual_address", "海曙区中山路1号", True),
        ("actual_address", "x", False),
    ],
)
def test_field_fact_checks_name_the_field(field: str, value: str, ok: bool) -> None:
    problem = rules.check_fact(field, value)
    assert (problem is None) == ok
    if problem:
        assert field in problem
