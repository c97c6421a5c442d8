"""Tests for reading, writing and validating grid boundary files."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from gridgov.geo.gridfile import (
    FAULT_LABELS,
    GridFault,
    GridFile,
    GridFileError,
    normalise_code,
    read_grid_file,
    sort_faults,
    summary,
    validate_grids,
    write_grid_file,
)

VILLAGE_A = "330203001001"
VILLAGE_B = "330203001002"
# Two adjacent 0.03° x 0.02° villages near Ningbo, each split into three 0.01° wide grids.
VILLAGES = {
    VILLAGE_A: box(121.50, 29.80, 121.53, 29.82),
    VILLAGE_B: box(121.53, 29.80, 121.56, 29.82),
}

Feature = tuple[str, str | None, Any, dict[str, Any]]


def grid_box(village: str, seq: int) -> Polygon:
    x0 = 121.50 if village == VILLAGE_A else 121.53
    x = x0 + (seq - 1) * 0.01
    return box(x, 29.80, x + 0.01, 29.82)


def clean_features() -> list[Feature]:
    out: list[Feature] = []
    for village in (VILLAGE_A, VILLAGE_B):
        for seq in (1, 2, 3):
            code = f"{village}{seq:03d}"
            out.append((code, f"第{seq}网格", grid_box(village, seq), {"seq": seq}))
    return out


def replace(features: list[Feature], target: str, **changes: Any) -> list[Feature]:
    out: list[Feature] = []
    for f in features:
        if f[0] == target:
            new_code = changes.get("code", f[0])
            geom = changes.get("geometry", f[2])
            out.append((new_code, f[1], geom, f[3]))
        else:
            out.append(f)
    return out


def roundtrip(tmp_path: Path, features: list[Feature], name: str = "grids.geojson") -> GridFile:
    path = tmp_path / name
    write_grid_file(path, features)
    return read_grid_file(path)


def near(fault: GridFault, region: Any, tol: float = 1e-6) -> bool:
    assert fault.lon is not None
    assert fault.lat is not None
    return bool(Point(fault.lon, fault.lat).distance(region) <= tol)


@pytest.mark.parametrize("suffix", [".geojson", ".json", ".gpkg", ".shp"])
def test_write_read_roundtrip(tmp_path: Path, suffix: str) -> None:
    features = clean_features()
    path = tmp_path / f"grids{suffix}"
    write_grid_file(path, features)
    grid_file = read_grid_file(path)

    assert grid_file.crs == "EPSG:4326"
    assert [f.row for f in grid_file.features] == [1, 2, 3, 4, 5, 6]
    assert [f.code for f in grid_file.features] == [f[0] for f in features]
    assert [f.name for f in grid_file.features] == [f[1] for f in features]
    for feature, (_code, _name, geom, _extra) in zip(grid_file.features, features, strict=True):
        assert feature.geometry is not None
        # Shapefiles do not tell single from multi polygons.
        expected_type = "Polygon" if suffix == ".shp" else "MultiPolygon"
        assert feature.geometry.geom_type == expected_type
        assert shapely.equals_exact(
            shapely.normalize(shapely.get_geometry(feature.geometry, 0)),
            shapely.normalize(geom),
            tolerance=1e-12,
        )
    assert "seq" in grid_file.fields
    village_field = "village_co" if suffix == ".shp" else "village_code"
    assert village_field in grid_file.fields
    meta, _fids, _geoms, data = pyogrio.raw.read(str(path))
    assert meta["geometry_type"] == ("Polygon" if suffix == ".shp" else "MultiPolygon")
    assert list(data[list(meta["fields"]).index(village_field)])[:3] == [VILLAGE_A] * 3


def test_write_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "grids.gpkg"
    write_grid_file(path, clean_features())
    write_grid_file(path, clean_features()[:2])
    assert len(read_grid_file(path).features) == 2


def test_write_rejects_unknown_extension_and_non_polygons(tmp_path: Path) -> None:
    with pytest.raises(GridFileError, match=r"grids\.csv"):
        write_grid_file(tmp_path / "grids.csv", clean_features())
    with pytest.raises(GridFileError, match="330203001001001"):
        write_grid_file(tmp_path / "g.geojson", [("330203001001001", None, Point(121.5, 29.8), {})])


def test_clean_file_has_no_faults(tmp_path: Path) -> None:
    grid_file = roundtrip(tmp_path, clean_features())
    assert validate_grids(grid_file, villages=VILLAGES) == []
    assert summary([]) == "检查通过: 未发现问题。"


def bow_tie(features: list[Feature]) -> list[Feature]:
    ring = [(121.51, 29.80), (121.52, 29.82), (121.52, 29.80), (121.51, 29.82), (121.51, 29.80)]
    return replace(features, "330203001001002", geometry=Polygon(ring))


def overlapping(features: list[Feature]) -> list[Feature]:
    return replace(features, "330203001001001", geometry=box(121.50, 29.80, 121.512, 29.82))


def shrunk(features: list[Feature]) -> list[Feature]:
    return replace(features, "330203001001003", geometry=box(121.52, 29.80, 121.528, 29.82))


def sticking_out(features: list[Feature]) -> list[Feature]:
    return replace(features, "330203001002003", geometry=box(121.55, 29.80, 121.562, 29.82))


def unknown_village(features: list[Feature]) -> list[Feature]:
    return replace(features, "330203001002001", code="330203001009001")


def duplicated(features: list[Feature]) -> list[Feature]:
    return replace(features, "330203001002002", code="330203001002001")


def bad_code(features: list[Feature]) -> list[Feature]:
    return replace(features, "330203001002002", code="33020300100202")


def no_geometry(features: list[Feature]) -> list[Feature]:
    return replace(features, "330203001002002", geometry=None)


@pytest.mark.parametrize(
    ("kind", "mutate", "code", "row", "where"),
    [
        ("invalid_ring", bow_tie, "330203001001002", 2, Point(121.515, 29.81)),
        ("overlap", overlapping, "330203001001001", 1, box(121.51, 29.80, 121.512, 29.82)),
        ("gap", shrunk, VILLAGE_A, None, box(121.528, 29.80, 121.53, 29.82)),
        ("outside_village", sticking_out, "330203001002003", 6, box(121.56, 29.8, 121.562, 29.82)),
        ("unknown_code", unknown_village, "330203001009001", 4, None),
        ("duplicate_code", duplicated, "330203001002001", 5, None),
        ("invalid_code", bad_code, "33020300100202", 5, None),
        ("missing_geometry", no_geometry, "330203001002002", 5, None),
    ],
)
def test_fault_kinds(
    tmp_path: Path,
    kind: str,
    mutate: Callable[[list[Feature]], list[Feature]],
    code: str,
    row: int | None,
    where: Any,
) -> None:
    grid_file = roundtrip(tmp_path, mutate(clean_features()))
    faults = validate_grids(grid_file, villages=VILLAGES)
    matching = [f for f in faults if f.kind == kind]
    assert len(matching) == 1, summary(faults)
    fault = matching[0]
    assert fault.code == code
    assert fault.row == row
    assert code in fault.message
    if where is not None:
        assert near(fault, where)
    report = summary(faults)
    assert FAULT_LABELS[kind] in report
    assert code in report


def test_overlap_names_both_grids_and_area(tmp_path: Path) -> None:
    faults = validate_grids(roundtrip(tmp_path, overlapping(clean_features())), villages=VILLAGES)
    assert [f.kind for f in faults] == ["overlap"]
    message = faults[0].message
    assert "330203001001001" in message
    assert "330203001001002" in message
    # 0.002° x 0.02° at lat 29.81: about 0.002 * 0.02 * 111320² * cos(29.81°) ≈ 429,900 m².
    expected = 0.002 * 0.02 * 111_320**2 * math.cos(math.radians(29.81))
    assert f"{expected:,.0f}"[:3] in message


def test_duplicate_names_both_rows(tmp_path: Path) -> None:
    faults = validate_grids(roundtrip(tmp_path, duplicated(clean_features())), villages=VILLAGES)
    dup = [f for f in faults if f.kind == "duplicate_code"]
    assert "第 4 行" in dup[0].message
    assert "第 5 行" in dup[0].message
    # Two rows with the same code and the same village are not also reported as overlapping.
    assert [f.kind for f in faults] == ["duplicate_code"]


def test_invalid_ring_location_is_the_self_intersection(tmp_path: Path) -> None:
    faults = validate_grids(roundtrip(tmp_path, bow_tie(clean_features())), villages=VILLAGES)
    ring = next(f for f in faults if f.kind == "invalid_ring")
    assert ring.lon == pytest.approx(121.515)
    assert ring.lat == pytest.approx(29.81)
    assert "自相交" in ring.message


def test_unclosed_ring_is_invalid_ring(tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "properties": {"code": "330203001001001"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[121.50, 29.80], [121.51, 29.80], [121.51, 29.82]]],
            },
        }
    ]
    path = tmp_path / "open.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    grid_file = read_grid_file(path)
    faults = validate_grids(grid_file, villages=VILLAGES)
    ring = [f for f in faults if f.kind == "invalid_ring"]
    assert len(ring) == 1
    assert ring[0].code == "330203001001001"
    assert ring[0].lon == pytest.approx(121.50)
    assert ring[0].lat == pytest.approx(29.80)


def test_all_faults_found_in_one_pass(tmp_path: Path) -> None:
    ring = [(121.54, 29.80), (121.55, 29.82), (121.55, 29.80), (121.54, 29.82), (121.54, 29.80)]
    features = replace(clean_features(), "330203001002002", geometry=Polygon(ring))
    features = sticking_out(overlapping(features))
    faults = validate_grids(roundtrip(tmp_path, features), villages=VILLAGES)
    kinds = {f.kind for f in faults}
    assert {"invalid_ring", "overlap", "outside_village"} <= kinds
    rows = [f.row for f in faults if f.row is not None]
    assert rows == sorted(rows)


def to_mercator(geom: Any) -> Any:
    def project(xy: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        r = 6_378_137.0
        x = np.radians(xy[:, 0]) * r
        y = np.log(np.tan(np.pi / 4 + np.radians(xy[:, 1]) / 2)) * r
        return np.column_stack([x, y])

    return shapely.transform(geom, project)


def test_projected_file_is_wrong_crs(tmp_path: Path) -> None:
    features = [(c, n, to_mercator(g), e) for c, n, g, e in clean_features()]
    path = tmp_path / "mercator.geojson"
    write_grid_file(path, features, crs="EPSG:3857")
    grid_file = read_grid_file(path)
    assert grid_file.crs == "EPSG:3857"
    faults = validate_grids(grid_file, villages=VILLAGES)
    assert [(f.kind, f.code, f.row) for f in faults] == [("wrong_crs", None, None)]
    assert "3857" in faults[0].message or "Pseudo-Mercator" in faults[0].message


@pytest.mark.parametrize(("projected", "expected"), [(False, []), (True, ["wrong_crs"])])
def test_missing_crs_judged_by_coordinates(
    tmp_path: Path, projected: bool, expected: list[str]
) -> None:
    features = clean_features()
    if projected:
        features = [(c, n, to_mercator(g), e) for c, n, g, e in features]
    path = tmp_path / "grids.shp"
    write_grid_file(path, features)
    path.with_suffix(".prj").unlink()
    grid_file = read_grid_file(path)
    assert grid_file.crs is None
    assert [f.kind for f in validate_grids(grid_file, villages=VILLAGES)] == expected


def test_swapped_axes_are_wrong_crs(tmp_path: Path) -> None:
    features = [
        (c, n, shapely.transform(g, lambda xy: xy[:, ::-1]), e) for c, n, g, e in clean_features()
    ]
    grid_file = roundtrip(tmp_path, features)
    # Lat 121.5 is out of range, so this is caught by the plain range check too.
    assert [f.kind for f in validate_grids(grid_file, villages=VILLAGES)] == ["wrong_crs"]


def test_missing_code_column(tmp_path: Path) -> None:
    path = tmp_path / "grids.gpkg"
    write_grid_file(path, clean_features())
    with pytest.raises(GridFileError) as info:
        read_grid_file(path, code_field="wgbm")
    message = str(info.value)
    assert "grids.gpkg" in message
    assert "wgbm" in message
    assert "code" in message
    assert "village_code" in message


def test_code_column_matched_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "grids.geojson"
    write_grid_file(path, clean_features())
    assert read_grid_file(path, code_field="CODE").features[0].code == "330203001001001"


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.gpkg"
    path.write_text("not a geopackage")
    with pytest.raises(GridFileError, match=r"broken\.gpkg"):
        read_grid_file(path)
    with pytest.raises(GridFileError, match=r"missing\.shp"):
        read_grid_file(tmp_path / "missing.shp")


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_numeric_codes_from_shapefile(tmp_path: Path, dtype: type[np.generic]) -> None:
    path = tmp_path / "numeric.shp"
    wkb = shapely.to_wkb(shapely.multipolygons([[grid_box(VILLAGE_A, 1)]]))
    codes = np.array([330203001001001], dtype=dtype)
    pyogrio.raw.write(
        str(path),
        wkb,
        [codes],
        ["code"],
        crs="EPSG:4326",
        geometry_type="MultiPolygon",
    )
    grid_file = read_grid_file(path)
    assert grid_file.features[0].code == "330203001001001"
    assert grid_file.features[0].name is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (330203001001003, "330203001001003"),
        (330203001001003.0, "330203001001003"),
        (" 330203001001003 ", "330203001001003"),
        ("330203001001003.0", "330203001001003"),
        (3302030010.5, "3302030010.5"),
        (None, ""),
        ("A-1", "A-1"),
    ],
)
def test_normalise_code(value: object, expected: str) -> None:
    assert normalise_code(value) == expected


def test_known_grid_codes_restrict_accepted_codes(tmp_path: Path) -> None:
    grid_file = roundtrip(tmp_path, clean_features())
    known = {f[0] for f in clean_features()} - {"330203001002003"}
    faults = validate_grids(grid_file, villages=VILLAGES, known_grid_codes=known)
    assert [(f.kind, f.code) for f in faults] == [("unknown_code", "330203001002003")]


def test_area_tolerance_parameter(tmp_path: Path) -> None:
    grid_file = roundtrip(tmp_path, overlapping(clean_features()))
    assert validate_grids(grid_file, villages=VILLAGES, area_tolerance_deg2=1e-4) == []


def test_summary_lines(tmp_path: Path) -> None:
    faults = validate_grids(roundtrip(tmp_path, shrunk(clean_features())), villages=VILLAGES)
    text = summary(faults)
    lines = text.splitlines()
    assert lines[0].startswith("共发现 1 个问题")
    assert lines[1].startswith("[村社区未覆盖] 编码 330203001001")
    assert "121.529000,29.810000" in lines[1]


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_file_without_features_cannot_be_read(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    write_grid_file(path, [])
    with pytest.raises(GridFileError, match=rf"文件 empty\{suffix} 中没有网格要素"):
        read_grid_file(path)


def test_bare_feature_collection_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "bare.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(GridFileError, match="没有网格要素"):
        read_grid_file(path)


def test_empty_grid_file_is_one_fault() -> None:
    faults = validate_grids(GridFile("empty.gpkg", "EPSG:4326", ()), villages=VILLAGES)
    assert [(f.kind, f.code, f.row) for f in faults] == [("empty_file", None, None)]
    assert "empty.gpkg" in faults[0].message
    assert FAULT_LABELS["empty_file"] in summary(faults)


# A stored grid of a third village east of VILLAGE_B, which the file does not bring.
STORED_EAST = {"330203001003001": box(121.56, 29.80, 121.57, 29.82)}


def test_overlap_with_stored_grid_of_another_village(tmp_path: Path) -> None:
    villages = {**VILLAGES, VILLAGE_B: box(121.53, 29.80, 121.562, 29.82)}
    features = replace(
        clean_features(), "330203001002003", geometry=box(121.55, 29.80, 121.562, 29.82)
    )
    grid_file = roundtrip(tmp_path, features)
    faults = validate_grids(grid_file, villages=villages, stored_grids=STORED_EAST)
    # The village boundary given here reaches that far, so only the stored grid objects.
    assert [(f.kind, f.code, f.row) for f in faults] == [("overlap", "330203001002003", 6)]
    message = faults[0].message
    assert "330203001003001" in message and "330203001003" in message
    expected = 0.002 * 0.02 * 111_320**2 * math.cos(math.radians(29.81))
    assert f"约 {expected:,.0f}"[:5] in message and "平方米" in message
    assert near(faults[0], box(121.56, 29.80, 121.562, 29.82))


def test_stored_grids_that_only_touch_are_fine(tmp_path: Path) -> None:
    grid_file = roundtrip(tmp_path, clean_features())
    assert validate_grids(grid_file, villages=VILLAGES, stored_grids=STORED_EAST) == []
    # Below the area tolerance counts as touching.
    sliver = {"330203001003001": box(121.56 - 1e-9, 29.80, 121.57, 29.82)}
    assert validate_grids(grid_file, villages=VILLAGES, stored_grids=sliver) == []


def test_grid_in_use_is_a_labelled_kind_sorted_with_village_faults() -> None:
    assert FAULT_LABELS["grid_in_use"] == "网格仍有账号"
    in_use = GridFault("grid_in_use", "330203001001004", None, "账号 grid_worker 仍在该网格")
    ring = GridFault("invalid_ring", "330203001001002", 2, "边界无效")
    crs = GridFault("wrong_crs", None, None, "坐标系错误")
    assert sort_faults([in_use, ring, crs]) == [crs, ring, in_use]
    assert "[网格仍有账号] 编码 330203001001004" in summary([in_use])
