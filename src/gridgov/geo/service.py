"""Region-tree use cases: load code lists, store geometry, query the tree, locate points, leaders."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from gridgov.accounts import service as accounts
from gridgov.accounts.access import Scope, access_grid, not_found_region, scope_of
from gridgov.accounts.models import User
from gridgov.accounts.rules import Role, may_assign_leader
from gridgov.core.errors import Forbidden, NotFound, Rejected
from gridgov.geo.coords import CRS, to_wgs84
from gridgov.geo.divisions import (
    CITY,
    DISTRICT,
    GRID,
    LEVEL_NAMES,
    PREFIX_LEN,
    TOWN,
    VILLAGE,
    Division,
    level_of_code,
)
from gridgov.geo.locate import LocateIndex
from gridgov.geo.models import GridLeader, MetaValue, Region
from gridgov.geo.tree import subtree_condition

BATCH = 2000
GRID_REVISION_KEY = "grid_revision"


# --------------------------------------------------------------------------- loading


def load_division_tree(session: Session, divisions: Sequence[Division], *, now: datetime) -> int:
    """Insert new divisions and rename changed ones; returns how many rows were written.

    Bulk: one SELECT of existing codes, then batched executemany inserts and updates.
    """
    existing = dict(session.execute(select(Region.code, Region.name)).all())
    new_rows = [
        {
            "code": d.code,
            "name": d.name,
            "level": d.level,
            "parent_code": d.parent_code if d.level > CITY else None,
            "is_urban": d.is_urban if d.level in (TOWN, VILLAGE) else True,
            "updated_at": now,
        }
        for d in divisions
        if d.code not in existing
    ]
    renamed = [
        {"code": d.code, "name": d.name, "updated_at": now}
        for d in divisions
        if d.code in existing and existing[d.code] != d.name
    ]
    # Parents first: divisions are ordered by level, so batches respect the foreign key.
    for i in range(0, len(new_rows), BATCH):
        session.execute(insert(Region), new_rows[i : i + BATCH])
    for i in range(0, len(renamed), BATCH):
        session.execute(update(Region), renamed[i : i + BATCH])
    session.flush()
    return len(new_rows) + len(renamed)


def geometry_columns(geom: BaseGeometry) -> dict[str, Any]:
    """WKB plus the derived columns kept beside it (bbox, centroid, area)."""
    geom = shapely.force_2d(geom)
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    minx, miny, maxx, maxy = geom.bounds
    pt = geom.representative_point() if geom.is_empty is False else None
    return {
        "geometry": shapely.to_wkb(geom),
        "min_lon": minx,
        "min_lat": miny,
        "max_lon": maxx,
        "max_lat": maxy,
        "centroid_lon": pt.x if pt is not None else None,
        "centroid_lat": pt.y if pt is not None else None,
        "area_km2": approx_area_km2(geom),
    }


def approx_area_km2(geom: BaseGeometry) -> float:
    """Area on a local equirectangular projection; within ~0.1% at city scale."""
    if geom.is_empty:
        return 0.0
    lat0 = float(np.radians(geom.centroid.y))
    deg2 = 111.320 * 110.574 * float(np.cos(lat0))
    return float(geom.area) * deg2


@dataclass(frozen=True, slots=True)
class RegionGeometry:
    code: str
    name: str
    level: int
    parent_code: str | None
    geometry: BaseGeometry
    is_urban: bool = False


def store_geometries(
    session: Session, items: Iterable[RegionGeometry], *, source: str, now: datetime
) -> tuple[int, int]:
    """Write geometry for existing nodes and insert grids that are new; returns (updated, inserted)."""
    existing = set(session.scalars(select(Region.code)).all())
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for it in items:
        cols = geometry_columns(it.geometry)
        cols.update(geometry_source=source, updated_at=now)
        if it.code in existing:
            updates.append({"code": it.code, "name": it.name, **cols})
        else:
            if it.level != GRID:
                raise Rejected(f"区划 {it.code} 不在代码表中; 只有网格可以随几何一起新建")
            inserts.append(
                {
                    "code": it.code,
                    "name": it.name,
                    "level": it.level,
                    "parent_code": it.parent_code,
                    "is_urban": it.is_urban,
                    **cols,
                }
            )
    for i in range(0, len(updates), BATCH):
        session.execute(update(Region), updates[i : i + BATCH])
    for i in range(0, len(inserts), BATCH):
        session.execute(insert(Region), inserts[i : i + BATCH])
    if inserts or updates:
        bump_grid_revision(session)
    session.flush()
    return len(updates), len(inserts)


def replace_village_grids(
    session: Session,
    *,
    village_codes: set[str],
    grids: Sequence[RegionGeometry],
    source: str,
    now: datetime,
) -> tuple[int, int, int]:
    """Make the grids of `village_codes` exactly `grids`: returns (updated, inserted, deleted).

    Grids that disappear must not have users sitting at them; their leaders go with them.
    """
    keep = {g.code for g in grids}
    old = set(
        session.scalars(
            select(Region.code).where(Region.level == GRID, Region.parent_code.in_(village_codes))
        ).all()
    )
    gone = sorted(old - keep)
    if gone:
        users_there = accounts.accounts_at(session, region_codes=gone)
        if users_there:
            listed = "; ".join(f"{u} 在 {c}" for u, c in users_there[:20])
            raise Rejected(
                f"导入会删除仍有账号的网格 ({listed}); 请先调整这些账号的所属网格或在文件中保留这些网格"
            )
        for i in range(0, len(gone), BATCH):
            chunk = gone[i : i + BATCH]
            session.execute(delete(GridLeader).where(GridLeader.grid_code.in_(chunk)))
            session.execute(delete(Region).where(Region.code.in_(chunk)))
    updated, inserted = store_geometries(session, grids, source=source, now=now)
    bump_grid_revision(session)
    return updated, inserted, len(gone)


def bump_grid_revision(session: Session) -> str:
    """Mark the grids as changed. A random token, not a counter: a rolled-back change followed by
    another change must never reuse a revision that an index was already built for."""
    token = uuid.uuid4().hex
    row = session.get(MetaValue, GRID_REVISION_KEY)
    if row is None:
        session.add(MetaValue(key=GRID_REVISION_KEY, value=token))
    else:
        row.value = token
    session.flush()
    return token


def grid_revision(session: Session) -> str:
    value = session.scalar(select(MetaValue.value).where(MetaValue.key == GRID_REVISION_KEY))
    return value or ""


def load_geometries(session: Session, codes: Iterable[str]) -> dict[str, BaseGeometry]:
    codes = list(codes)
    out: dict[str, BaseGeometry] = {}
    for i in range(0, len(codes), BATCH):
        rows = session.execute(
            select(Region.code, Region.geometry).where(Region.code.in_(codes[i : i + BATCH]))
        ).all()
        for code, wkb in rows:
            if wkb is not None:
                out[code] = shapely.from_wkb(wkb)
    return out


# --------------------------------------------------------------------------- reading the tree


@dataclass(frozen=True, slots=True)
class RegionBrief:
    code: str
    name: str
    level: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "level_name": LEVEL_NAMES[self.level],
        }


@dataclass(slots=True)
class RegionInfo:
    region: Region
    path: list[RegionBrief]
    children_count: int
    grid_count: int
    user_count: int
    leader: dict[str, Any] | None = None


def ancestor_codes(code: str) -> list[str]:
    """Codes of the node's ancestors, city first (derived from the code's digits)."""
    level = level_of_code(code)
    out = []
    for lv in range(CITY, level):
        prefix = code[: PREFIX_LEN[lv]]
        out.append(prefix.ljust(12, "0"))
    return out


def get_region(session: Session, code: str) -> Region | None:
    """A region or grid by code, unscoped (for services that check jurisdiction themselves)."""
    return session.get(Region, code)


def region_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """Names of these regions by code, in one query (unknown codes are left out)."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = session.execute(select(Region.code, Region.name).where(Region.code.in_(wanted)))
    return {code: name for code, name in rows}


@dataclass(frozen=True)
class RegionRow:
    name: str
    level: int
    is_urban: bool


def region_rows(session: Session, codes: Iterable[str]) -> dict[str, RegionRow]:
    """Name, level and urban flag of these regions by code, in one query."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = session.execute(
        select(Region.code, Region.name, Region.level, Region.is_urban).where(
            Region.code.in_(wanted)
        )
    )
    return {r.code: RegionRow(r.name, r.level, bool(r.is_urban)) for r in rows}


def region_path(session: Session, code: str) -> list[RegionBrief]:
    codes = [*ancestor_codes(code), code]
    rows = session.execute(
        select(Region.code, Region.name, Region.level).where(Region.code.in_(codes))
    ).all()
    by_code = {r.code: RegionBrief(r.code, r.name, r.level) for r in rows}
    return [by_code[c] for c in codes if c in by_code]


def region_info(session: Session, region: Region) -> RegionInfo:
    sub = subtree_condition(region.code)
    children = session.scalar(
        select(func.count()).select_from(Region).where(Region.parent_code == region.code)
    )
    grids = session.scalar(
        select(func.count()).select_from(Region).where(sub, Region.level == GRID)
    )
    users = accounts.count_users_under(session, root_code=region.code)
    info = RegionInfo(
        region, region_path(session, region.code), children or 0, grids or 0, users or 0
    )
    if region.level == GRID:
        info.leader = grid_leader(session, region.code)
    return info


def grid_leader(session: Session, grid_code: str) -> dict[str, Any] | None:
    row = session.get(GridLeader, grid_code)
    leader = accounts.get_user(session, row.user_id) if row is not None else None
    if row is None or leader is None:
        return None
    return {
        "username": leader.username,
        "display_name": leader.display_name,
        "assigned_at": row.assigned_at.isoformat(),
    }


def children_of(session: Session, region: Region) -> list[Region]:
    return list(
        session.scalars(
            select(Region).where(Region.parent_code == region.code).order_by(Region.code)
        ).all()
    )


def grids_under(
    session: Session, region: Region, *, bbox: tuple[float, float, float, float] | None = None
) -> list[Region]:
    q = select(Region).where(subtree_condition(region.code), Region.level == GRID)
    if bbox is not None:
        minx, miny, maxx, maxy = bbox
        q = q.where(
            Region.max_lon >= minx,
            Region.min_lon <= maxx,
            Region.max_lat >= miny,
            Region.min_lat <= maxy,
        )
    return list(session.scalars(q.order_by(Region.code)).all())


def search_regions(
    session: Session, scope: Scope, *, q: str, level: int | None = None, limit: int = 20
) -> list[RegionBrief]:
    q = q.strip()
    if not q:
        return []
    cond = or_(Region.name.contains(q, autoescape=True), Region.code.startswith(q, autoescape=True))
    stmt = select(Region.code, Region.name, Region.level).where(scope.region_filter(), cond)
    if level is not None:
        stmt = stmt.where(Region.level == level)
    stmt = stmt.order_by(Region.level, Region.code).limit(limit)
    return [RegionBrief(r.code, r.name, r.level) for r in session.execute(stmt).all()]


def feature_collection(
    regions: Sequence[Region], *, extra: dict[str, dict[str, Any]] | None = None
) -> str:
    """GeoJSON FeatureCollection text; geometry copied from stored WKB without re-encoding lists."""
    parts = []
    for r in regions:
        geom = shapely.to_geojson(shapely.from_wkb(r.geometry)) if r.geometry else "null"
        props: dict[str, Any] = {
            "code": r.code,
            "name": r.name,
            "level": r.level,
            "level_name": LEVEL_NAMES[r.level],
            "parent_code": r.parent_code,
            "area_km2": round(r.area_km2, 4) if r.area_km2 is not None else None,
            "label_point": [r.centroid_lon, r.centroid_lat] if r.centroid_lon is not None else None,
        }
        if extra and r.code in extra:
            props.update(extra[r.code])
        props_json = json.dumps(props, ensure_ascii=False)
        parts.append(
            f'{{"type":"Feature","id":"{r.code}","geometry":{geom},"properties":{props_json}}}'
        )
    return '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"


# --------------------------------------------------------------------------- locate


@dataclass(frozen=True, slots=True)
class LocateResult:
    lon: float
    lat: float
    grid: RegionBrief | None
    path: list[RegionBrief]

    @property
    def inside(self) -> bool:
        return self.grid is not None


class LocateCache:
    """One STRtree-backed index per database, rebuilt when the grid revision changes.

    The revision lives in the database (`meta`), so every worker process notices a change made by
    any other. Builds are serialised: requests arriving during a build wait for it instead of
    building the same index again (about a second and 25–45 MB each for 12,000 grids).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._entries: dict[str, tuple[str, LocateIndex]] = {}

    def _cached(self, key: str, rev: str) -> LocateIndex | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] == rev else None

    def index(self, session: Session) -> LocateIndex:
        bind = session.get_bind()
        key = str(bind.url) if isinstance(bind, Engine) else str(bind.engine.url)
        rev = grid_revision(session)
        hit = self._cached(key, rev)
        if hit is not None:
            return hit
        with self._build_lock:
            hit = self._cached(key, rev)
            if hit is not None:
                return hit
            idx = self._build(session)
            with self._lock:
                self._entries[key] = (rev, idx)
            return idx

    def _build(self, session: Session) -> LocateIndex:
        rows = session.execute(
            select(Region.code, Region.geometry)
            .where(Region.level == GRID, Region.geometry.is_not(None))
            .order_by(Region.code)
        ).all()
        codes = [r.code for r in rows]
        geoms = shapely.from_wkb([r.geometry for r in rows]) if rows else []
        return LocateIndex(codes, list(geoms))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


LOCATE_CACHE = LocateCache()


def locate_many(
    session: Session, lons: Any, lats: Any, *, crs: CRS | str = CRS.WGS84
) -> list[str | None]:
    """Grid code for each point (None outside the jurisdiction), after converting to WGS-84."""
    x, y = to_wgs84(np.asarray(lons, dtype="f8"), np.asarray(lats, dtype="f8"), crs)
    idx = LOCATE_CACHE.index(session)
    hits = idx.locate_many(np.asarray(x, dtype="f8"), np.asarray(y, dtype="f8"))
    codes = idx.codes
    return [codes[i] if i >= 0 else None for i in hits.tolist()]


def locate(session: Session, lon: float, lat: float, *, crs: CRS | str = CRS.WGS84) -> LocateResult:
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise Rejected("经纬度必须是有限数值")
    x, y = to_wgs84(float(lon), float(lat), crs)
    code = locate_many(session, [x], [y])[0]
    if code is None:
        return LocateResult(float(x), float(y), None, [])
    path = region_path(session, code)
    return LocateResult(float(x), float(y), path[-1], path)


def locate_for_user(
    session: Session, user: User, lon: float, lat: float, *, crs: CRS | str = CRS.WGS84
) -> LocateResult:
    """Locate, answering NotFound when the point lies outside the user's jurisdiction."""
    result = locate(session, lon, lat, crs=crs)
    if result.grid is None or not scope_of(user).contains(result.grid.code):
        # One answer for "in no grid" and "in someone else's grid", so nothing outside leaks.
        raise NotFound(
            f"坐标 ({result.lon:.6f}, {result.lat:.6f}) 不在您的管辖范围内",
            code="outside_jurisdiction",
        )
    return result


def locate_many_for_user(
    session: Session, user: User, lons: Any, lats: Any, *, crs: CRS | str = CRS.WGS84
) -> list[str | None]:
    """Batch locate; points outside the user's jurisdiction come back as None like any outside."""
    scope = scope_of(user)
    return [
        c if c is not None and scope.contains(c) else None
        for c in locate_many(session, lons, lats, crs=crs)
    ]


# --------------------------------------------------------------------------- grid leaders


def assign_grid_leader(
    session: Session, *, actor: User, grid_code: str, username: str, now: datetime
) -> GridLeader:
    """一格一长: set (or replace) the grid's one leader; village staff and above, within scope."""
    grid = access_grid(session, actor, grid_code)
    if not may_assign_leader(actor.roles):
        raise Forbidden(
            "只有村社区及以上工作人员或管理员可以指定网格长", code="cannot_assign_leader"
        )
    leader = accounts.get_user_by_username(session, username)
    if leader is None or not scope_of(actor).contains(leader.region_code):
        raise NotFound(f"用户 {username} 不存在或不在您的管辖范围内", code="user_not_found")
    village_code = grid.parent_code or ""
    if not leader.region_code.startswith(village_code):
        raise Rejected(
            f"网格长须为本村社区 ({village_code}) 的网格员; 用户 {username} 属于 {leader.region_code}"
        )
    if Role.GRID_WORKER not in leader.roles or not leader.is_active:
        raise Rejected(f"用户 {username} 不是在岗的网格员 (grid_worker), 不能担任网格长")
    row = session.get(GridLeader, grid.code)
    if row is None:
        row = GridLeader(
            grid_code=grid.code, user_id=leader.id, assigned_by=actor.id, assigned_at=now
        )
        session.add(row)
    else:
        row.user_id = leader.id
        row.assigned_by = actor.id
        row.assigned_at = now
    session.flush()
    return row


def remove_grid_leader(session: Session, *, actor: User, grid_code: str) -> None:
    grid = access_grid(session, actor, grid_code)
    if not may_assign_leader(actor.roles):
        raise Forbidden(
            "只有村社区及以上工作人员或管理员可以撤销网格长", code="cannot_assign_leader"
        )
    session.execute(delete(GridLeader).where(GridLeader.grid_code == grid.code))
    session.flush()


def grid_sources(session: Session) -> set[str]:
    """Where the stored grids came from: 'generated', 'imported'."""
    rows = session.scalars(
        select(Region.geometry_source).where(Region.level == GRID).distinct()
    ).all()
    return {r for r in rows if r}


def city_codes(session: Session) -> list[str]:
    return list(session.scalars(select(Region.code).where(Region.level == CITY)).all())


def counts_by_level(session: Session) -> dict[int, int]:
    rows = session.execute(select(Region.level, func.count()).group_by(Region.level)).all()
    return {int(lv): int(n) for lv, n in rows}


__all__ = [
    "CITY",
    "DISTRICT",
    "GRID",
    "LOCATE_CACHE",
    "TOWN",
    "VILLAGE",
    "LocateResult",
    "RegionBrief",
    "RegionGeometry",
    "RegionInfo",
    "assign_grid_leader",
    "children_of",
    "counts_by_level",
    "feature_collection",
    "grid_leader",
    "grids_under",
    "load_division_tree",
    "locate",
    "locate_for_user",
    "locate_many",
    "not_found_region",
    "region_info",
    "region_path",
    "remove_grid_leader",
    "search_regions",
    "store_geometries",
]
