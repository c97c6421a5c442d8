"""Import a real city's grids from a file: validate everything first, then write all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridgov.accounts.service import accounts_at
from gridgov.geo import service as geo
from gridgov.geo.divisions import GRID, PREFIX_LEN, VILLAGE
from gridgov.geo.gridfile import GridFault, GridFeature, GridFile, sort_faults, validate_grids
from gridgov.geo.models import GridLeader, Region

BATCH = 2000
# How many usernames a grid_in_use fault lists before saying "and N more".
LISTED_USERS = 10

Progress = Callable[[str], None]


@dataclass(slots=True)
class ImportReport:
    file: str
    features: int
    villages: int
    faults: list[GridFault] = field(default_factory=list)
    updated: int = 0
    inserted: int = 0
    deleted: int = 0
    # Grid leader appointments that go with the deleted grids (would go, when only validating).
    leaders_removed: int = 0
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.faults


def _village_geometries(
    session: Session, codes: set[str]
) -> tuple[dict[str, BaseGeometry], set[str]]:
    """Known villages among `codes`: their stored geometry, and the set of those that have none."""
    geoms: dict[str, BaseGeometry] = {}
    bare: set[str] = set()
    ordered = sorted(codes)
    for i in range(0, len(ordered), BATCH):
        rows = session.execute(
            select(Region.code, Region.geometry).where(
                Region.level == VILLAGE, Region.code.in_(ordered[i : i + BATCH])
            )
        ).all()
        for code, wkb in rows:
            if wkb is None:
                bare.add(code)
            else:
                geoms[code] = shapely.from_wkb(wkb)
    return geoms, bare


def _as_array(geoms: Sequence[BaseGeometry | None]) -> npt.NDArray[Any]:
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    return arr


@dataclass(frozen=True, slots=True)
class _Cover:
    """Valid grids (stored and in the file) with their village codes, in one STRtree."""

    geoms: npt.NDArray[Any]
    villages: npt.NDArray[Any]
    tree: shapely.STRtree


def _bare_village_boundary(
    code: str, parts: npt.NDArray[Any], cover: _Cover
) -> BaseGeometry | None:
    """Boundary for a village without one: the union of its grids with interior holes filled.

    A hole between or inside the village's grids then lies inside the village and is reported as a
    gap instead of passing unnoticed. Parts of holes covered by other villages' grids (stored, or
    elsewhere in the file) stay outside: an enclave is not a gap.
    """
    parts = parts[~shapely.is_missing(parts)]
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    parts = parts[shapely.is_valid(parts)]
    if len(parts) == 0:
        return None
    own = shapely.union_all(parts)
    polys = shapely.get_parts(own)
    polys = polys[shapely.get_type_id(polys) == 3]
    filled = shapely.union_all(shapely.polygons(shapely.get_exterior_ring(polys)))
    holes = shapely.difference(filled, own)
    if shapely.is_empty(holes):
        return own
    near = cover.tree.query(holes, predicate="intersects")
    near = near[cover.villages[near] != code]
    if len(near):
        holes = shapely.difference(holes, shapely.union_all(cover.geoms[near]))
    return shapely.union(own, holes)


def _bare_village_boundaries(
    bare: Collection[str], features: Sequence[GridFeature], stored: dict[str, BaseGeometry]
) -> dict[str, BaseGeometry]:
    """Boundaries for the `bare` villages, from their grids in the file (see above)."""
    file_geoms = _as_array([f.geometry for f in features])
    stored_geoms = _as_array(list(stored.values()))
    geoms = np.concatenate([file_geoms, stored_geoms])
    villages = np.array(
        [f.code[: PREFIX_LEN[VILLAGE]] for f in features]
        + [c[: PREFIX_LEN[VILLAGE]] for c in stored],
        dtype=object,
    )
    ok = ~shapely.is_missing(geoms)
    ok[ok] = np.isin(shapely.get_type_id(geoms[ok]), (3, 6))
    ok[ok] = shapely.is_valid(geoms[ok])
    cover = _Cover(geoms[ok], villages[ok], shapely.STRtree(geoms[ok]))
    members: dict[str, list[int]] = {}
    for i, f in enumerate(features):
        members.setdefault(f.code[: PREFIX_LEN[VILLAGE]], []).append(i)
    out: dict[str, BaseGeometry] = {}
    for code in sorted(bare):
        boundary = _bare_village_boundary(code, file_geoms[members.get(code, [])], cover)
        if boundary is not None:
            out[code] = boundary
    return out


def _stored_grids_near(
    session: Session, features: Sequence[GridFeature], *, replaced_villages: Collection[str]
) -> dict[str, BaseGeometry]:
    """Stored grids of villages the file does not replace whose bbox meets the file's bbox."""
    geoms = np.array([f.geometry for f in features], dtype=object)
    geoms = geoms[~shapely.is_missing(geoms)]
    if len(geoms) == 0:
        return {}
    geoms = geoms[~shapely.is_empty(geoms)]
    if len(geoms) == 0:
        return {}
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms))
    if not all(np.isfinite([minx, miny, maxx, maxy])):
        return {}
    rows = session.execute(
        select(Region.code, Region.parent_code, Region.geometry).where(
            Region.level == GRID,
            Region.geometry.is_not(None),
            Region.max_lon >= minx,
            Region.min_lon <= maxx,
            Region.max_lat >= miny,
            Region.min_lat <= maxy,
        )
    ).all()
    replaced = set(replaced_villages)
    kept = [r for r in rows if r.parent_code not in replaced]
    if not kept:
        return {}
    parsed = shapely.from_wkb([r.geometry for r in kept])
    return {r.code: g for r, g in zip(kept, parsed, strict=True)}


def _grids_to_delete(
    session: Session, village_codes: Collection[str], keep: Collection[str]
) -> list[str]:
    """Stored grids of `village_codes` that the file does not bring: the import deletes them."""
    ordered = sorted(village_codes)
    stored: set[str] = set()
    for i in range(0, len(ordered), BATCH):
        stored.update(
            session.scalars(
                select(Region.code).where(
                    Region.level == GRID, Region.parent_code.in_(ordered[i : i + BATCH])
                )
            ).all()
        )
    return sorted(stored - set(keep))


def _grids_in_use(session: Session, gone: Sequence[str]) -> list[GridFault]:
    """One `grid_in_use` fault per grid to be deleted that accounts still sit at."""
    users: dict[str, list[str]] = {}
    for username, grid_code in accounts_at(session, region_codes=gone):
        users.setdefault(grid_code, []).append(username)
    if not users:
        return []
    in_use = sorted(users)
    where: dict[str, tuple[float | None, float | None]] = {}
    for i in range(0, len(in_use), BATCH):
        rows = session.execute(
            select(Region.code, Region.centroid_lon, Region.centroid_lat).where(
                Region.code.in_(in_use[i : i + BATCH])
            )
        ).all()
        where.update({r.code: (r.centroid_lon, r.centroid_lat) for r in rows})
    faults: list[GridFault] = []
    for code in in_use:
        names = users[code]
        listed = "、".join(names[:LISTED_USERS])
        if len(names) > LISTED_USERS:
            listed += f" 等 {len(names)} 个账号"
        lon, lat = where.get(code, (None, None))
        faults.append(
            GridFault(
                "grid_in_use",
                code,
                None,
                f"文件中没有网格 {code}, 导入会删除它, 但账号 {listed} 仍在该网格; "
                f"请先把这些账号调整到其他网格, 或在文件中保留网格 {code}",
                lon,
                lat,
            )
        )
    return faults


def _leaders_at(session: Session, grid_codes: Sequence[str]) -> int:
    total = 0
    for i in range(0, len(grid_codes), BATCH):
        total += (
            session.scalar(
                select(func.count())
                .select_from(GridLeader)
                .where(GridLeader.grid_code.in_(grid_codes[i : i + BATCH]))
            )
            or 0
        )
    return total


def import_grid_file(
    session: Session,
    grid_file: GridFile,
    *,
    now: datetime,
    write: bool = True,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate `grid_file` against the database and, if clean, replace its villages' grids.

    A village without a stored boundary (a real city that has grids but no village polygons) takes
    the union of its grids with holes filled as its boundary. Besides the checks of
    `validate_grids`, grids of the file must not overlap stored grids of villages outside the file,
    and grids the import would delete must have no accounts (`grid_in_use`). Nothing is written
    unless every check passes; the caller's transaction makes the write atomic. `progress` is
    called with a short Chinese description of each stage.
    """
    step = progress or (lambda _stage: None)
    feats = grid_file.features
    village_codes = {
        f.code[: PREFIX_LEN[VILLAGE]] for f in feats if len(f.code) == 15 and f.code.isdigit()
    }
    report = ImportReport(grid_file.name, len(feats), len(village_codes))

    step(f"校验 {len(feats):,} 个网格")
    villages, bare = _village_geometries(session, village_codes)
    stored = _stored_grids_near(session, feats, replaced_villages=village_codes)
    if bare:
        villages.update(_bare_village_boundaries(bare, feats, stored))
    faults = validate_grids(grid_file, villages=villages, stored_grids=stored)

    step("检查将被删除的网格")
    gone = _grids_to_delete(session, village_codes, {f.code for f in feats})
    faults.extend(_grids_in_use(session, gone))
    report.leaders_removed = _leaders_at(session, gone)
    report.faults = sort_faults(faults)
    if report.faults or not write:
        return report

    step("写入数据库")
    names: dict[str, str] = {}
    urban: dict[str, bool] = {}
    ordered = sorted(village_codes)
    for i in range(0, len(ordered), BATCH):
        rows = session.execute(
            select(Region.code, Region.name, Region.is_urban).where(
                Region.code.in_(ordered[i : i + BATCH])
            )
        ).all()
        names.update({r.code: r.name for r in rows})
        urban.update({r.code: r.is_urban for r in rows})
    grids = []
    for f in feats:
        if f.geometry is None:  # validation reports missing geometry, so this cannot happen
            raise ValueError(f"grid {f.code} has no geometry")
        village = f.code[:12]
        name = f.name or f"{names.get(village, village)}第{int(f.code[12:])}网格"
        grids.append(
            geo.RegionGeometry(f.code, name, GRID, village, f.geometry, bool(urban.get(village)))
        )
    if bare:
        geo.store_geometries(
            session,
            [
                geo.RegionGeometry(c, names[c], VILLAGE, None, villages[c])
                for c in sorted(bare)
                if c in villages
            ],
            source="imported",
            now=now,
        )
    report.updated, report.inserted, report.deleted = geo.replace_village_grids(
        session, village_codes=village_codes, grids=grids, source="imported", now=now
    )
    report.written = True
    return report
