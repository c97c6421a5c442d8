"""The field app's API over HTTP: session login, home, targets, tasks, patrols, sync replay."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from tests.conftest import NOW
from tests.field_helpers import STEP, place_field_data

from gridgov.accounts.models import User
from gridgov.core import clock
from gridgov.demo.build import DEMO_PASSWORD
from gridgov.events.models import Event


def login(client, username: str = "grid_worker") -> dict[str, str]:  # type: ignore[no-untyped-def]
    r = client.post("/api/field/session", data={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["idle_minutes"] > 0
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(buf, "PNG")
    return buf.getvalue()


def setup(session):  # type: ignore[no-untyped-def]
    worker = session.scalar(select(User).where(User.username == "grid_worker"))
    return place_field_data(session, worker.region_code, NOW, leader_id=worker.id)


def test_login_refused_and_idle_session_expires(client, session) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/field/session", data={"username": "grid_worker", "password": "wrong"})
    assert r.status_code == 401 and r.json()["detail"][0]["msg"]
    headers = login(client)
    assert client.get("/api/field/home", headers=headers).status_code == 200
    clock.freeze(clock.now() + timedelta(hours=2))  # past the 30 idle minutes
    try:
        r = client.get("/api/field/home", headers=headers)
        assert r.status_code == 401 and r.json()["detail"][0]["code"] == "not_authenticated"
    finally:
        clock.freeze(None)


def test_home_targets_tasks(client, session) -> None:  # type: ignore[no-untyped-def]
    data = setup(session)
    headers = login(client)
    home = client.get("/api/field/home", headers=headers).json()
    assert home["grid"]["code"] == data.grid_code and home["grid"]["geometry"]
    assert home["counts"]["check_tasks"] == 1 and home["due_visits"][0]["name"] == "李独居"
    near = client.get(
        "/api/field/targets",
        params={"kind": "house", "lon": data.lon, "lat": data.lat + 9 * STEP},
        headers=headers,
    ).json()
    assert near[0]["label"] == "巡查路4号1幢101室" and near[0]["distance_m"] < 1
    task = client.get(f"/api/field/check-tasks/{data.task_id}", headers=headers).json()
    assert [c["source_name"] for c in task["candidates"]] == ["网格员核查", "人社"]
    assert task["field_name"] == "联系电话" and task["subject"] == "张走访"
    cats = client.get("/api/field/categories", headers=headers).json()
    assert len(cats) == 34 and any(c["self_close"] for c in cats)


def test_sync_over_http_replays_without_duplicates(client, session) -> None:  # type: ignore[no-untyped-def]
    data = setup(session)
    headers = login(client)
    r = client.post("/api/v1/photos", files={"file": ("p.png", png(), "image/png")},
                    headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    sha = r.json()["sha256"]
    body = {"items": [
        {"key": "k-report-0001", "kind": "report", "payload": {
            "category": "ZF03", "description": "楼道堆放杂物", "lon": data.lon, "lat": data.lat,
            "accuracy": 12, "photos": [sha]}},
        {"key": "k-report-0002", "kind": "report", "payload": {
            "category": "SC01", "description": "", "lon": data.lon, "lat": data.lat,
            "photos": [sha]}},
    ]}  # fmt: skip
    r = client.post("/api/field/sync", json=body, headers=headers)
    assert r.status_code == 200, r.text
    first = r.json()["results"]
    assert first[0]["status"] == "done" and first[0]["result"]["tracking_no"]
    ev = client.get(f"/api/v1/events/{first[0]['result']['tracking_no']}", headers=headers).json()
    assert ev["location_accuracy_m"] == 12
    assert first[1]["status"] == "refused" and "description" in first[1]["result"]["msg"]
    before = session.scalar(select(func.count()).select_from(Event))
    again = client.post("/api/field/sync", json=body, headers=headers).json()["results"]
    assert [x["replayed"] for x in again] == [True, True]
    assert again[0]["result"] == first[0]["result"]
    assert session.scalar(select(func.count()).select_from(Event)) == before
    # The event is in the village's worklist.
    staff = login(client, "village_staff")
    todo = client.get("/api/v1/worklists/todo", headers=staff).json()
    assert first[0]["result"]["tracking_no"] in [e["tracking_no"] for e in todo["items"]]
    # Bad input names the field.
    r = client.post("/api/field/sync", json={"items": [{"key": "short", "kind": "visit"}]},
                    headers=headers)  # fmt: skip
    assert r.status_code == 422 and "key" in r.text


def test_patrol_track_visible_to_worker_and_village_only(client, session) -> None:  # type: ignore[no-untyped-def]
    data = setup(session)
    headers = login(client)
    now = clock.now()
    pts = [{"at": (now - timedelta(minutes=10 - i)).isoformat(), "lon": data.lon,
            "lat": data.lat + i * STEP, "accuracy": 5} for i in range(10)]  # fmt: skip
    items = [
        {"key": "p-start-0001", "kind": "patrol_start",
         "payload": {"patrol": "walk-1", "at": (now - timedelta(minutes=11)).isoformat()}},
        {"key": "p-track-0001", "kind": "track", "payload": {"patrol": "walk-1", "points": pts}},
        {"key": "p-stop-00001", "kind": "patrol_stop", "payload": {"patrol": "walk-1"}},
    ]  # fmt: skip
    results = client.post("/api/field/sync", json={"items": items}, headers=headers).json()
    summary = results["results"][2]["result"]
    assert summary["coverage"] == 0.8 and summary["points"] == 10
    pid = summary["patrol_id"]
    mine = client.get(f"/api/field/patrols/{pid}", headers=headers).json()
    assert len(mine["track"]) == 10
    village = login(client, "village_staff")
    assert client.get(f"/api/field/patrols/{pid}", headers=village).status_code == 200
    days = client.get("/api/field/patrol-days", headers=village).json()
    assert days[0]["username"] == "grid_worker" and days[0]["coverage"] == 0.8
    dept = login(client, "department_staff")
    assert client.get(f"/api/field/patrols/{pid}", headers=dept).status_code == 404


def test_shell_manifest_and_service_worker(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/m/")
    assert r.status_code == 200 and "manifest.webmanifest" in r.text and 'lang="zh-CN"' in r.text
    m = client.get("/m/manifest.webmanifest")
    assert m.status_code == 200 and m.json()["start_url"] == "/m/"
    sw = client.get("/m/sw.js")
    assert sw.status_code == 200 and sw.headers["service-worker-allowed"] == "/m/"


def test_shell_is_versioned_and_data_is_never_cached(client, session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gridgov import __version__
    from gridgov.field import pages

    version = pages.shell_version()
    assert version.startswith(__version__ + "-")
    page = client.get("/m/")
    assert page.headers["cache-control"] == "no-cache"
    for asset in ("app.js", "store.js", "field.css"):
        assert f"/static/app/field/{asset}?v={version}" in page.text
    sw = client.get("/m/sw.js")
    assert sw.headers["cache-control"] == "no-cache"
    assert f'const VERSION = "{version}"' in sw.text and "__VERSION__" not in sw.text
    assert 'cache: "no-cache"' in sw.text and '"/static/app/field/app.js" + V' in sw.text
    # A change to the app's files gives a new version (script URLs and cache name).
    pages.shell_version.cache_clear()
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: real(self) + b"/* changed */")
    try:
        assert pages.shell_version() != version
    finally:
        monkeypatch.undo()
        pages.shell_version.cache_clear()
    setup(session)
    r = client.get("/api/field/home", headers=login(client))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"


def test_check_task_outside_the_grid_is_404_even_for_its_assignee(client, session) -> None:  # type: ignore[no-untyped-def]
    from gridgov.geo.models import Region
    from gridgov.registry.models import CheckTask

    data = setup(session)
    headers = login(client)
    assert client.get(f"/api/field/check-tasks/{data.task_id}", headers=headers).status_code == 200
    other = session.scalar(
        select(Region.code).where(Region.level == 5, Region.code != data.grid_code).limit(1)
    )
    session.get(CheckTask, data.task_id).grid_code = other
    session.flush()
    r = client.get(f"/api/field/check-tasks/{data.task_id}", headers=headers)
    assert r.status_code == 404 and r.json()["detail"][0]["code"] == "task_not_found"
    assert client.get("/api/field/check-tasks", headers=headers).json() == []
    r = client.post("/api/field/sync", headers=headers, json={"items": [
        {"key": "check-outside-1", "kind": "check", "payload": {"task_id": data.task_id,
                                                               "choice": 0}}]})  # fmt: skip
    assert r.json()["results"][0]["status"] == "refused"
    assert r.json()["results"][0]["result"]["code"] == "task_not_found"


def test_shell_passes_the_tile_layer_only_when_configured(app, client) -> None:  # type: ignore[no-untyped-def]
    assert 'data-tile-url=""' in client.get("/m/").text
    tiles = "https://tiles.example.org/{z}/{x}/{y}.png"
    app.state.settings = app.state.settings.model_copy(
        update={"tile_url": tiles, "tile_attribution": "© 示例底图"}
    )
    page = client.get("/m/").text
    assert f'data-tile-url="{tiles}"' in page and 'data-tile-attribution="© 示例底图"' in page
