"""Tests for LocateIndex: lattice answers must equal the STRtree and a brute-force scan."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from gridgov.geo.locate import LocateIndex


def _load_brute_force() -> Callable[..., tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """tests/geo_helpers.py by path: tests/ is not a package and not on sys.path."""
    path = Path(__file__).resolve().parents[1] / "geo_helpers.py"
    spec = importlib.util.spec_from_file_location("gridgov_tests_geo_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    hits: Callable[..., tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]
    hits = module.brute_force_hits
    return hits


brute_force_hits = _load_brute_force()


def brute_force_locate(
    codes_geoms: Sequence[tuple[str, BaseGeometry]], lons: Any, lats: Any
) -> npt.NDArray[np.int64]:
    """Lowest index of a polygon containing each point, -1 if none (no STRtree involved)."""
    return brute_force_hits(codes_geoms, lons, lats)[0]


# --------------------------------------------------------------------------- synthetic tiling

CENTRE = (121.3, 29.8)


def _blob(cx: float, cy: float, radius: float, rng: np.random.Generator, n: int = 80) -> Polygon:
    theta = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 6):
        r += rng.uniform(0.03, 0.15) / k * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    r *= radius
    return Polygon(np.column_stack((cx + r * np.cos(theta), cy + r * np.sin(theta))))


def _outline(rng: np.random.Generator) -> BaseGeometry:
    """Irregular mainland with a lake (hole) plus a separate island: a MultiPolygon."""
    mainland = _blob(*CENTRE, 0.25, rng)
    lake = _blob(CENTRE[0] + 0.05, CENTRE[1] - 0.03, 0.05, rng)
    island = _blob(CENTRE[0] + 0.36, CENTRE[1] + 0.12, 0.05, rng)
    outline = MultiPolygon([mainland.difference(lake), island])
    assert outline.is_valid and len(outline.geoms) == 2 and len(outline.geoms[0].interiors) == 1
    return outline


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return MultiPolygon(parts) if len(parts) > 1 else parts[0]


def _split(cell: BaseGeometry, cutter: BaseGeometry) -> list[BaseGeometry]:
    inner = _polygonal(cell.intersection(cutter))
    outer = _polygonal(cell.difference(cutter))
    return [inner, outer]


def make_tiling(n_seeds: int = 3000, seed: int = 20240601) -> list[tuple[str, BaseGeometry]]:
    """Voronoi cells of clustered random seeds clipped to the outline, plus odd-shaped cells.

    The largest cell is split by a comb into two concave pieces, and a thin strip (about 3 m
    wide) is cut out of another cell. The result tiles the outline without gaps or overlaps.
    """
    rng = np.random.default_rng(seed)
    outline = _outline(rng)
    minx, miny, maxx, maxy = outline.bounds
    urban = rng.normal(CENTRE, 0.04, size=(n_seeds // 2, 2))
    rural = rng.uniform((minx, miny), (maxx, maxy), size=(4 * n_seeds, 2))
    seeds = np.concatenate((urban, rural))
    seeds = seeds[shapely.contains_xy(outline, seeds[:, 0], seeds[:, 1])][:n_seeds]
    cells = shapely.get_parts(
        shapely.voronoi_polygons(
            shapely.multipoints(seeds), extend_to=box(minx - 1, miny - 1, maxx + 1, maxy + 1)
        )
    )
    clipped = shapely.intersection(cells, outline)
    clipped = clipped[~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)]
    geoms: list[BaseGeometry] = [_polygonal(g) for g in clipped]

    # A comb through the largest cell: both halves are concave, the teeth are thin.
    big = int(np.argmax(shapely.area(np.array(geoms, dtype=object))))
    bx0, by0, bx1, by1 = geoms[big].bounds
    width = (bx1 - bx0) / 24
    teeth = [box(bx0 + 2 * i * width, by0, bx0 + (2 * i + 1) * width, by1) for i in range(12)]
    comb = shapely.union_all([*teeth, box(bx0, by0, bx1, by0 + (by1 - by0) / 5)])
    pieces = _split(geoms[big], comb)

    # A thin strip through an urban cell near the centre.
    near = int(np.argmin([g.centroid.distance(shapely.Point(CENTRE)) for g in geoms]))
    nx0, ny0, nx1, ny1 = geoms[near].bounds
    mid = (nx0 + nx1) / 2
    strip = _split(geoms[near], box(mid, ny0 - 1, mid + 3e-5, ny1 + 1))

    rest = [g for i, g in enumerate(geoms) if i not in (big, near)]
    tiling = [*rest[:100], *pieces, *rest[100:1500], *strip, *rest[1500:]]
    return [(f"330200{i:09d}", g) for i, g in enumerate(tiling)]


@pytest.fixture(scope="module")
def tiling() -> list[tuple[str, BaseGeometry]]:
    return make_tiling()


LATTICES: dict[str, dict[str, Any]] = {
    "default": {},
    "coarse": {"cell_size": 0.02},  # cells larger than most grids: nearly all mixed
    "fine": {"cell_size": 1.5e-4},
    "tiny-budget": {"max_lattice_bytes": 4096},
}


@pytest.fixture(scope="module", params=sorted(LATTICES))
def index(request: pytest.FixtureRequest, tiling: list[tuple[str, BaseGeometry]]) -> LocateIndex:
    codes = [c for c, _ in tiling]
    geoms = [g for _, g in tiling]
    return LocateIndex(codes, geoms, **LATTICES[request.param])


def authority(index: LocateIndex, lons: Any, lats: Any) -> npt.NDArray[np.int64]:
    """Lowest index of the grids that intersect each point, straight from the STRtree."""
    x = np.ravel(np.asarray(lons, dtype=np.float64))
    y = np.ravel(np.asarray(lats, dtype=np.float64))
    pairs = index.tree.query(shapely.points(x, y), predicate="intersects")
    best = np.full(len(x), -1, dtype=np.int64)
    for point, grid in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        if best[point] < 0 or grid < best[point]:
            best[point] = grid
    return best


def _random_points(
    tiling: list[tuple[str, BaseGeometry]], n: int, seed: int, margin: float = 0.1
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    geoms = np.array([g for _, g in tiling], dtype=object)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    dx, dy = (maxx - minx) * margin, (maxy - miny) * margin
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(minx - dx, maxx + dx, n),
        rng.uniform(miny - dy, maxy + dy, n),
    )


# --------------------------------------------------------------------------- tests


def test_tiling_is_a_partition(tiling: list[tuple[str, BaseGeometry]]) -> None:
    geoms = np.array([g for _, g in tiling], dtype=object)
    assert len(geoms) > 2950
    assert bool(np.all(shapely.is_valid(geoms)))
    assert any(g.geom_type == "MultiPolygon" for g in geoms)
    union = shapely.union_all(geoms)
    outline = _outline(np.random.default_rng(20240601))
    assert union.symmetric_difference(outline).area < 1e-9 * outline.area
    assert math.isclose(float(shapely.area(geoms).sum()), outline.area, rel_tol=1e-9)


def test_locate_many_matches_brute_force(
    index: LocateIndex, tiling: list[tuple[str, BaseGeometry]]
) -> None:
    lons, lats = _random_points(tiling, 100_000, seed=1)
    got = index.locate_many(lons, lats)
    want, hits = brute_force_hits(tiling, lons, lats)
    assert got.dtype == np.int64 and got.shape == (100_000,)
    inside = int(np.count_nonzero(want >= 0))
    assert 20_000 < inside < 90_000  # both inside and outside points are exercised
    differ = np.flatnonzero(got != want)
    # contains_xy excludes boundaries, the index includes them: any disagreement must be a point
    # lying exactly on the boundary of the grid the index picked.
    for i in differ.tolist():
        assert got[i] >= 0, (lons[i], lats[i])
        assert tiling[got[i]][1].boundary.intersects(shapely.Point(lons[i], lats[i]))
    assert len(differ) <= 5
    assert int(hits.max()) <= 1


def test_default_lattice_resolves_most_points(
    tiling: list[tuple[str, BaseGeometry]],
) -> None:
    index = LocateIndex([c for c, _ in tiling], [g for _, g in tiling])
    lons, lats = _random_points(tiling, 50_000, seed=2)
    resolved = index.resolved_by_lattice(lons, lats)
    assert 0.7 < float(resolved.mean()) < 1.0  # both paths are taken
    assert index.lattice.nbytes <= 64 * 1024 * 1024
    assert index.lattice.nbytes == (index.lattice.nx * index.lattice.ny + 1) * 2  # int16


def test_lattice_agrees_with_authority_near_boundaries(
    index: LocateIndex, tiling: list[tuple[str, BaseGeometry]]
) -> None:
    """Vertices, and points a few ulps to a few metres away from them, as the STRtree says."""
    coords = shapely.get_coordinates(np.array([g for _, g in tiling], dtype=object))
    rng = np.random.default_rng(3)
    sample = coords[rng.choice(len(coords), 4000, replace=False)]
    offsets = [0.0, 1e-13, -1e-13, 1e-9, 3e-5]
    lons = np.concatenate([sample[:, 0] + d for d in offsets] + [sample[:, 0]] * 2)
    lats = np.concatenate([sample[:, 1] - d for d in offsets] + [sample[:, 1] + 1e-12] * 2)
    lons[-4000:] = np.nextafter(lons[-4000:], np.inf)
    got = index.locate_many(lons, lats)
    np.testing.assert_array_equal(got, authority(index, lons, lats))


@pytest.mark.filterwarnings("error")
def test_outside_points(index: LocateIndex, tiling: list[tuple[str, BaseGeometry]]) -> None:
    lake_centre = (CENTRE[0] + 0.05, CENTRE[1] - 0.03)
    sea = (CENTRE[0] + 0.3, CENTRE[1] - 0.2)
    outside = [
        (0.0, 0.0),
        (-180.0, 90.0),
        (121.9, 29.8),
        sea,
        lake_centre,
        (1e300, -1e300),
        (1.7e308, -1.7e308),
    ]
    lons = [p[0] for p in outside] + [math.nan, 121.3, math.inf]
    lats = [p[1] for p in outside] + [29.8, math.nan, 29.8]
    np.testing.assert_array_equal(index.locate_many(lons, lats), np.full(len(lons), -1))
    for lon, lat in zip(lons, lats, strict=True):
        assert index.locate_one(lon, lat) is None
        assert index.locate_index(lon, lat) == -1
    inside = index.locate_one(*CENTRE)
    assert inside is not None and inside in index.codes


def test_scalar_and_batch_agree(index: LocateIndex, tiling: list[tuple[str, BaseGeometry]]) -> None:
    lons, lats = _random_points(tiling, 3000, seed=4)
    coords = shapely.get_coordinates(np.array([g for _, g in tiling[:300]], dtype=object))
    lons = np.concatenate((lons, coords[:, 0]))
    lats = np.concatenate((lats, coords[:, 1]))
    batch = index.locate_many(lons, lats)
    for i, (lon, lat) in enumerate(zip(lons.tolist(), lats.tolist(), strict=True)):
        code = index.locate_one(lon, lat)
        assert code == (None if batch[i] < 0 else index.codes[batch[i]])


def test_empty_inputs(index: LocateIndex) -> None:
    out = index.locate_many([], [])
    assert out.dtype == np.int64 and out.shape == (0,)
    out = index.locate_many(np.empty((0, 3)), np.empty((0, 3)))
    assert out.shape == (0, 3)


def test_empty_index() -> None:
    empty = LocateIndex([], [])
    assert len(empty) == 0 and empty.codes == ()
    np.testing.assert_array_equal(empty.locate_many([1.0, 2.0], [3.0, 4.0]), [-1, -1])
    assert empty.locate_one(1.0, 3.0) is None


def test_shape_and_broadcast(index: LocateIndex) -> None:
    lons = np.array([[CENTRE[0], 0.0], [CENTRE[0], 0.0]])
    out = index.locate_many(lons, CENTRE[1])
    assert out.shape == (2, 2)
    assert out[0, 0] == out[1, 0] >= 0 and out[0, 1] == out[1, 1] == -1


def test_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        LocateIndex(["a", "b"], [box(0, 0, 1, 1)])


def test_rejects_non_polygonal_grids() -> None:
    with pytest.raises(TypeError, match="'b' is a LineString"):
        LocateIndex(["a", "b"], [box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell_size", [None, 0.25, 1.0])
def test_shared_edge_and_vertex_pick_lowest_index(reverse: bool, cell_size: float | None) -> None:
    squares = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2), box(1, 1, 2, 2)]
    codes = ["A", "B", "C", "D"]
    if reverse:
        squares, codes = squares[::-1], codes[::-1]
    index = LocateIndex(codes, squares, cell_size=cell_size)
    # On the A|B edge, on the A/C edge, at the corner shared by all four, on the outer edge.
    points = [(1.0, 0.5), (0.5, 1.0), (1.0, 1.0), (0.0, 0.5), (2.0, 2.0)]
    expected = [
        ["A", "B"],
        ["A", "C"],
        ["A", "B", "C", "D"],
        ["A"],
        ["D"],
    ]
    got = index.locate_many([p[0] for p in points], [p[1] for p in points])
    for (lon, lat), idx, touching in zip(points, got.tolist(), expected, strict=True):
        candidates = sorted(codes.index(c) for c in touching)
        assert idx == candidates[0]  # the lowest index among the touching grids
        assert index.locate_one(lon, lat) == codes[idx]
        assert index.locate_many([lon] * 3, [lat] * 3).tolist() == [idx] * 3  # deterministic
    assert index.locate_one(0.5, 0.5) == "A" and index.locate_one(1.5, 1.5) == "D"
    assert index.locate_one(2.0 + 1e-12, 1.0) is None


def test_shared_edges_of_the_tiling(
    index: LocateIndex, tiling: list[tuple[str, BaseGeometry]]
) -> None:
    """Vertices shared by several grids resolve to the lowest touching index, in both APIs."""
    geoms = np.array([g for _, g in tiling], dtype=object)
    coords = np.unique(shapely.get_coordinates(geoms[:400]), axis=0)
    points = shapely.points(coords)
    pairs = index.tree.query(points, predicate="intersects")
    touching = np.bincount(pairs[0], minlength=len(coords))
    shared = np.flatnonzero(touching >= 2)
    assert len(shared) > 200
    got = index.locate_many(coords[shared, 0], coords[shared, 1])
    for j, i in enumerate(shared.tolist()):
        grids = pairs[1][pairs[0] == i]
        assert got[j] == grids.min()
        assert index.locate_one(coords[i, 0], coords[i, 1]) == index.codes[grids.min()]


def test_codes_and_len(index: LocateIndex, tiling: list[tuple[str, BaseGeometry]]) -> None:
    assert len(index) == len(tiling)
    assert index.codes == tuple(c for c, _ in tiling)
    assert len(index.geometries) == len(tiling)


def test_brute_force_locate_helper() -> None:
    squares = [("A", box(0, 0, 1, 1)), ("B", box(1, 0, 2, 1)), ("C", box(5, 5, 6, 6))]
    got = brute_force_locate(squares, [0.5, 1.5, 3.0, 5.5, 1.0], [0.5, 0.5, 0.5, 5.5, 0.5])
    np.testing.assert_array_equal(got, [0, 1, -1, 2, -1])  # the shared edge is in neither
