"""Region API: detail, children, GeoJSON grids, search, locate, grid leaders (allowed and denied)."""

from __future__ import annotations

import shapely
from sqlalchemy import select
from tests.helpers import bearer

from gridgov.geo.models import Region


def test_city_detail_and_children(client) -> None:  # type: ignore[no-untyped-def]
    h = bearer(client, "city_staff")
    city = client.get("/api/v1/regions/330200000000", headers=h).json()
    assert city["name"] == "宁波市"
    assert city["children_count"] == 10
    assert 11_000 <= city["grid_count"] <= 13_000
    fc = client.get("/api/v1/regions/330200000000/children?format=geojson", headers=h)
    assert fc.headers["content-type"].startswith("application/geo+json")
    features = fc.json()["features"]
    assert len(features) == 10
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in features)


def test_grids_geojson_and_bbox(client, session) -> None:  # type: ignore[no-untyped-def]
    h = bearer(client, "town_staff")
    town = client.get("/api/v1/me", headers=h).json()["region_code"]
    all_grids = client.get(f"/api/v1/regions/{town}/grids", headers=h).json()["features"]
    n = session.query(Region).filter(Region.level == 5, Region.code.like(town[:9] + "%")).count()
    assert len(all_grids) == n > 0
    g = shapely.geometry.shape(all_grids[0]["geometry"])
    minx, miny, maxx, maxy = g.bounds
    some = client.get(
        f"/api/v1/regions/{town}/grids", params={"bbox": f"{minx},{miny},{maxx},{maxy}"}, headers=h
    ).json()["features"]
    assert 1 <= len(some) < len(all_grids)
    bad = client.get(f"/api/v1/regions/{town}/grids", params={"bbox": "1,2"}, headers=h)
    assert bad.status_code == 422 and "bbox" in bad.json()["detail"][0]["msg"]


def test_search_by_name_and_code(client) -> None:  # type: ignore[no-untyped-def]
    h = bearer(client, "city_staff")
    hits = client.get("/api/v1/regions", params={"q": "海曙"}, headers=h).json()
    assert hits[0] == {"code": "330203000000", "name": "海曙区", "level": 2, "level_name": "区县"}
    hits = client.get("/api/v1/regions", params={"q": "330203001"}, headers=h).json()
    assert hits and all(x["code"].startswith("330203001") for x in hits)


def test_locate_outside_city_is_clear(client) -> None:  # type: ignore[no-untyped-def]
    h = bearer(client, "city_staff")
    r = client.get("/api/v1/locate", params={"lon": 116.4, "lat": 39.9}, headers=h)
    assert r.status_code == 404
    assert "不在您的管辖范围内" in r.json()["detail"][0]["msg"]


def test_locate_gcj02_input(client, session) -> None:  # type: ignore[no-untyped-def]
    from gridgov.geo.coords import wgs84_to_gcj02

    h = bearer(client, "city_staff")
    grid = session.scalars(select(Region).where(Region.level == 5).limit(1)).first()
    p = shapely.from_wkb(grid.geometry).representative_point()
    glon, glat = wgs84_to_gcj02(p.x, p.y)
    r = client.get("/api/v1/locate", params={"lon": glon, "lat": glat, "crs": "gcj02"}, headers=h)
    assert r.status_code == 200 and r.json()["grid"]["code"] == grid.code
    assert abs(r.json()["lon"] - p.x) < 1e-7


def test_grid_leader_assignment(client, session) -> None:  # type: ignore[no-untyped-def]
    worker = client.get("/api/v1/me", headers=bearer(client, "grid_worker")).json()
    grid = worker["region_code"]
    vh = bearer(client, "village_staff")
    detail = client.get(f"/api/v1/grids/{grid}", headers=vh).json()
    assert detail["leader"]["username"] == "grid_worker"  # the demo assigns one
    # Removing and re-assigning: village staff may.
    assert client.delete(f"/api/v1/grids/{grid}/leader", headers=vh).status_code == 204
    assert client.get(f"/api/v1/grids/{grid}", headers=vh).json()["leader"] is None
    r = client.put(f"/api/v1/grids/{grid}/leader", json={"username": "grid_worker"}, headers=vh)
    assert r.status_code == 200 and r.json()["leader"]["username"] == "grid_worker"
    # A grid worker may not assign; a non-grid-worker may not lead.
    wh = bearer(client, "grid_worker")
    r = client.put(f"/api/v1/grids/{grid}/leader", json={"username": "grid_worker"}, headers=wh)
    assert r.status_code == 403
    r = client.put(f"/api/v1/grids/{grid}/leader", json={"username": "village_staff"}, headers=vh)
    assert r.status_code == 422 and "网格员" in r.json()["detail"][0]["msg"]
    # A region code is not a grid.
    village = worker["path"][3]["code"]
    assert client.get(f"/api/v1/grids/{village}", headers=vh).status_code == 404


def test_one_leader_per_grid(session) -> None:  # type: ignore[no-untyped-def]
    from gridgov.geo.models import GridLeader

    rows = session.execute(select(GridLeader.grid_code)).scalars().all()
    assert len(rows) == len(set(rows))
    pk = [c.name for c in GridLeader.__table__.primary_key.columns]
    assert pk == ["grid_code"]


def test_batch_locate(client, session) -> None:  # type: ignore[no-untyped-def]
    h = bearer(client, "town_staff")
    town = client.get("/api/v1/me", headers=h).json()["region_code"]
    rows = session.execute(
        select(Region.code, Region.geometry)
        .where(Region.level == 5, Region.code.like(town[:9] + "%"))
        .limit(5)
    ).all()
    pts = [shapely.from_wkb(r.geometry).representative_point() for r in rows]
    body = {"points": [[p.x, p.y] for p in pts] + [[116.4, 39.9]]}
    r = client.post("/api/v1/locate/batch", json=body, headers=h)
    assert r.status_code == 200
    assert r.json()["grid_codes"] == [r.code for r in rows] + [None]
    assert r.json()["located"] == len(rows)
    too_many = client.post(
        "/api/v1/locate/batch", json={"points": [[121.5, 29.8]] * 10_001}, headers=h
    )
    assert too_many.status_code == 422
