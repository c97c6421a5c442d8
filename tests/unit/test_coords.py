"""Tests for WGS-84 / GCJ-02 / BD-09 coordinate conversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.geo.coords import (
    CRS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    haversine_m,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

NINGBO_LON = st.floats(min_value=120.9, max_value=122.3)
NINGBO_LAT = st.floats(min_value=28.8, max_value=30.5)
# Mainland China, kept ~0.1 degree inside the rough bbox so the offset never straddles its edge.
CHINA_LON = st.floats(min_value=73.5, max_value=135.0)
CHINA_LAT = st.floats(min_value=18.0, max_value=53.5)

NINGBO_POINTS = [
    (121.5500, 29.8750),  # Sanjiangkou
    (121.8440, 29.9000),  # Beilun
    (121.8700, 29.4760),  # Xiangshan
    (121.1550, 30.0450),  # Yuyao
    (121.2660, 30.1700),  # Cixi
]


@settings(max_examples=300, deadline=None)
@given(NINGBO_LON, NINGBO_LAT)
def test_gcj02_round_trip_ningbo(lon: float, lat: float) -> None:
    glon, glat = wgs84_to_gcj02(lon, lat)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    assert haversine_m(lon, lat, wlon, wlat) < 1e-3


@settings(max_examples=300, deadline=None)
@given(CHINA_LON, CHINA_LAT)
def test_gcj02_round_trip_china(lon: float, lat: float) -> None:
    wlon, wlat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert haversine_m(lon, lat, wlon, wlat) < 1e-3


@settings(max_examples=300, deadline=None)
@given(CHINA_LON, CHINA_LAT)
def test_inverse_is_exact_on_gcj_side(lon: float, lat: float) -> None:
    """Starting from a GCJ-02 point: gcj -> wgs -> gcj must come back too."""
    glon, glat = wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))
    assert haversine_m(lon, lat, glon, glat) < 1e-3


@pytest.mark.parametrize(("lon", "lat"), NINGBO_POINTS)
def test_gcj_offset_in_ningbo(lon: float, lat: float) -> None:
    glon, glat = wgs84_to_gcj02(lon, lat)
    offset = haversine_m(lon, lat, glon, glat)
    assert 480.0 < offset < 530.0
    # GCJ-02 shifts Ningbo to the east and south.
    assert glon > lon
    assert glat < lat


def test_known_value_matches_reference_formula() -> None:
    # Tiananmen, value of the widely used coordtransform/eviltransform implementations.
    glon, glat = wgs84_to_gcj02(116.391349, 39.907375)
    assert glon == pytest.approx(116.39759, abs=1e-5)
    assert glat == pytest.approx(39.90877, abs=1e-5)


@settings(max_examples=200, deadline=None)
@given(NINGBO_LON, NINGBO_LAT)
def test_bd09_round_trip(lon: float, lat: float) -> None:
    blon, blat = gcj02_to_bd09(lon, lat)
    glon, glat = bd09_to_gcj02(blon, blat)
    assert haversine_m(lon, lat, glon, glat) < 1e-3
    wlon, wlat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert haversine_m(lon, lat, wlon, wlat) < 1e-3


def test_bd09_offset_is_plausible() -> None:
    lon, lat = 121.55, 29.875
    blon, blat = gcj02_to_bd09(lon, lat)
    # BD-09 adds roughly +0.0065 / +0.006 degrees on top of GCJ-02 (~600-1000 m).
    assert 500.0 < haversine_m(lon, lat, blon, blat) < 1100.0


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(2.3522, 48.8566), (-74.006, 40.7128), (139.6917, 35.6895), (103.8198, 0.5), (100.0, 60.0)],
)
def test_outside_china_unchanged(lon: float, lat: float) -> None:
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)
    assert to_wgs84(lon, lat, CRS.GCJ02) == (lon, lat)


def test_vectorised_equals_scalar() -> None:
    rng = np.random.default_rng(20240601)
    lon = rng.uniform(120.9, 122.3, size=(4, 5))
    lat = rng.uniform(28.8, 30.5, size=(4, 5))
    lon[0, 0], lat[0, 0] = 2.35, 48.85  # one point outside China in the batch
    funcs = [
        wgs84_to_gcj02,
        gcj02_to_wgs84,
        gcj02_to_bd09,
        bd09_to_gcj02,
        wgs84_to_bd09,
        bd09_to_wgs84,
    ]
    for func in funcs:
        vx, vy = func(lon, lat)
        assert isinstance(vx, np.ndarray)
        assert vx.shape == lon.shape
        assert vy.shape == lat.shape
        for idx in np.ndindex(lon.shape):
            sx, sy = func(float(lon[idx]), float(lat[idx]))
            assert isinstance(sx, float)
            assert isinstance(sy, float)
            assert sx == pytest.approx(vx[idx], abs=1e-12)
            assert sy == pytest.approx(vy[idx], abs=1e-12)


def test_empty_array() -> None:
    empty = np.array([], dtype=np.float64)
    lon, lat = gcj02_to_wgs84(empty, empty)
    assert lon.shape == (0,)
    assert lat.shape == (0,)


@pytest.mark.parametrize("crs", [CRS.WGS84, "wgs84", "WGS-84", "EPSG:4326"])
def test_to_wgs84_identity(crs: CRS | str) -> None:
    assert to_wgs84(121.5, 29.9, crs) == (121.5, 29.9)


def test_to_wgs84_dispatch() -> None:
    lon, lat = 121.55, 29.875
    assert to_wgs84(*wgs84_to_gcj02(lon, lat), "gcj02") == pytest.approx((lon, lat), abs=1e-9)
    assert to_wgs84(*wgs84_to_bd09(lon, lat), CRS.BD09) == pytest.approx((lon, lat), abs=1e-9)
    assert to_wgs84(*wgs84_to_gcj02(lon, lat), "GCJ-02") == pytest.approx((lon, lat), abs=1e-9)


@pytest.mark.parametrize("bad", ["mercator", "", "epsg:3857"])
def test_bad_crs_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="未知坐标系") as info:
        to_wgs84(121.5, 29.9, bad)
    for name in ("wgs84", "gcj02", "bd09"):
        assert name in str(info.value)


def test_haversine() -> None:
    # One degree of latitude is ~111.2 km on the mean sphere.
    assert haversine_m(121.0, 29.0, 121.0, 30.0) == pytest.approx(111_195.0, rel=1e-3)
    assert haversine_m(121.0, 29.0, 121.0, 29.0) == 0.0
    d = haversine_m(np.full(2, 121.0), np.full(2, 29.0), np.full(2, 121.0), np.full(2, 30.0))
    assert isinstance(d, np.ndarray)
    assert d == pytest.approx([111_195.0, 111_195.0], rel=1e-3)
