"""The region tree in the database: counts, tiling of stored geometry, import all-or-nothing, locate."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely import affinity
from shapely.geometry import box
from sqlalchemy import func, select
from tests.conftest import NOW

from gridgov.geo import service as geo
from gridgov.geo.divisions import load_divisions
from gridgov.geo.gridfile import GridFeature, GridFile, write_grid_file
from gridgov.geo.importer import import_grid_file
from gridgov.geo.models import Region

DATA = Path(__file__).resolve().parents[2] / "src/gridgov/geo/data/ningbo_divisions_2023.csv"


def test_hierarchy_counts_equal_the_data_file(session) -> None:  # type: ignore[no-untyped-def]
    with DATA.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    expected: dict[int, int] = {}
    for r in rows:
        expected[int(r["level"])] = expected.get(int(r["level"]), 0) + 1
    counts = geo.counts_by_level(session)
    assert {lv: counts[lv] for lv in (1, 2, 3, 4)} == expected == {1: 1, 2: 10, 3: 162, 4: 3042}
    assert 11_000 <= counts[5] <= 13_000
    stored = dict(session.execute(select(Region.code, Region.parent_code)).all())
    for r in rows:
        assert stored[r["code"]] == (r["parent_code"] if r["level"] != "1" else None)


def test_reloading_divisions_changes_nothing(session) -> None:  # type: ignore[no-untyped-def]
    assert geo.load_division_tree(session, load_divisions(), now=NOW) == 0


def test_stored_levels_tile_their_parents(session) -> None:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(Region.code, Region.level, Region.parent_code, Region.geometry)
    ).all()
    geoms = {r.code: shapely.from_wkb(r.geometry) for r in rows}
    kids: dict[str, list[str]] = {}
    for r in rows:
        if r.parent_code:
            kids.setdefault(r.parent_code, []).append(r.code)
    for parent, children in kids.items():
        total = sum(geoms[c].area for c in children)
        assert total == pytest.approx(geoms[parent].area, rel=1e-6), parent


def _village_with_grids(session, n_min: int = 3, *, last: bool = False) -> str:  # type: ignore[no-untyped-def]
    sub = (
        select(Region.parent_code, func.count().label("n"))
        .where(Region.level == 5)
        .group_by(Region.parent_code)
        .subquery()
    )
    order = sub.c.parent_code.desc() if last else sub.c.parent_code
    return session.scalar(
        select(sub.c.parent_code).where(sub.c.n >= n_min).order_by(order).limit(1)
    )


def _grid_file(session, village: str) -> list[GridFeature]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(Region.code, Region.name, Region.geometry)
        .where(Region.level == 5, Region.parent_code == village)
        .order_by(Region.code)
    ).all()
    return [
        GridFeature(i + 1, r.code, r.name, shapely.from_wkb(r.geometry)) for i, r in enumerate(rows)
    ]


def _snapshot(session) -> str:  # type: ignore[no-untyped-def]
    h = hashlib.sha256()
    for code, wkb, name in session.execute(
        select(Region.code, Region.geometry, Region.name)
        .where(Region.level == 5)
        .order_by(Region.code)
    ):
        h.update(code.encode() + (wkb or b"") + name.encode())
    return h.hexdigest()


def _with(feats: list[GridFeature], i: int, **changes) -> list[GridFeature]:  # type: ignore[no-untyped-def]
    f = feats[i]
    new = GridFeature(
        f.row, changes.get("code", f.code), f.name, changes.get("geometry", f.geometry)
    )
    return [*feats[:i], new, *feats[i + 1 :]]


def _faulty_files(feats: list[GridFeature], village_geom) -> dict[str, GridFile]:  # type: ignore[no-untyped-def]
    g0 = feats[0].geometry
    minx, miny, maxx, maxy = g0.bounds
    bowtie = shapely.Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy), (minx, miny)])
    cx, cy = g0.representative_point().coords[0]
    _, _, vmaxx, vmaxy = village_geom.bounds
    sticking_out = shapely.union(g0, box(vmaxx - 1e-4, vmaxy - 1e-4, vmaxx + 0.01, vmaxy + 0.01))
    # Overlap: grow grid 0 into its neighbours; gap: shrink it.
    grown = g0.buffer(0.0005)
    shrunk = g0.buffer(-0.0003)
    projected = [
        GridFeature(
            f.row, f.code, f.name, affinity.scale(f.geometry, 111_000, 111_000, origin=(0, 0))
        )
        for f in feats
    ]
    dup = [*feats, GridFeature(len(feats) + 1, feats[0].code, "重复", feats[0].geometry)]
    unknown = _with(feats, 1, code="999999999999001")
    return {
        "invalid_ring": GridFile(
            "bowtie.geojson", "EPSG:4326", tuple(_with(feats, 0, geometry=bowtie))
        ),
        "overlap": GridFile("overlap.geojson", "EPSG:4326", tuple(_with(feats, 0, geometry=grown))),
        "gap": GridFile("gap.geojson", "EPSG:4326", tuple(_with(feats, 0, geometry=shrunk))),
        "outside_village": GridFile(
            "out.geojson", "EPSG:4326", tuple(_with(feats, 0, geometry=sticking_out))
        ),
        "unknown_code": GridFile("unknown.geojson", "EPSG:4326", tuple(unknown)),
        "duplicate_code": GridFile("dup.geojson", "EPSG:4326", tuple(dup)),
        "wrong_crs": GridFile("mercator.gpkg", "EPSG:3857", tuple(projected)),
    } | {"_center": (cx, cy)}  # type: ignore[dict-item]


FAULTS = [
    "invalid_ring",
    "overlap",
    "gap",
    "outside_village",
    "unknown_code",
    "duplicate_code",
    "wrong_crs",
]


@pytest.mark.parametrize("kind", FAULTS)
def test_import_rejects_each_fault_and_leaves_database_unchanged(session, kind: str) -> None:  # type: ignore[no-untyped-def]
    village = _village_with_grids(session)
    feats = _grid_file(session, village)
    village_geom = shapely.from_wkb(session.get(Region, village).geometry)
    files = _faulty_files(feats, village_geom)
    before = _snapshot(session)
    report = import_grid_file(session, files[kind], now=NOW)
    assert not report.written
    kinds = {f.kind for f in report.faults}
    assert kind in kinds, report.faults
    fault = next(f for f in report.faults if f.kind == kind)
    if kind == "wrong_crs":
        assert "坐标" in fault.message or "EPSG" in fault.message
    elif kind == "gap":
        assert village in fault.message
    elif kind == "unknown_code":
        assert "999999999999001" in fault.message
    else:
        assert feats[0].code in fault.message
    if kind not in ("wrong_crs", "unknown_code", "duplicate_code"):
        assert fault.lon is not None and fault.lat is not None
        assert village_geom.buffer(0.02).contains(shapely.Point(fault.lon, fault.lat))
    session.expire_all()
    assert _snapshot(session) == before


def test_import_replaces_a_villages_grids_and_refreshes_locate(session) -> None:  # type: ignore[no-untyped-def]
    village = _village_with_grids(session, last=True)  # no demo account sits there
    vgeom = shapely.from_wkb(session.get(Region, village).geometry)
    minx, miny, maxx, maxy = vgeom.bounds
    mid = (minx + maxx) / 2
    west = shapely.intersection(vgeom, box(minx - 1, miny - 1, mid, maxy + 1))
    east = shapely.difference(vgeom, west)
    feats = (
        GridFeature(1, village + "901", "西片网格", west),
        GridFeature(2, village + "902", "东片网格", east),
    )
    old_codes = {f.code for f in _grid_file(session, village)}
    report = import_grid_file(session, GridFile("new.geojson", "EPSG:4326", feats), now=NOW)
    assert report.written and report.inserted == 2
    assert report.deleted == len(old_codes)
    codes = set(session.scalars(select(Region.code).where(Region.parent_code == village)).all())
    assert codes == {village + "901", village + "902"}
    p = east.representative_point()
    assert geo.locate(session, p.x, p.y).grid.code == village + "902"


def test_import_refuses_to_delete_a_grid_with_accounts(session) -> None:  # type: ignore[no-untyped-def]
    from gridgov.accounts.models import User

    worker = session.scalar(select(User).where(User.username == "grid_worker"))
    village = worker.region_code[:12]
    vgeom = shapely.from_wkb(session.get(Region, village).geometry)
    before = _snapshot(session)
    feats = (GridFeature(1, village + "901", "整村网格", vgeom),)
    report = import_grid_file(session, GridFile("one.geojson", "EPSG:4326", feats), now=NOW)
    assert not report.ok and not report.written
    in_use = [f for f in report.faults if f.kind == "grid_in_use"]
    assert [f.code for f in in_use] == [worker.region_code]
    assert "grid_worker" in in_use[0].message
    assert in_use[0].lon is not None and in_use[0].lat is not None
    session.expire_all()
    assert _snapshot(session) == before


def test_export_then_import_round_trip(session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gridgov.geo.gridfile import read_grid_file

    village = _village_with_grids(session)
    feats = _grid_file(session, village)
    path = tmp_path / "grids.gpkg"
    write_grid_file(path, [(f.code, f.name, f.geometry, {}) for f in feats])
    before = _snapshot(session)
    report = import_grid_file(session, read_grid_file(path), now=NOW)
    assert report.ok and report.written and report.inserted == 0 and report.deleted == 0
    session.expire_all()
    assert _snapshot(session) == before


def test_batch_locate_agrees_with_brute_force(session) -> None:  # type: ignore[no-untyped-def]
    from tests.geo_helpers import brute_force_locate

    rows = session.execute(
        select(Region.code, Region.geometry).where(Region.level == 5).order_by(Region.code)
    ).all()
    codes_geoms = [(r.code, shapely.from_wkb(r.geometry)) for r in rows]
    rng = np.random.default_rng(7)
    city = shapely.from_wkb(session.get(Region, "330200000000").geometry)
    minx, miny, maxx, maxy = city.bounds
    lons = rng.uniform(minx - 0.05, maxx + 0.05, 100_000)
    lats = rng.uniform(miny - 0.05, maxy + 0.05, 100_000)
    got = geo.locate_many(session, lons, lats)
    expected = brute_force_locate(codes_geoms, lons, lats)
    exp_codes = [codes_geoms[i][0] if i >= 0 else None for i in np.asarray(expected).tolist()]
    mismatches = [(i, got[i], exp_codes[i]) for i in range(len(got)) if got[i] != exp_codes[i]]
    assert not mismatches, mismatches[:5]
    inside = sum(c is not None for c in got)
    assert 20_000 < inside < 100_000  # the bbox holds sea and neighbours, not only Ningbo


def test_locate_outside_answers_outside(session) -> None:  # type: ignore[no-untyped-def]
    res = geo.locate(session, 116.4, 39.9)
    assert not res.inside and res.grid is None and res.path == []
