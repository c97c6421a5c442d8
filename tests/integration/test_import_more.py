"""Grid import against the database: bare villages, stored neighbours, accounts, empty files."""

from __future__ import annotations

import hashlib

import pytest
import shapely
from shapely.geometry import box
from sqlalchemy import delete, func, select, update
from tests.conftest import NOW

from gridgov.accounts.models import User
from gridgov.accounts.service import accounts_at
from gridgov.geo.gridfile import GridFeature, GridFile
from gridgov.geo.importer import ImportReport, import_grid_file
from gridgov.geo.models import GridLeader, Region


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


def _stored_grids(session, village: str) -> list[GridFeature]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(Region.code, Region.name, Region.geometry)
        .where(Region.level == 5, Region.parent_code == village)
        .order_by(Region.code)
    ).all()
    return [
        GridFeature(i + 1, r.code, r.name, shapely.from_wkb(r.geometry)) for i, r in enumerate(rows)
    ]


def _snapshot(session) -> str:  # type: ignore[no-untyped-def]
    """Hash of every grid (code, name, geometry), the village boundaries and the grid leaders."""
    session.expire_all()
    h = hashlib.sha256()
    for code, wkb, name in session.execute(
        select(Region.code, Region.geometry, Region.name)
        .where(Region.level.in_((4, 5)))
        .order_by(Region.code)
    ):
        h.update(code.encode() + (wkb or b"-") + name.encode())
    for grid_code, user_id in session.execute(
        select(GridLeader.grid_code, GridLeader.user_id).order_by(GridLeader.grid_code)
    ):
        h.update(f"{grid_code}:{user_id}".encode())
    return h.hexdigest()


def _make_bare(session, village: str) -> None:  # type: ignore[no-untyped-def]
    """The village loses its stored boundary, as in a city that imports grids only."""
    session.execute(update(Region).where(Region.code == village).values(geometry=None))
    session.flush()


def _both(session, grid_file: GridFile) -> list[ImportReport]:  # type: ignore[no-untyped-def]
    """Validate, then import; both must refuse and leave the database as it was."""
    before = _snapshot(session)
    reports = [
        import_grid_file(session, grid_file, now=NOW, write=False),
        import_grid_file(session, grid_file, now=NOW),
    ]
    for report in reports:
        assert not report.ok and not report.written
    assert _snapshot(session) == before
    return reports


def _with_geometry(feats: list[GridFeature], i: int, geom: shapely.Geometry) -> list[GridFeature]:
    f = feats[i]
    return [*feats[:i], GridFeature(f.row, f.code, f.name, geom), *feats[i + 1 :]]


def test_bare_village_hole_inside_a_grid_is_a_gap(session) -> None:  # type: ignore[no-untyped-def]
    village = _village_with_grids(session)
    feats = _stored_grids(session, village)
    g0 = feats[0].geometry
    centre = g0.representative_point()
    radius = 3e-4
    while not g0.contains(centre.buffer(radius)):
        radius /= 2
    hole = centre.buffer(radius)
    holed = shapely.difference(g0, hole)
    assert holed.is_valid and len(shapely.get_parts(holed)[0].interiors) == 1
    _make_bare(session, village)
    grid_file = GridFile("holed.geojson", "EPSG:4326", tuple(_with_geometry(feats, 0, holed)))
    for report in _both(session, grid_file):
        assert [f.kind for f in report.faults] == ["gap"], report.faults
        fault = report.faults[0]
        assert fault.code == village and village in fault.message
        assert fault.lon is not None and fault.lat is not None
        assert hole.buffer(1e-9).contains(shapely.Point(fault.lon, fault.lat))


def _shared_edge(a: GridFeature, b: GridFeature) -> shapely.Geometry:
    return shapely.intersection(a.geometry.boundary, b.geometry.boundary)


def test_bare_village_hole_between_grids_is_a_gap(session) -> None:  # type: ignore[no-untyped-def]
    village = _village_with_grids(session, last=True)
    feats = _stored_grids(session, village)
    outline = shapely.union_all([f.geometry for f in feats]).boundary
    # The middle of an edge shared by two grids, away from the village's outline.
    pairs = [(a, b) for a in feats for b in feats if a.code < b.code]
    a, b = max(pairs, key=lambda p: _shared_edge(p[0], p[1]).length)
    shared = _shared_edge(a, b)
    assert shared.length > 0
    centre = shared.interpolate(0.5, normalized=True)
    radius = min(3e-4, outline.distance(centre) / 3)
    hole = centre.buffer(radius)
    cut = [GridFeature(f.row, f.code, f.name, f.geometry.difference(hole)) for f in feats]
    _make_bare(session, village)
    for report in _both(session, GridFile("hole.geojson", "EPSG:4326", tuple(cut))):
        assert [f.kind for f in report.faults] == ["gap"], report.faults
        fault = report.faults[0]
        assert fault.code == village and village in fault.message
        assert a.code in fault.message and b.code in fault.message  # the grids around it
        assert hole.buffer(1e-9).contains(shapely.Point(fault.lon, fault.lat))


def _neighbour_of(
    session, village: str, feats: list[GridFeature]
) -> tuple[int, str, shapely.Geometry]:  # type: ignore[no-untyped-def]
    """A grid of the village and a stored grid of another village sharing an edge with it."""
    for i, f in enumerate(feats):
        minx, miny, maxx, maxy = f.geometry.bounds
        rows = session.execute(
            select(Region.code, Region.geometry).where(
                Region.level == 5,
                Region.parent_code != village,
                Region.max_lon >= minx,
                Region.min_lon <= maxx,
                Region.max_lat >= miny,
                Region.min_lat <= maxy,
            )
        ).all()
        for code, wkb in sorted(rows):
            other = shapely.from_wkb(wkb)
            if shapely.intersection(f.geometry.boundary, other.boundary).length > 1e-5:
                return i, code, other
    raise AssertionError(f"no grid of {village} borders another village's grid")


def test_bare_village_grid_over_a_stored_neighbour_is_an_overlap(session) -> None:  # type: ignore[no-untyped-def]
    village = _village_with_grids(session)
    feats = _stored_grids(session, village)
    i, neighbour, other = _neighbour_of(session, village, feats)
    grown = shapely.union(feats[i].geometry, other)
    _make_bare(session, village)
    grid_file = GridFile("grown.geojson", "EPSG:4326", tuple(_with_geometry(feats, i, grown)))
    for report in _both(session, grid_file):
        overlaps = [f for f in report.faults if f.kind == "overlap"]
        assert overlaps, report.faults
        fault = next(f for f in overlaps if neighbour in f.message)
        assert fault.code == feats[i].code and feats[i].code in fault.message
        assert "平方米" in fault.message
        assert fault.lon is not None and fault.lat is not None
        assert other.buffer(1e-9).contains(shapely.Point(fault.lon, fault.lat))


def test_deleting_a_grid_with_accounts_is_a_validation_fault(session) -> None:  # type: ignore[no-untyped-def]
    worker = session.scalar(select(User).where(User.username == "grid_worker"))
    grid = worker.region_code
    village = grid[:12]
    vgeom = shapely.from_wkb(session.get(Region, village).geometry)
    grid_file = GridFile(
        "one.geojson", "EPSG:4326", (GridFeature(1, village + "901", "整村网格", vgeom),)
    )
    for report in _both(session, grid_file):
        assert {f.kind for f in report.faults} == {"grid_in_use"}, report.faults
        fault = next(f for f in report.faults if f.code == grid)
        assert "grid_worker" in fault.message and grid in fault.message
        assert "保留" in fault.message  # says what to do
        assert fault.lon is not None and fault.lat is not None
        # grid_worker leads its own grid (demo data); that appointment would go with it.
        assert report.leaders_removed >= 1


def test_empty_file_is_a_fault(session) -> None:  # type: ignore[no-untyped-def]
    for report in _both(session, GridFile("empty.geojson", "EPSG:4326", ())):
        assert [f.kind for f in report.faults] == ["empty_file"]
        assert "empty.geojson" in report.faults[0].message
        assert "没有网格要素" in report.faults[0].message


def test_clean_import_of_a_bare_village_writes_grids_and_boundary(session) -> None:  # type: ignore[no-untyped-def]
    village = _village_with_grids(session, last=True)
    vgeom = shapely.from_wkb(session.get(Region, village).geometry)
    old = [f.code for f in _stored_grids(session, village)]
    assert accounts_at(session, region_codes=[*old, village]) == []
    # A city that has neither this village's boundary nor its grids yet.
    session.execute(delete(GridLeader).where(GridLeader.grid_code.in_(old)))
    session.execute(delete(Region).where(Region.code.in_(old)))
    _make_bare(session, village)

    minx, miny, maxx, maxy = vgeom.bounds
    mid = (minx + maxx) / 2
    west = shapely.intersection(vgeom, box(minx - 1, miny - 1, mid, maxy + 1))
    east = shapely.difference(vgeom, west)
    feats = (
        GridFeature(1, village + "001", "西片网格", west),
        GridFeature(2, village + "002", "东片网格", east),
    )
    checked = import_grid_file(
        session, GridFile("bare.geojson", "EPSG:4326", feats), now=NOW, write=False
    )
    assert checked.ok and not checked.written, checked.faults
    report = import_grid_file(session, GridFile("bare.geojson", "EPSG:4326", feats), now=NOW)
    assert report.ok and report.written, report.faults
    assert (report.inserted, report.deleted, report.leaders_removed) == (2, 0, 0)
    session.expire_all()
    codes = set(session.scalars(select(Region.code).where(Region.parent_code == village)).all())
    assert codes == {village + "001", village + "002"}
    stored = session.get(Region, village)
    assert stored.geometry is not None and stored.geometry_source == "imported"
    boundary = shapely.from_wkb(stored.geometry)
    assert boundary.area == pytest.approx(vgeom.area, rel=1e-6)
    assert shapely.symmetric_difference(boundary, vgeom).area < 1e-10
