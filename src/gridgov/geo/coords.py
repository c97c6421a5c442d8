"""Coordinate conversion between WGS-84, GCJ-02 (AMap/Tencent) and BD-09 (Baidu), vectorised."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar, cast

import numpy as np
import numpy.typing as npt

__all__ = [
    "CRS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "haversine_m",
    "out_of_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = npt.NDArray[np.float64]
# A coordinate: a python float (scalar in -> float out) or a float64 array (same shape out).
Coord = TypeVar("Coord", float, FloatArray)

# GCJ-02 uses the Krasovsky 1940 ellipsoid.
KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323
# BD-09 rotation/scaling constant (pi * 3000 / 180).
X_PI = np.pi * 3000.0 / 180.0
# Rough China bounding box used by every public implementation of GCJ-02: no offset outside it.
CHINA_LON_MIN, CHINA_LON_MAX = 72.004, 137.8347
CHINA_LAT_MIN, CHINA_LAT_MAX = 0.8293, 55.8271
# Mean earth radius (IUGG), metres.
EARTH_RADIUS_M = 6371008.8
# Stopping rule of the iterative inverses: ~0.1 mm, far below any mapping need.
INVERSE_TOL_DEG = 1e-10
INVERSE_MAX_ITER = 20


class CRS(StrEnum):
    """Coordinate reference systems in use on Chinese web maps."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def _as_arrays(lon: float | FloatArray, lat: float | FloatArray) -> tuple[FloatArray, FloatArray]:
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return x, y


def _pack(value: FloatArray, scalar: bool) -> float | FloatArray:
    return float(value) if scalar else np.asarray(value, dtype=np.float64)


def _out(lon_in: Coord, lat_in: Coord, lon: FloatArray, lat: FloatArray) -> tuple[Coord, Coord]:
    """Return floats for scalar input, float64 arrays (broadcast input shape) otherwise."""
    scalar = np.ndim(lon_in) == 0 and np.ndim(lat_in) == 0
    return cast(Coord, _pack(lon, scalar)), cast(Coord, _pack(lat, scalar))


def _outside(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    return (
        (lon < CHINA_LON_MIN)
        | (lon > CHINA_LON_MAX)
        | (lat < CHINA_LAT_MIN)
        | (lat > CHINA_LAT_MAX)
    )


def out_of_china(lon: Coord, lat: Coord) -> npt.NDArray[np.bool_] | bool:
    """True where a point lies outside the rough China bbox (GCJ-02 applies no offset there)."""
    mask = _outside(*_as_arrays(lon, lat))
    if mask.ndim == 0:
        return bool(mask)
    return mask


def _gcj_delta(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset (degrees) at a WGS-84 point, ignoring the China bbox."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat = dlat + common
    dlat = dlat + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon = dlon + common
    dlon = dlon + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon = dlon + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - KRASOVSKY_EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (KRASOVSKY_A / sqrt_magic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _wgs_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_delta(lon, lat)
    outside = _outside(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def _gcj_to_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # Fixed-point iteration w <- w + (g - F(w)); F - identity varies by ~1e-3 per degree, so the
    # error shrinks ~1000x per step and 2-3 steps reach the tolerance. The China test is made on
    # the GCJ-02 input, as in the reference implementations.
    outside = _outside(lon, lat)
    dlon, dlat = _gcj_delta(lon, lat)
    wlon, wlat = lon - dlon, lat - dlat
    for _ in range(INVERSE_MAX_ITER):
        dlon, dlat = _gcj_delta(wlon, wlat)
        elon = lon - (wlon + dlon)
        elat = lat - (wlat + dlat)
        wlon, wlat = wlon + elon, wlat + elat
        if elon.size == 0 or max(np.max(np.abs(elon)), np.max(np.abs(elat))) < INVERSE_TOL_DEG:
            break
    return np.where(outside, lon, wlon), np.where(outside, lat, wlat)


def _gcj_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # The closed-form inverse in circulation is only good to ~1e-6 degrees; refine it by the same
    # fixed-point iteration as GCJ-02 so that round trips are exact to ~0.1 mm.
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(INVERSE_MAX_ITER):
        blon, blat = _gcj_to_bd(glon, glat)
        elon, elat = lon - blon, lat - blat
        glon, glat = glon + elon, glat + elat
        if elon.size == 0 or max(np.max(np.abs(elon)), np.max(np.abs(elat))) < INVERSE_TOL_DEG:
            break
    return glon, glat


def wgs84_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS-84 -> GCJ-02 (unchanged outside China)."""
    x, y = _as_arrays(lon, lat)
    return _out(lon, lat, *_wgs_to_gcj(x, y))


def gcj02_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """GCJ-02 -> WGS-84 by iterating the forward transform (error well below 1 mm)."""
    x, y = _as_arrays(lon, lat)
    return _out(lon, lat, *_gcj_to_wgs(x, y))


def gcj02_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """GCJ-02 -> BD-09."""
    x, y = _as_arrays(lon, lat)
    return _out(lon, lat, *_gcj_to_bd(x, y))


def bd09_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """BD-09 -> GCJ-02 (iteratively refined inverse)."""
    x, y = _as_arrays(lon, lat)
    return _out(lon, lat, *_bd_to_gcj(x, y))


def wgs84_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS-84 -> BD-09 (via GCJ-02)."""
    x, y = _as_arrays(lon, lat)
    return _out(lon, lat, *_gcj_to_bd(*_wgs_to_gcj(x, y)))


def bd09_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """BD-09 -> WGS-84 (via GCJ-02)."""
    x, y = _as_arrays(lon, lat)
    return _out(lon, lat, *_gcj_to_wgs(*_bd_to_gcj(x, y)))


def parse_crs(crs: CRS | str) -> CRS:
    """Accept a CRS or its name (case-insensitive; 'GCJ-02', 'bd_09', 'EPSG:4326' also work)."""
    if isinstance(crs, CRS):
        return crs
    key = str(crs).strip().lower().replace("-", "").replace("_", "")
    if key == "epsg:4326":
        key = CRS.WGS84.value
    try:
        return CRS(key)
    except ValueError:
        accepted = "、".join(c.value for c in CRS)
        raise ValueError(f"未知坐标系 {crs!r}，可选值为：{accepted}") from None


def to_wgs84(lon: Coord, lat: Coord, crs: CRS | str) -> tuple[Coord, Coord]:
    """Convert coordinates given in `crs` to WGS-84."""
    kind = parse_crs(crs)
    if kind is CRS.WGS84:
        x, y = _as_arrays(lon, lat)
        return _out(lon, lat, x.copy(), y.copy())
    if kind is CRS.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    return bd09_to_wgs84(lon, lat)


def haversine_m(lon1: Coord, lat1: Coord, lon2: Coord, lat2: Coord) -> Coord:
    """Great-circle distance in metres on a sphere of the mean earth radius."""
    x1, y1 = _as_arrays(lon1, lat1)
    x2, y2 = _as_arrays(lon2, lat2)
    p1, p2 = np.radians(y1), np.radians(y2)
    dphi = p2 - p1
    dlmb = np.radians(x2 - x1)
    h = np.sin(dphi / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2.0) ** 2
    d = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    scalar = all(np.ndim(v) == 0 for v in (lon1, lat1, lon2, lat2))
    return cast(Coord, _pack(d, scalar))
