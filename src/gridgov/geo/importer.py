"""Import a real city's grids from a file: validate everything first, then write all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridgov.geo import service as geo
from gridgov.geo.divisions import GRID, VILLAGE
from gridgov.geo.gridfile import GridFault, GridFile, validate_grids
from gridgov.geo.models import Region


@dataclass(slots=True)
class ImportReport:
    file: str
    features: int
    villages: int
    faults: list[GridFault] = field(default_factory=list)
    updated: int = 0
    inserted: int = 0
    deleted: int = 0
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.faults


def _village_geometries(
    session: Session, codes: set[str]
) -> tuple[dict[str, BaseGeometry], set[str]]:
    """Known villages among `codes`: their stored geometry, and the set of those that have none."""
    rows = session.execute(
        select(Region.code, Region.geometry).where(Region.level == VILLAGE, Region.code.in_(codes))
    ).all()
    geoms = {code: shapely.from_wkb(wkb) for code, wkb in rows if wkb is not None}
    bare = {code for code, wkb in rows if wkb is None}
    return geoms, bare


def import_grid_file(
    session: Session, grid_file: GridFile, *, now: datetime, write: bool = True
) -> ImportReport:
    """Validate `grid_file` against the villages in the database and, if clean, replace their grids.

    A village without a stored boundary (a real city that has grids but no village polygons) takes
    the union of its grids as its boundary, so only the checks between grids apply to it. Nothing is
    written unless every check passes; the caller's transaction makes the write atomic.
    """
    feats = grid_file.features
    village_codes = {f.code[:12] for f in feats if len(f.code) == 15 and f.code.isdigit()}
    villages, bare = _village_geometries(session, village_codes)
    for code in bare:
        parts = [f.geometry for f in feats if f.code[:12] == code and f.geometry is not None]
        valid = [g for g in parts if g.is_valid]
        if valid:
            villages[code] = shapely.union_all(valid)
    report = ImportReport(grid_file.name, len(feats), len(village_codes))
    report.faults = validate_grids(grid_file, villages=villages)
    if report.faults or not write:
        return report
    rows = session.execute(
        select(Region.code, Region.name, Region.is_urban).where(Region.code.in_(village_codes))
    ).all()
    names = {r.code: r.name for r in rows}
    urban = {r.code: r.is_urban for r in rows}
    counters: dict[str, int] = {}
    grids = []
    for f in feats:
        if f.geometry is None:  # validation reports missing geometry, so this cannot happen
            raise ValueError(f"grid {f.code} has no geometry")
        village = f.code[:12]
        counters[village] = counters.get(village, 0) + 1
        name = f.name or f"{names.get(village, village)}第{int(f.code[12:])}网格"
        grids.append(
            geo.RegionGeometry(f.code, name, GRID, village, f.geometry, bool(urban.get(village)))
        )
    if bare:
        geo.store_geometries(
            session,
            [
                geo.RegionGeometry(c, names[c], VILLAGE, None, villages[c])
                for c in bare
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
