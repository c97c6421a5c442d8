"""JSON API of the region tree: regions, children, grids (GeoJSON), search, locate, grid leaders."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from gridgov.accounts.access import access_grid, access_region, scope_of
from gridgov.core import clock
from gridgov.core.errors import Rejected
from gridgov.geo import service
from gridgov.geo.coords import CRS
from gridgov.geo.divisions import LEVEL_NAMES
from gridgov.geo.models import Region
from gridgov.geo.schemas import (
    LeaderIn,
    LocateBatchIn,
    LocateBatchOut,
    LocateOut,
    RegionBriefOut,
    RegionOut,
)
from gridgov.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1", tags=["regions"])
GEOJSON = "application/geo+json"


def _region(code: str, user: CurrentUser, session: SessionDep) -> Region:
    return access_region(session, user, code)


def _grid(code: str, user: CurrentUser, session: SessionDep) -> Region:
    return access_grid(session, user, code)


AccessibleRegion = Annotated[Region, Depends(_region)]
AccessibleGrid = Annotated[Region, Depends(_grid)]


def region_out(info: service.RegionInfo) -> RegionOut:
    r = info.region
    return RegionOut(
        code=r.code,
        name=r.name,
        level=r.level,
        level_name=LEVEL_NAMES[r.level],
        parent_code=r.parent_code,
        is_urban=r.is_urban,
        area_km2=round(r.area_km2, 4) if r.area_km2 is not None else None,
        bbox=[r.min_lon, r.min_lat, r.max_lon, r.max_lat] if r.min_lon is not None else None,
        centroid=[r.centroid_lon, r.centroid_lat] if r.centroid_lon is not None else None,
        path=[RegionBriefOut(**p.as_dict()) for p in info.path],
        children_count=info.children_count,
        grid_count=info.grid_count,
        user_count=info.user_count,
        leader=info.leader,
    )


@router.get("/regions", response_model=list[RegionBriefOut], summary="按名称或代码搜索区域/网格")
def search_regions(
    user: CurrentUser,
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=50, description="名称片段或代码前缀")],
    level: Annotated[int | None, Query(ge=1, le=5)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[RegionBriefOut]:
    found = service.search_regions(session, scope_of(user), q=q, level=level, limit=limit)
    return [RegionBriefOut(**b.as_dict()) for b in found]


@router.get("/regions/{code}", response_model=RegionOut, summary="区域/网格详情")
def get_region(region: AccessibleRegion, session: SessionDep) -> RegionOut:
    return region_out(service.region_info(session, region))


@router.get(
    "/regions/{code}/children",
    summary="下一级区域 (JSON 列表, 或 format=geojson 时为 GeoJSON)",
    response_model=None,
)
def get_children(
    region: AccessibleRegion,
    session: SessionDep,
    format: Annotated[Literal["json", "geojson"], Query()] = "json",
) -> Response | list[RegionBriefOut]:
    kids = service.children_of(session, region)
    if format == "geojson":
        return Response(service.feature_collection(kids), media_type=GEOJSON)
    return [
        RegionBriefOut(code=k.code, name=k.name, level=k.level, level_name=LEVEL_NAMES[k.level])
        for k in kids
    ]


@router.get("/regions/{code}/grids", summary="该区域内的全部网格 (GeoJSON)", response_model=None)
def get_grids(
    region: AccessibleRegion,
    session: SessionDep,
    bbox: Annotated[
        str | None, Query(description="min_lon,min_lat,max_lon,max_lat (WGS-84) 只返回相交的网格")
    ] = None,
) -> Response:
    box: tuple[float, float, float, float] | None = None
    if bbox:
        try:
            parts = [float(v) for v in bbox.split(",")]
        except ValueError:
            parts = []
        if len(parts) != 4:
            raise Rejected(f"bbox 参数 {bbox!r} 无效; 应为 min_lon,min_lat,max_lon,max_lat")
        box = (parts[0], parts[1], parts[2], parts[3])
    grids = service.grids_under(session, region, bbox=box)
    return Response(service.feature_collection(grids), media_type=GEOJSON)


@router.get("/locate", response_model=LocateOut, summary="坐标定位到网格及其全部上级区域")
def locate(
    user: CurrentUser,
    session: SessionDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="经度")],
    lat: Annotated[float, Query(ge=-90, le=90, description="纬度")],
    crs: Annotated[
        CRS, Query(description="输入坐标系: wgs84 / gcj02 (高德、腾讯) / bd09 (百度)")
    ] = CRS.WGS84,
) -> LocateOut:
    res = service.locate_for_user(session, user, lon, lat, crs=crs)
    if res.grid is None:  # locate_for_user raises instead; keeps the type checker informed
        raise service.not_found_region("")
    return LocateOut(
        lon=res.lon,
        lat=res.lat,
        grid=RegionBriefOut(**res.grid.as_dict()),
        path=[RegionBriefOut(**p.as_dict()) for p in res.path],
    )


@router.post(
    "/locate/batch", response_model=LocateBatchOut, summary="批量坐标定位 (每次最多 10,000 点)"
)
def locate_batch(body: LocateBatchIn, user: CurrentUser, session: SessionDep) -> LocateBatchOut:
    lons = [p[0] for p in body.points]
    lats = [p[1] for p in body.points]
    codes = service.locate_many_for_user(session, user, lons, lats, crs=body.crs)
    return LocateBatchOut(grid_codes=codes, located=sum(c is not None for c in codes))


@router.get("/grids/{code}", response_model=RegionOut, summary="网格详情 (含网格长)")
def get_grid(grid: AccessibleGrid, session: SessionDep) -> RegionOut:
    return region_out(service.region_info(session, grid))


@router.put("/grids/{code}/leader", response_model=RegionOut, summary="指定网格长 (一格一长)")
def put_leader(
    grid: AccessibleGrid, body: LeaderIn, user: CurrentUser, session: SessionDep
) -> RegionOut:
    service.assign_grid_leader(
        session, actor=user, grid_code=grid.code, username=body.username, now=clock.now()
    )
    return region_out(service.region_info(session, grid))


@router.delete("/grids/{code}/leader", status_code=204, summary="撤销网格长")
def delete_leader(grid: AccessibleGrid, user: CurrentUser, session: SessionDep) -> Response:
    service.remove_grid_leader(session, actor=user, grid_code=grid.code)
    return Response(status_code=204)
