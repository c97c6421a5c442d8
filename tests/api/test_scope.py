"""Jurisdiction: a town account gets 404 for everything outside its town, through every route.

The routes are enumerated from the app, so a new route without a probe here fails the test.
"""

from __future__ import annotations

import shapely
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import Mount
from tests.conftest import NOW
from tests.helpers import bearer

from gridgov.geo.models import Region

# Routes that take no region, grid or point: what they return is the caller's own or public.
NOT_SCOPED = {
    ("GET", "/"): "redirect to /map",
    ("GET", "/login"): "login form",
    ("POST", "/login"): "login",
    ("POST", "/logout"): "logout",
    ("POST", "/api/v1/auth/token"): "login",
    ("DELETE", "/api/v1/auth/token"): "revokes the caller's own token",
    ("GET", "/api/v1/me"): "the caller's own account",
    ("GET", "/healthz"): "liveness",
    ("GET", "/openapi.json"): "API description",
    ("GET", "/docs"): "API docs",
    ("GET", "/docs/oauth2-redirect"): "API docs",
    ("GET", "/api/v1/events/catalog"): "the category catalog, the same for everyone",
    ("POST", "/api/v1/photos"): "the caller's own upload, attached to nothing yet",
    ("GET", "/events/new"): "empty report form",
    ("GET", "/report"): "residents' public report form",
    ("POST", "/report"): "residents' public report",
    ("GET", "/track"): "public tracking page: residents' and hotline events by tracking number",
    ("GET", "/public/events/{no}/photos/{sha256}"): "reporter's photo, EXIF stripped, public",
    ("POST", "/api/field/session"): "field-app login",
    ("GET", "/api/field/categories"): "the catalog, ordered by the caller's own reports",
    ("GET", "/api/field/patrols"): "the caller's own patrols",
    ("GET", "/m"): "redirect to the field app's shell",
    ("GET", "/m/"): "the field app's shell (no data; it works offline)",
    ("GET", "/m/manifest.webmanifest"): "the field app's web-app manifest",
    ("GET", "/m/sw.js"): "the field app's service worker",
    # --- analytics: dashboards and rollups ---
    ("GET", "/static/vendor/plotly/plotly.min.js"): "the chart library, the same for everyone",
}
# The Open311 API is public by design and lists only residents' own reports (tests/api/test_open311.py).
PUBLIC_PREFIXES = ("/open311/v2/",)


def _outside(session, town_code: str) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Codes at every level that are outside the town, plus the town's own parents."""
    prefix = town_code[:9]
    out: dict[str, list[str]] = {"region": [], "grid": []}
    for level in (1, 2, 3, 4, 5):
        codes = session.scalars(
            select(Region.code)
            .where(Region.level == level, Region.code.not_like(prefix + "%"))
            .order_by(Region.code)
            .limit(2)
        ).all()
        out["grid" if level == 5 else "region"].extend(codes)
    return out


def _outside_points(session, town_code: str) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(Region.geometry)
        .where(Region.level == 5, Region.code.not_like(town_code[:9] + "%"))
        .order_by(Region.code)
        .limit(3)
    ).all()
    pts = [shapely.from_wkb(r.geometry).representative_point() for r in rows]
    return [(p.x, p.y) for p in pts] + [(0.0, 0.0), (121.0, 31.5)]


def _event_outside(app, session, grid_code: str):  # type: ignore[no-untyped-def]
    """A resident's event with a photo in a grid outside the town, and a notification about it."""
    import io

    from PIL import Image

    from gridgov.events import service
    from gridgov.events.service import ReportInput

    ctx = service.context_from_settings(app.state.settings)
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), "blue").save(buf, "PNG")
    photo = service.upload_photo(
        session, ctx=ctx, user=None, data=buf.getvalue(), filename="p.png", now=NOW
    )
    p = shapely.from_wkb(session.get(Region, grid_code).geometry).representative_point()
    data = ReportInput("ZF03", "别处的事", lon=p.x, lat=p.y, photos=[photo.sha256])
    ev = service.report_event(
        session, ctx=ctx, user=None, data=data, channel="public", now=NOW
    ).event
    session.flush()
    return ev


def _probe_event_route(client, headers, method: str, path: str, ev, outside) -> int | None:  # type: ignore[no-untyped-def]
    """Probe one event route with the outside event; None when the route is not an event route."""
    no = ev.tracking_no
    sha = ev.photos[0]
    login = {"username": "town_staff", "password": "Gridgov@2026"}
    if "{ref}" in path:
        url = path.replace("{ref}", no)
        if path.startswith("/api"):
            body = {"action": "supervise", "comment": "越界督办"} if method == "POST" else None
            r = client.request(method, url, headers=headers, json=body)
        else:
            client.post("/login", data=login)
            data = (
                {"action": "supervise", "version": "1", "comment": "x"}
                if method == "POST"
                else None
            )
            r = client.request(method, url, data=data)
        assert r.status_code == 404, (method, url, r.status_code, r.text[:300])
        return 1
    if "{sha256}" in path:
        url = path.replace("{sha256}", sha).replace("{variant}", "thumb")
        if path.startswith("/api"):
            r = client.get(url, headers=headers)
        else:
            client.post("/login", data=login)
            r = client.get(url)
        assert r.status_code == 404, (url, r.status_code)
        return 1
    if path == "/api/v1/events" and method == "GET":
        r = client.get(path, params={"q": no}, headers=headers)
        assert r.status_code == 200 and r.json()["total"] == 0
        for code in outside["region"] + outside["grid"]:
            r = client.get(path, params={"region": code}, headers=headers)
            assert r.status_code == 404, (code, r.text)
        return 1 + len(outside["region"] + outside["grid"])
    if path == "/api/v1/events" and method == "POST":
        p = (ev.lon, ev.lat)
        r = client.post(
            path,
            json={"category": "ZF03", "description": "越界上报", "lon": p[0], "lat": p[1]},
            headers=headers,
        )
        assert r.status_code == 404, r.text
        return 1
    if path == "/api/v1/worklists/{name}":
        from gridgov.events.service import WORKLISTS

        for name in WORKLISTS:
            r = client.get(path.replace("{name}", name), headers=headers)
            assert r.status_code == 200 and no not in r.text
        return len(WORKLISTS)
    if path == "/api/v1/events-export.{fmt}":
        r = client.get("/api/v1/events-export.csv", params={"q": no}, headers=headers)
        assert r.status_code == 200 and no not in r.text
        return 1
    if path == "/api/v1/notifications":
        r = client.get(path, headers=headers)
        assert r.status_code == 200 and all(n["event_id"] != ev.id for n in r.json())
        return 1
    if path == "/api/v1/notifications/read":
        from sqlalchemy.orm import object_session

        from gridgov.events.models import Notification

        ids = (
            object_session(ev)
            .scalars(select(Notification.id).where(Notification.event_id == ev.id))
            .all()
        )
        assert ids
        r = client.post(path, json=list(ids), headers=headers)
        assert r.status_code == 200 and r.json() == {"marked": 0}
        return 1
    if path == "/figures":
        client.post("/login", data=login)
        for code in outside["region"] + outside["grid"]:
            r = client.get(path, params={"code": code})
            assert r.status_code == 404, (code, r.status_code)
        return len(outside["region"] + outside["grid"])
    if path == "/events" and method == "GET":
        client.post("/login", data=login)
        r = client.get(path, params={"list": "search", "q": no})
        assert r.status_code == 200 and f'href="/events/{no}"' not in r.text and "共 0 件" in r.text
        return 1
    if path == "/events/new" and method == "POST":
        client.post("/login", data=login)
        r = client.post(
            path,
            data={
                "category": "ZF03",
                "description": "越界",
                "lon": str(ev.lon),
                "lat": str(ev.lat),
            },
        )
        assert r.status_code == 404 and "管辖范围" in r.text
        return 1
    return None


def _registry_outside(session, grid_code: str):  # type: ignore[no-untyped-def]
    """A person, organization, room and address placed in a grid outside the town."""
    from gridgov.registry.models import Address, Organization, Person, Room

    person = Person(citizen_id="11010519491231002X", name="越界人员", phone="13900000001",
                    grid_code=grid_code, updated_at=NOW)  # fmt: skip
    org = Organization(
        credit_code="91330200MA2BBBBBBB", name="越界公司", grid_code=grid_code, updated_at=NOW
    )
    address = Address(key=f"{grid_code}|越界路|1号", village_code=grid_code[:12], grid_code=grid_code,
                      text="越界路1号", source="ZR", updated_at=NOW)  # fmt: skip
    session.add_all([person, org, address])
    session.flush()
    room = Room(address_id=address.id, grid_code=grid_code, updated_at=NOW)
    session.add(room)
    session.flush()
    return {"person_id": person.id, "org_id": org.id, "room_id": room.id}


def _probe_registry_route(client, headers, method: str, path: str, ids, outside) -> int | None:  # type: ignore[no-untyped-def]
    """Data-center routes: records outside are 404 (also unmasked), searches never list them."""
    if path.startswith("/api/v1/ingest/batches"):
        # Department files concern the whole city: no town account sees any batch.
        url = path.replace("{batch_id}", "1")
        r = client.get(url, headers=headers)
        assert r.status_code == 404 and r.json()["detail"][0]["code"] == "batches_not_found"
        return 1
    page = not path.startswith("/api")
    if page and path.startswith("/registry"):
        client.post("/login", data={"username": "town_staff", "password": "Gridgov@2026"})
    for key in ("person_id", "org_id", "room_id"):
        if "{" + key + "}" in path:
            url = path.replace("{" + key + "}", str(ids[key]))
            for params in ({}, {"unmask": True}):
                r = client.get(url, params=params, headers=None if page else headers)
                assert r.status_code == 404, (url, r.status_code, r.text[:200])
            return 2
    if path == "/registry":
        n = 0
        for kind, q in (("persons", "越界人员"), ("persons", "11010519491231002X"),
                        ("organizations", "越界公司"), ("houses", "越界路"), ("addresses", "越界路")):  # fmt: skip
            r = client.get(path, params={"kind": kind, "q": q})
            assert (
                r.status_code == 200
                and "共 0 条" in r.text
                and "越界" not in r.text.split("共 0 条")[1]
            )
            n += 1
        return n
    searches = {
        "/api/v1/persons": ("11010519491231002X", "越界人员", "13900000001"),
        "/api/v1/organizations": ("91330200MA2BBBBBBB", "越界公司"),
        "/api/v1/houses": ("越界路",),
        "/api/v1/addresses": ("越界路",),
    }
    if path in searches:
        n = 0
        for q in searches[path]:
            r = client.get(path, params={"q": q}, headers=headers)
            assert r.status_code == 200 and r.json()["total"] == 0, (path, q, r.text[:200])
            n += 1
        if path == "/api/v1/persons":
            for code in outside["region"] + outside["grid"]:
                r = client.get(path, params={"grid": code}, headers=headers)
                assert r.status_code == 404, (code, r.text[:200])
                n += 1
        return n
    return None


def _field_outside(session, grid_code: str):  # type: ignore[no-untyped-def]
    """A check task and a patrol (with its day) in a grid outside the town."""
    from gridgov.accounts.models import User
    from gridgov.field.models import Patrol, PatrolDay, TrackPoint
    from gridgov.registry.models import CheckTask

    admin = session.scalar(select(User).where(User.username == "admin"))
    task = CheckTask(entity="person", entity_id=1, field="phone", kind="field_vs_department",
                     candidates=[{"value": "13900000001", "source": "RS"}], grid_code=grid_code,
                     status="open", open_key="outside:1:phone", created_at=NOW, note="")  # fmt: skip
    patrol = Patrol(user_id=admin.id, client_key="outside-1", grid_code=grid_code, started_at=NOW)
    session.add_all([task, patrol])
    session.flush()
    session.add(TrackPoint(patrol_id=patrol.id, at=NOW, lon=121.0, lat=29.0))
    session.add(PatrolDay(user_id=admin.id, day=NOW.date(), grid_code=grid_code, updated_at=NOW))
    session.flush()
    return {"task_id": task.id, "patrol_id": patrol.id}


def _probe_field_route(client, headers, method: str, path: str, ctx, outside) -> int | None:  # type: ignore[no-untyped-def]
    """Field-app routes: nothing outside is listed, loaded or written."""
    if not path.startswith("/api/field/"):
        return None
    ev, ids, field_ids, points = ctx
    if path == "/api/field/home":
        r = client.get(path, headers=headers)
        assert r.status_code == 200 and ev.tracking_no not in r.text and "越界" not in r.text
        return 1
    if path == "/api/field/targets":
        for kind in ("house", "person", "organization"):
            r = client.get(path, params={"kind": kind, "q": "越界"}, headers=headers)
            assert r.status_code == 200 and r.json() == [], (kind, r.text[:200])
            lon, lat = points[0]
            r = client.get(path, params={"kind": kind, "lon": lon, "lat": lat}, headers=headers)
            assert r.status_code == 200 and "越界" not in r.text
        return 6
    if path == "/api/field/check-tasks":
        r = client.get(path, headers=headers)
        assert r.status_code == 200 and all(t["id"] != field_ids["task_id"] for t in r.json())
        return 1
    if path == "/api/field/check-tasks/{task_id}":
        r = client.get(path.replace("{task_id}", str(field_ids["task_id"])), headers=headers)
        assert r.status_code == 404 and r.json()["detail"][0]["code"] == "task_not_found"
        return 1
    if path == "/api/field/patrols/{patrol_id}":
        r = client.get(path.replace("{patrol_id}", str(field_ids["patrol_id"])), headers=headers)
        assert r.status_code == 404 and r.json()["detail"][0]["code"] == "patrol_not_found"
        return 1
    if path == "/api/field/patrol-days":
        r = client.get(path, headers=headers)
        assert r.status_code == 200 and all(d["username"] != "admin" for d in r.json())
        for code in outside["region"] + outside["grid"]:
            r = client.get(path, params={"region": code}, headers=headers)
            assert r.status_code == 404, (code, r.text[:200])
        return 1 + len(outside["region"] + outside["grid"])
    if path == "/api/field/sync":
        items = [
            {"key": "scope-visit-1", "kind": "visit",
             "payload": {"target_kind": "person", "target_id": ids["person_id"]}},
            {"key": "scope-visit-2", "kind": "visit",
             "payload": {"target_kind": "house", "target_id": ids["room_id"]}},
            {"key": "scope-check-1", "kind": "check",
             "payload": {"task_id": field_ids["task_id"], "choice": 0}},
            {"key": "scope-report1", "kind": "report",
             "payload": {"category": "ZF03", "description": "越界", "lon": ev.lon, "lat": ev.lat,
                         "photos": list(ev.photos)}},
            {"key": "scope-act-001", "kind": "act",
             "payload": {"event": ev.tracking_no, "action": "receive"}},
        ]  # fmt: skip
        r = client.post(path, json={"items": items}, headers=headers)
        assert r.status_code == 200, r.text
        for res in r.json()["results"]:
            assert res["status"] == "refused", res
            assert res["result"]["code"].endswith("not_found") or res["result"]["code"] in (
                "outside_jurisdiction",
            ), res
        return len(items)
    return None


# ---------------------------------------------------------------- analytics: early warning


def _warning_outside(session, grid_code: str) -> int:  # type: ignore[no-untyped-def]
    """A warning about a grid outside the town."""
    from gridgov.analytics.warnings.models import EarlyWarning

    w = EarlyWarning(kind="rise", key=f"rise:{grid_code}:ZF03:scope", subject=f"rise:{grid_code}:ZF03",
                     region_code=grid_code, region_level=5, category_code="ZF03", day=NOW.date(),
                     title="越界预警", reason="越界", evidence={}, link="", status="open",
                     raised_at=NOW, updated_at=NOW)  # fmt: skip
    session.add(w)
    session.flush()
    return w.id


def _probe_warning_route(
    client, headers, method: str, path: str, warning_id: int, outside
) -> int | None:  # type: ignore[no-untyped-def]
    """Early-warning routes: a warning outside is never listed, read or handled."""
    base = "/api/v1/analytics/warnings"
    if not (path.startswith(base) or path.startswith("/analytics/warnings")):
        return None
    page = not path.startswith("/api")
    if page:
        client.post("/login", data={"username": "town_staff", "password": "Gridgov@2026"})
    kw = {} if page else {"headers": headers}
    if "{warning_id}" in path:
        url = path.replace("{warning_id}", str(warning_id))
        if method == "POST":
            body = {"action": "acknowledge", "note": ""}
            r = client.post(url, data=body) if page else client.post(url, json=body, **kw)
        else:
            r = client.get(url, **kw)
        assert r.status_code == 404, (method, url, r.status_code, r.text[:200])
        return 1
    r = client.get(path, params={"status": ""}, **kw)
    assert r.status_code == 200 and "越界预警" not in r.text, (path, r.text[:200])
    n = 1
    for code in outside["region"] + outside["grid"]:
        r = client.get(path, params={"region": code}, **kw)
        assert r.status_code == 404, (path, code, r.status_code)
        n += 1
    return n


def _walk(routes, prefix: str = ""):  # type: ignore[no-untyped-def]
    """Every (method, path), descending into included routers (FastAPI wraps them lazily)."""
    for route in routes:
        if isinstance(route, Mount):
            continue
        inner = getattr(route, "original_router", None)
        if inner is not None:
            ctx = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
            continue
        methods = getattr(route, "methods", None) or set()
        for m in sorted(methods - {"HEAD", "OPTIONS"}):
            yield m, prefix + route.path


def _routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return sorted(set(_walk(app.routes)))


# --- assessment (考核): analytics/assessment routes -------------------------------------------


def _probe_assessment_route(
    client, headers, method: str, path: str, outside, town: str
) -> int | None:  # type: ignore[no-untyped-def]
    """Assessment routes: a region outside is 404; by default only the town's units are ranked."""
    if not path.startswith(("/api/v1/analytics/assessment", "/analytics/assessment")):
        return None
    page = not path.startswith("/api")
    if page:
        client.post("/login", data={"username": "town_staff", "password": "Gridgov@2026"})
    name = "code" if page else "region"
    n = 0
    for code in outside["region"] + outside["grid"]:
        r = client.get(path, params={name: code}, headers=None if page else headers)
        assert r.status_code == 404, (path, code, r.status_code, r.text[:200])
        n += 1
    if path == "/api/v1/analytics/assessment":
        body = client.get(path, headers=headers).json()
        assert body["region"]["code"] == town
        for rows in body["levels"].values():
            for row in rows:
                code = row.get("grid_code") or row["code"]
                assert code.startswith(town[:9]), (code, town)
        n += 1
    return n


def test_town_account_sees_nothing_outside_its_town(app, client, session) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "town_staff")
    me = client.get("/api/v1/me", headers=headers).json()
    town = me["region_code"]
    outside = _outside(session, town)
    points = _outside_points(session, town)
    probed = 0
    far = _event_outside(app, session, outside["grid"][0])
    records = _registry_outside(session, outside["grid"][0])
    field_ids = _field_outside(session, outside["grid"][0])
    warning_id = _warning_outside(session, outside["grid"][0])  # analytics: early warning
    for method, path in _routes(app):
        if (method, path) in NOT_SCOPED or path.startswith(PUBLIC_PREFIXES):
            continue
        n = _probe_event_route(client, headers, method, path, far, outside)
        if n is None:
            n = _probe_registry_route(client, headers, method, path, records, outside)
        if n is None:
            n = _probe_field_route(
                client, headers, method, path, (far, records, field_ids, points), outside
            )
        if n is None:  # analytics: early warning
            n = _probe_warning_route(client, headers, method, path, warning_id, outside)
        if n is None:
            n = _probe_assessment_route(client, headers, method, path, outside, town)
        if n is not None:
            probed += n
            continue
        if "{code}" in path:
            for code in outside["region"] + outside["grid"]:
                url = path.replace("{code}", code)
                kwargs = {"json": {"username": "grid_worker"}} if method == "PUT" else {}
                r = client.request(method, url, headers=headers, **kwargs)
                assert r.status_code == 404, (method, url, r.status_code, r.text)
                assert code in r.text or "不存在" in r.text
                probed += 1
            continue
        if path == "/api/v1/locate":
            for lon, lat in points:
                r = client.get(path, params={"lon": lon, "lat": lat}, headers=headers)
                assert r.status_code == 404, (lon, lat, r.text)
                probed += 1
            continue
        if path == "/api/v1/locate/batch":
            r = client.post(path, json={"points": [list(p) for p in points]}, headers=headers)
            assert r.status_code == 200
            assert r.json()["grid_codes"] == [None] * len(points) and r.json()["located"] == 0
            probed += 1
            continue
        if path == "/api/v1/regions":
            for code in outside["region"] + outside["grid"]:
                name = session.get(Region, code).name
                for q in (code, name):
                    r = client.get(path, params={"q": q, "limit": 200}, headers=headers)
                    assert r.status_code == 200
                    assert all(hit["code"].startswith(town[:9]) for hit in r.json()), (q, r.json())
                    probed += 1
            continue
        # --- analytics: dashboards and rollups (the JSON/XLSX routes take {code}: probed above) ---
        if path == "/analytics/dashboard":
            client.post("/login", data={"username": "town_staff", "password": "Gridgov@2026"})
            for code in outside["region"] + outside["grid"]:
                r = client.get(path, params={"code": code})
                assert r.status_code == 404 and "管辖范围" in r.text, (code, r.status_code)
                probed += 1
            continue
        if path == "/map":
            cookies_client = client
            cookies_client.post(
                "/login", data={"username": "town_staff", "password": "Gridgov@2026"}
            )
            for code in outside["region"] + outside["grid"]:
                r = cookies_client.get(path, params={"code": code})
                assert r.status_code == 404, (code, r.status_code)
                probed += 1
            continue
        raise AssertionError(f"route {method} {path} has no jurisdiction probe in {__file__}")
    assert probed > 40


def test_town_account_sees_its_own_subtree(client, session) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "town_staff")
    town = client.get("/api/v1/me", headers=headers).json()["region_code"]
    r = client.get(f"/api/v1/regions/{town}", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["level"] == 3
    assert body["children_count"] > 0
    kids = client.get(f"/api/v1/regions/{town}/children", headers=headers).json()
    assert len(kids) == body["children_count"]
    grid = session.scalars(
        select(Region).where(Region.level == 5, Region.code.like(town[:9] + "%")).limit(1)
    ).first()
    p = shapely.from_wkb(grid.geometry).representative_point()
    r = client.get("/api/v1/locate", params={"lon": p.x, "lat": p.y}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["grid"]["code"] == grid.code
    assert [x["level"] for x in r.json()["path"]] == [1, 2, 3, 4, 5]


def test_unauthenticated_api_is_401(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/regions/330200000000")
    assert r.status_code == 401
    assert r.json()["detail"][0]["code"] == "not_authenticated"
    assert r.headers["www-authenticate"] == "Bearer"


def test_routes_are_known(app) -> None:  # type: ignore[no-untyped-def]
    # Sanity: the enumeration sees the API and the pages, not only the docs.
    paths = {p for _, p in _routes(app)}
    assert "/api/v1/regions/{code}/grids" in paths
    assert "/map" in paths
    assert ("PUT", "/api/v1/grids/{code}/leader") in _routes(app)
    assert APIRoute is not None
