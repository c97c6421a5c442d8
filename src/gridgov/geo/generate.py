"""Generate the demo city's town, village and grid polygons inside real county outlines."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from gridgov.geo.divisions import CITY, DISTRICT, GRID, TOWN, VILLAGE, Division, children_map

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[str, int, int], None]

CENTRES_FILE = "ningbo_centres.json"
KM_PER_DEGREE = 111.2  # geometry stays in lon/lat degrees; widths are given in km

# Mean grids per village before scaling to the target: urban communities are denser.
URBAN_GRIDS, URBAN_GRIDS_SPREAD = 6.0, 1.0
RURAL_GRIDS, RURAL_GRIDS_SPREAD = 3.5, 0.5

# Width (km, times sqrt of the number of urban children) of the urban core around a centre.
COUNTY_CORE_KM = 1.2
TOWN_CORE_KM = 0.3
STREET_CORE_KM = 0.3
# Rural children thin out towards the core: density 1 - (1 - floor)·exp(-d²/2(kσ)²).
RURAL_EXCLUSION = 0.7
RURAL_FLOOR = 0.2

CANDIDATES_PER_CHILD = 48
MIN_CANDIDATES = 384
LLOYD_ROUNDS = 4
PROGRESS_EVERY = 32


@dataclass(frozen=True, slots=True)
class GeneratedRegion:
    code: str
    name: str
    level: int
    parent_code: str | None
    geometry: BaseGeometry  # always a valid, non-empty MultiPolygon in WGS-84 lon/lat


@dataclass(frozen=True, slots=True)
class GeneratedCity:
    regions: list[GeneratedRegion]

    def at_level(self, level: int) -> list[GeneratedRegion]:
        return [r for r in self.regions if r.level == level]


def load_centres() -> dict[str, tuple[float, float]]:
    """The shipped approximate county seats (WGS-84 lon, lat), keyed by 12-digit county code."""
    ref = resources.files("gridgov.geo") / "data" / CENTRES_FILE
    with ref.open("r", encoding="utf-8") as fh:
        raw = json.load(fh)
    return {
        code: (float(lonlat[0]), float(lonlat[1]))
        for code, lonlat in raw.items()
        if not code.startswith("_")
    }


def grid_scale(divisions: Sequence[Division], target_grids: int) -> float:
    """Factor turning the per-village mean grid counts into a city total of about target_grids."""
    weight = sum(
        URBAN_GRIDS if d.is_urban else RURAL_GRIDS for d in divisions if d.level == VILLAGE
    )
    if weight <= 0:
        return 1.0
    return target_grids / weight


def generate_city(
    divisions: Sequence[Division],
    county_outlines: Mapping[str, BaseGeometry],
    *,
    centres: Mapping[str, tuple[float, float]] | None = None,
    target_grids: int = 12_000,
    seed: int = 2023,
    progress: Progress | None = None,
) -> GeneratedCity:
    """Tile every county outline with towns, villages and grids (Voronoi cells clipped to parents).

    Outlines are keyed by the 12-digit county code (the 6-digit prefix is accepted too). Output is
    ordered by level then code; the city's parent_code is None so the tree is self-contained.
    Each parent uses its own random stream seeded from (seed, parent code), so regenerating one
    county with ``generate_district`` reproduces exactly its part of the city.
    """
    cities = [d for d in divisions if d.level == CITY]
    if len(cities) != 1:
        raise ValueError(f"区划表应恰有一个市级行, 实有 {len(cities)} 个")
    city = cities[0]
    counties = [d for d in divisions if d.level == DISTRICT]
    if centres is None:
        centres = load_centres()
    kids = children_map(divisions)
    scale = grid_scale(divisions, target_grids)
    total = sum(1 for d in divisions if DISTRICT <= d.level <= VILLAGE)
    done = 0

    outlines: dict[str, BaseGeometry] = {}
    for county in counties:
        outline = county_outlines.get(county.code, county_outlines.get(county.code[:6]))
        if outline is None or outline.is_empty:
            raise ValueError(f"缺少区县 {county.name} ({county.code}) 的轮廓")
        if not outline.is_valid:
            raise ValueError(
                f"区县 {county.name} ({county.code}) 的轮廓无效: {shapely.is_valid_reason(outline)}"
            )
        outlines[county.code] = outline

    regions: list[GeneratedRegion] = []
    for county in counties:
        stage = county.name

        def tick(stage: str = stage) -> None:
            nonlocal done
            done += 1
            if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
                progress(stage, done, total)

        if progress is not None:
            progress(stage, done, total)
        regions.extend(
            generate_district(
                county,
                outlines[county.code],
                kids,
                centre=centres.get(county.code),
                grid_scale=scale,
                seed=seed,
                tick=tick,
            )
        )
    city_geometry = _as_multipolygon(shapely.union_all(list(outlines.values())))
    regions.append(GeneratedRegion(city.code, city.name, CITY, None, city_geometry))
    regions.sort(key=lambda r: (r.level, r.code))
    return GeneratedCity(regions)


def generate_district(
    county: Division,
    outline: BaseGeometry,
    children: Mapping[str, Sequence[Division]],
    *,
    centre: tuple[float, float] | None,
    grid_scale: float,
    seed: int = 2023,
    tick: Callable[[], None] | None = None,
) -> list[GeneratedRegion]:
    """One county's regions: the county itself (its outline), its towns, villages and grids."""
    county_geom = _as_multipolygon(outline)
    out = [GeneratedRegion(county.code, county.name, DISTRICT, county.parent_code, county_geom)]
    county_centre = _centre_inside(county_geom, centre)

    towns = list(children.get(county.code, ()))
    town_geoms, town_seeds = _split_parent(
        county.code, county_geom, towns, county_centre, COUNTY_CORE_KM, seed
    )
    if tick is not None:
        tick()
    for town, town_geom, town_seed in zip(towns, town_geoms, town_seeds, strict=True):
        out.append(GeneratedRegion(town.code, town.name, TOWN, county.code, town_geom))
        villages = list(children.get(town.code, ()))
        core_km = STREET_CORE_KM if town.is_urban else TOWN_CORE_KM
        village_geoms, _ = _split_parent(
            town.code,
            town_geom,
            villages,
            (float(town_seed[0]), float(town_seed[1])),
            core_km,
            seed,
        )
        if tick is not None:
            tick()
        for village, village_geom in zip(villages, village_geoms, strict=True):
            out.append(
                GeneratedRegion(village.code, village.name, VILLAGE, town.code, village_geom)
            )
            out.extend(_village_grids(village, village_geom, grid_scale, seed))
            if tick is not None:
                tick()
    return out


def _village_grids(
    village: Division, geom: BaseGeometry, scale: float, seed: int
) -> list[GeneratedRegion]:
    rng = _rng(seed, village.code)
    if village.is_urban:
        mean = URBAN_GRIDS + rng.uniform(-URBAN_GRIDS_SPREAD, URBAN_GRIDS_SPREAD)
    else:
        mean = RURAL_GRIDS + rng.uniform(-RURAL_GRIDS_SPREAD, RURAL_GRIDS_SPREAD)
    count = max(1, math.floor(scale * mean + rng.random()))
    if count > 999:
        raise ValueError(f"村社区 {village.code} 的网格数 {count} 超过 3 位序号")
    seeds = _pick_seeds(geom, [], count, None, 0.0, rng)
    cells = _voronoi_cells(geom, seeds)
    return [
        GeneratedRegion(
            f"{village.code}{i:03d}", f"{village.name}第{i}网格", GRID, village.code, cell
        )
        for i, cell in enumerate(cells, start=1)
    ]


def _rng(seed: int, code: str) -> np.random.Generator:
    return np.random.default_rng([seed, int(code)])


def _split_parent(
    code: str,
    geom: BaseGeometry,
    kids: Sequence[Division],
    centre: tuple[float, float] | None,
    core_km: float,
    seed: int,
) -> tuple[list[BaseGeometry], FloatArray]:
    """Cells for kids (in kids' order) tiling geom, and the seed point of each."""
    if not kids:
        return [], np.empty((0, 2))
    rng = _rng(seed, code)
    urban = [k.is_urban for k in kids]
    seeds = _pick_seeds(geom, urban, len(kids), centre, core_km, rng)
    return _voronoi_cells(geom, seeds), seeds


def _pick_seeds(
    geom: BaseGeometry,
    urban: Sequence[bool],
    n: int,
    centre: tuple[float, float] | None,
    core_km: float,
    rng: np.random.Generator,
) -> FloatArray:
    """n distinct seed points strictly inside geom, returned in the order of ``urban``.

    Urban children are drawn from a Gaussian core around centre (σ = core_km·sqrt(n_urban)), rural
    ones from the rest of the area; a few weighted Lloyd rounds on the same mixture density even out
    the shapes while keeping the core dense. Urban children then take the seeds nearest the centre
    (first code nearest), rural ones the others in angular order.
    """
    n_urban = sum(urban)
    n_rural = n - n_urban
    cand = _uniform_points(geom, max(MIN_CANDIDATES, CANDIDATES_PER_CHILD * n), rng)
    m = len(cand)
    c = None if centre is None or not n_urban or not n_rural else np.asarray(centre, dtype=float)
    if c is not None:
        sigma = core_km * math.sqrt(n_urban) / KM_PER_DEGREE
        sigma = min(sigma, _equivalent_radius_km(geom) / KM_PER_DEGREE)
        d2 = ((cand - c) ** 2).sum(axis=1)
        core = np.exp(-d2 / (2 * sigma**2)) + 1e-12
        rest = 1.0 - (1.0 - RURAL_FLOOR) * np.exp(-d2 / (2 * (RURAL_EXCLUSION * sigma) ** 2))
        core_p = core / core.sum()
        rest_p = rest / rest.sum()
        # Lloyd on density ρ settles at seed density ∝ sqrt(ρ); running it on ρ² keeps ∝ ρ.
        weights = (n_urban / n * core_p + n_rural / n * rest_p) ** 2
        weights /= weights.sum()
        first = rng.choice(m, size=n_urban, replace=False, p=core_p)
        rest_p[first] = 0.0
        second = rng.choice(m, size=n_rural, replace=False, p=rest_p / rest_p.sum())
        seeds = cand[np.concatenate([first, second])]
    else:
        weights = np.full(m, 1.0 / m)
        seeds = cand[rng.choice(m, size=n, replace=False)]

    for _ in range(LLOYD_ROUNDS):
        d2 = ((cand[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2)
        label = d2.argmin(axis=1)
        mass = np.bincount(label, weights=weights, minlength=n)
        sx = np.bincount(label, weights=weights * cand[:, 0], minlength=n)
        sy = np.bincount(label, weights=weights * cand[:, 1], minlength=n)
        moved = mass > 0
        new = seeds.copy()
        new[moved, 0] = sx[moved] / mass[moved]
        new[moved, 1] = sy[moved] / mass[moved]
        # A centroid can fall outside a non-convex parent: use its cluster's nearest candidate.
        outside = np.flatnonzero(moved & ~shapely.contains_xy(geom, new[:, 0], new[:, 1]))
        for j in outside:
            members = np.flatnonzero(label == j)
            k = members[((cand[members] - new[j]) ** 2).sum(axis=1).argmin()]
            new[j] = cand[k]
        if len(np.unique(new, axis=0)) < n:
            break
        seeds = new

    if c is None:
        ref = seeds.mean(axis=0)
        order = np.argsort(np.arctan2(seeds[:, 1] - ref[1], seeds[:, 0] - ref[0]), kind="stable")
        ordered: FloatArray = seeds[order]
        return ordered
    dist = np.hypot(seeds[:, 0] - c[0], seeds[:, 1] - c[1])
    by_dist = np.argsort(dist, kind="stable")
    near, far = by_dist[:n_urban], by_dist[n_urban:]
    angle = np.arctan2(seeds[far, 1] - c[1], seeds[far, 0] - c[0])
    far = far[np.argsort(angle, kind="stable")]
    out: FloatArray = np.empty_like(seeds)
    flags = np.asarray(urban, dtype=bool)
    out[flags] = seeds[near]
    out[~flags] = seeds[far]
    return out


def _uniform_points(geom: BaseGeometry, k: int, rng: np.random.Generator) -> FloatArray:
    """k points uniformly distributed strictly inside geom (triangulate, then sample triangles)."""
    try:
        tris = shapely.get_parts(shapely.constrained_delaunay_triangles(geom))
        xy = shapely.get_coordinates(tris)
        ok = len(xy) == 4 * len(tris) and len(tris) > 0
    except GEOSException:
        ok = False
    if ok:
        corners = xy.reshape(-1, 4, 2)
        a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
        ab, ac = b - a, c - a
        area = 0.5 * np.abs(ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0])
        ok = abs(area.sum() - geom.area) <= 1e-6 * geom.area
    out: list[FloatArray] = []
    have = 0
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(1000):
        want = int((k - have) * 1.1) + 8
        if ok:
            tri = rng.choice(len(area), size=want, p=area / area.sum())
            r = rng.random((want, 2))
            flip = r.sum(axis=1) > 1
            r[flip] = 1 - r[flip]
            pts = a[tri] + r[:, :1] * ab[tri] + r[:, 1:] * ac[tri]
        else:
            pts = rng.uniform((minx, miny), (maxx, maxy), size=(want * 4, 2))
        pts = pts[shapely.contains_xy(geom, pts[:, 0], pts[:, 1])]
        out.append(pts)
        have += len(pts)
        if have >= k:
            return np.concatenate(out)[:k]
    raise ValueError("无法在多边形内取样")  # pragma: no cover - degenerate geometry


def _voronoi_cells(geom: BaseGeometry, seeds: FloatArray) -> list[BaseGeometry]:
    """Voronoi cells of seeds clipped to geom, one MultiPolygon per seed, in seed order."""
    n = len(seeds)
    if n == 1:
        return [_as_multipolygon(geom)]
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=geom, ordered=True)
    cells = shapely.get_parts(diagram)
    points = shapely.points(seeds)
    if len(cells) != n or not shapely.contains(cells, points).all():
        tree = shapely.STRtree(cells)
        point_idx, cell_idx = tree.query(points, predicate="within")
        if len(point_idx) != n or len(set(point_idx.tolist())) != n:
            raise ValueError("Voronoi 单元与种子点无法一一对应")
        matched = np.empty(n, dtype=object)
        matched[point_idx] = cells[cell_idx]
        cells = matched
    clipped = shapely.intersection(cells, geom)
    out = [_as_multipolygon(c) for c in clipped]
    for cell in out:
        if cell.is_empty:  # pragma: no cover - a seed strictly inside geom lies in its own cell
            raise ValueError("生成了空的区域")
    return out


def _as_multipolygon(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal parts of geom (dropping lines/points from overlay output) as a MultiPolygon."""
    polys: list[BaseGeometry] = []
    stack = [geom]
    while stack:
        g = stack.pop()
        kind = g.geom_type
        if kind == "Polygon":
            if not g.is_empty:
                polys.append(g)
        elif kind in ("MultiPolygon", "GeometryCollection"):
            stack.extend(reversed(list(shapely.get_parts(g))))
    return MultiPolygon(polys)


def _centre_inside(geom: BaseGeometry, centre: tuple[float, float] | None) -> tuple[float, float]:
    """centre itself if inside geom, else the nearest point of geom; without one, a point inside."""
    if centre is None:
        p = geom.representative_point()
        return (float(p.x), float(p.y))
    point = Point(centre)
    if geom.contains(point):
        return (float(centre[0]), float(centre[1]))
    nearest = nearest_points(geom, point)[0]
    return (float(nearest.x), float(nearest.y))


def _equivalent_radius_km(geom: BaseGeometry) -> float:
    """Radius of the disc with geom's area, in km (degree area scaled at the parent's latitude)."""
    lat = math.radians(geom.centroid.y)
    area_km2 = geom.area * KM_PER_DEGREE**2 * math.cos(lat)
    return math.sqrt(area_km2 / math.pi)
