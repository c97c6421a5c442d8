"""Benchmark batch point-in-grid lookup (LocateIndex) over ~12,000 grids on one core."""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gridgov.geo.locate import LocateIndex

# Ningbo-like extent (WGS-84): the city spans about lon 120.9-122.3, lat 28.8-30.5.
BBOX = (120.9, 28.8, 122.3, 30.5)
CENTRE = (121.55, 29.75)


def _blob(
    cx: float, cy: float, radius: float, rng: np.random.Generator, n: int = 96
) -> BaseGeometry:
    """An irregular star-shaped polygon (smooth random radius) around (cx, cy)."""
    theta = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 7):
        r += rng.uniform(0.02, 0.12) / k * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    r *= radius
    return shapely.Polygon(np.column_stack((cx + r * np.cos(theta) * 1.15, cy + r * np.sin(theta))))


def city_outline(seed: int = 7) -> BaseGeometry:
    """A Ningbo-sized outline (~9,800 km²): a mainland with a bay, plus an island chain."""
    rng = np.random.default_rng(seed)
    mainland = _blob(CENTRE[0], CENTRE[1], 0.5, rng, n=240)
    bay = _blob(121.95, 29.55, 0.12, rng)
    land = mainland.difference(bay)
    islands = [
        _blob(122.05 + 0.07 * i, 30.0 - 0.05 * i, 0.03 + 0.01 * (i % 3), rng) for i in range(5)
    ]
    outline = shapely.union_all([land, *islands])
    return shapely.intersection(outline, shapely.box(*BBOX))


def synthetic_city(n_grids: int = 12_000, seed: int = 7) -> tuple[list[str], list[BaseGeometry]]:
    """Voronoi cells of clustered seeds (dense urban centres, sparse countryside) in the outline."""
    rng = np.random.default_rng(seed)
    outline = city_outline(seed)
    shapely.prepare(outline)
    minx, miny, maxx, maxy = outline.bounds
    centres = [
        (121.55, 29.87, 0.05),
        (121.62, 29.80, 0.04),
        (121.45, 29.70, 0.03),
        (121.20, 30.05, 0.03),
        (121.43, 29.30, 0.025),
    ]
    seeds: list[np.ndarray] = []
    per_centre = int(n_grids * 0.7) // len(centres)
    for cx, cy, sigma in centres:
        urban = rng.normal((cx, cy), sigma, size=(per_centre, 2))
        seeds.append(urban[shapely.contains_xy(outline, urban[:, 0], urban[:, 1])])
    need = n_grids - sum(len(s) for s in seeds)
    while need > 0:
        cand = rng.uniform((minx, miny), (maxx, maxy), size=(need * 3, 2))
        cand = cand[shapely.contains_xy(outline, cand[:, 0], cand[:, 1])][:need]
        seeds.append(cand)
        need -= len(cand)
    pts = np.concatenate(seeds)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=shapely.box(*BBOX))
    )
    clipped = shapely.intersection(cells, outline)
    clipped = clipped[~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)]
    clipped = np.array([_polygonal(g) for g in clipped], dtype=object)
    codes = [f"330200{i:09d}" for i in range(len(clipped))]
    return codes, list(clipped)


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Drop lines/points that an intersection may leave in a GeometryCollection."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0]


def demo_city(seed: int) -> tuple[list[str], list[BaseGeometry]] | None:
    """Grids of the demo city from gridgov.geo.generate, or None if it is not available."""
    try:  # imported lazily: the generator is developed separately and may be missing
        from gridgov.geo.divisions import load_divisions
        from gridgov.geo.generate import generate_city
        from gridgov.geo.outlines import load_county_outlines
    except ImportError as exc:
        print(f"--grids demo: the demo generator is not available yet ({exc}).", file=sys.stderr)
        return None
    try:
        from gridgov.geo.generate import load_centres

        city = generate_city(
            load_divisions(), load_county_outlines(), centres=load_centres(), seed=seed
        )
    except Exception as exc:  # the generator is work in progress; report and fall back
        print(f"--grids demo: generate_city failed ({type(exc).__name__}: {exc}).", file=sys.stderr)
        return None
    grids = [r for r in city.regions if r.level == 5]
    return [r.code for r in grids], [r.geometry for r in grids]


def generate_and_import(seed: int, db: str) -> None:
    """Time generating the whole demo city and importing its grids file into a database.

    The database gets the code tree and the generated district/town/village polygons; then the
    grids go through the real import path: GeoPackage read (pyogrio), full validation (Shapely,
    vectorised), batched executemany inserts (SQLAlchemy), one transaction.
    """
    import tempfile
    from pathlib import Path

    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.db.migrate import upgrade
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import load_divisions
    from gridgov.geo.generate import generate_city, load_centres
    from gridgov.geo.gridfile import read_grid_file, write_grid_file
    from gridgov.geo.importer import import_grid_file
    from gridgov.geo.outlines import load_county_outlines

    divisions = load_divisions()
    t0 = time.perf_counter()
    city = generate_city(divisions, load_county_outlines(), centres=load_centres(), seed=seed)
    t_gen = time.perf_counter() - t0
    grids = [r for r in city.regions if r.level == 5]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}" if db == "sqlite" else db
        gpkg = Path(tmp) / "grids.gpkg"
        write_grid_file(gpkg, [(g.code, g.name, g.geometry, {}) for g in grids])
        engine = make_engine(url)
        upgrade(engine)
        factory = make_sessionmaker(engine)
        with session_scope(factory) as session:
            geo.load_division_tree(session, divisions, now=clock.now())
            upper = [
                geo.RegionGeometry(r.code, r.name, r.level, r.parent_code, r.geometry)
                for r in city.regions
                if r.level < 5
            ]
            geo.store_geometries(session, upper, source="generated", now=clock.now())
        t0 = time.perf_counter()
        grid_file = read_grid_file(gpkg)
        t_read = time.perf_counter() - t0
        with session_scope(factory) as session:
            t0 = time.perf_counter()
            report = import_grid_file(session, grid_file, now=clock.now())
            t_import = time.perf_counter() - t0
        engine.dispose()
    backend = "SQLite" if db == "sqlite" else "PostgreSQL"
    print(f"generate the whole city (towns, villages, {len(grids):,} grids): {t_gen:.2f} s")
    print(
        f"import {report.features:,} grids into {backend}: read GeoPackage {t_read:.2f} s, "
        f"validate + write {t_import:.2f} s (faults: {len(report.faults)}, "
        f"inserted: {report.inserted:,})"
    )


def _time(fn: object, repeats: int) -> list[float]:
    assert callable(fn)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--grids", choices=("synthetic", "demo"), default="demo")
    parser.add_argument("--n-grids", type=int, default=12_000, help="synthetic mode only")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tree-only", action="store_true", help="also time the bare STRtree")
    parser.add_argument(
        "--inside", action="store_true", help="draw the points inside the grids only (harder)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    parser.add_argument(
        "--import-db",
        default="sqlite",
        help="also time importing the demo city's grids: 'sqlite' (a temporary file), a "
        "postgresql+psycopg:// URL of an EMPTY database, or 'none'",
    )
    args = parser.parse_args(argv)

    # One core: pin the process (numpy indexing and GEOS queries are single-threaded anyway).
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        print(f"pinned to CPU {cpu}")

    t0 = time.perf_counter()
    data = demo_city(args.seed) if args.grids == "demo" else None
    if data is None:
        if args.grids == "demo":
            print("falling back to --grids synthetic", file=sys.stderr)
        data = synthetic_city(args.n_grids, args.seed)
    codes, geoms = data
    print(f"grids: {len(codes)}, generated in {time.perf_counter() - t0:.2f} s")

    t0 = time.perf_counter()
    index = LocateIndex(codes, geoms)
    build = time.perf_counter() - t0
    info = index.lattice
    print(
        f"index build: {build:.2f} s; lattice {info.nx} x {info.ny} cells of "
        f"{info.cell_size:.6f} deg, {info.nbytes / 2**20:.1f} MiB, "
        f"{info.pure_share:.1%} of cells pure"
    )

    rng = np.random.default_rng(args.seed + 1)
    lons = rng.uniform(BBOX[0], BBOX[2], args.points)
    lats = rng.uniform(BBOX[1], BBOX[3], args.points)
    if args.inside:
        # Rejection sampling against the index itself: keep points that fall in some grid.
        while True:
            keep = index.locate_many(lons, lats) >= 0
            lons, lats = lons[keep], lats[keep]
            if len(lons) >= args.points:
                lons, lats = lons[: args.points], lats[: args.points]
                break
            more = args.points - len(lons)
            lons = np.concatenate((lons, rng.uniform(BBOX[0], BBOX[2], 4 * more)))
            lats = np.concatenate((lats, rng.uniform(BBOX[1], BBOX[3], 4 * more)))
    result = index.locate_many(lons, lats)
    share = float(np.mean(index.resolved_by_lattice(lons, lats)))
    where = "inside the grids" if args.inside else "uniform in the bbox"
    print(
        f"points: {args.points:,} {where}; in a grid: {np.mean(result >= 0):.1%}; "
        f"resolved by the lattice: {share:.1%}"
    )

    times = _time(lambda: index.locate_many(lons, lats), args.repeats)
    best, med = min(times), statistics.median(times)
    print(
        f"locate_many: best {args.points / best:,.0f} pts/s ({best * 1e3:.1f} ms), "
        f"median {args.points / med:,.0f} pts/s over {args.repeats} runs"
    )

    if args.grids == "demo" and args.import_db != "none":
        generate_and_import(args.seed, args.import_db)

    if args.tree_only:
        tree = index.tree

        def bare() -> None:
            tree.query(shapely.points(lons, lats), predicate="intersects")

        times = _time(bare, args.repeats)
        print(f"bare STRtree query: best {args.points / min(times):,.0f} pts/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
