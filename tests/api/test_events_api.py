"""The event closed loop through HTTP: report, act with versions, look up, worklists, export, photos."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import shapely
from sqlalchemy import select
from tests.conftest import NOW
from tests.helpers import bearer

from gridgov.accounts.models import User
from gridgov.core import clock
from gridgov.events.export import COLUMNS
from gridgov.events.timeline import GENESIS, entry_hash
from gridgov.geo.models import Region

API = "/api/v1"
HEX64 = re.compile(r"[0-9a-f]{64}")
PASSWORD = "Gridgov@2026"


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    """Every request sees the same 'now' (a Friday morning in office hours), so deadlines are stable."""
    clock.freeze(NOW)
    try:
        yield
    finally:
        clock.freeze(None)


def user(session, username: str) -> User:  # type: ignore[no-untyped-def]
    u: User | None = session.scalar(select(User).where(User.username == username))
    assert u is not None
    return u


def point_in(session, code: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    p = shapely.from_wkb(session.get(Region, code).geometry).representative_point()
    return p.x, p.y


def report_body(session, **kw: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    lon, lat = point_in(session, user(session, "grid_worker").region_code)
    body: dict[str, Any] = {
        "category": "ZF03",
        "description": "小区门口垃圾堆放",
        "lon": lon,
        "lat": lat,
        "address": "演示小区东门",
    }
    body.update(kw)
    return body


def report(client, session, headers: dict[str, str], **kw: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.post(f"{API}/events", json=report_body(session, **kw), headers=headers)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def act(client, headers: dict[str, str], ev: dict[str, Any], action: str, **kw: Any) -> Any:  # type: ignore[no-untyped-def]
    body = {"action": action, "version": ev["version"], **kw}
    return client.post(f"{API}/events/{ev['tracking_no']}/actions", json=body, headers=headers)


def act_ok(  # type: ignore[no-untyped-def]
    client, headers: dict[str, str], ev: dict[str, Any], action: str, **kw: Any
) -> dict[str, Any]:
    r = act(client, headers, ev, action, **kw)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def get_event(client, headers: dict[str, str], no: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.get(f"{API}/events/{no}", headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def error_code(r) -> str:  # type: ignore[no-untyped-def]
    code: str = r.json()["detail"][0]["code"]
    return code


def png_bytes(color: str = "red") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, "PNG")
    return buf.getvalue()


def other_district_user(session) -> str:  # type: ignore[no-untyped-def]
    """A district_staff account of a district other than the demo accounts' branch."""
    from gridgov.accounts.service import create_user

    own = user(session, "district_staff").region_code
    other = session.scalars(
        select(Region.code).where(Region.level == 2, Region.code != own).order_by(Region.code)
    ).first()
    assert other is not None
    create_user(
        session,
        username="other_district",
        password=PASSWORD,
        region_code=other,
        roles=["district_staff"],
        now=NOW,
    )
    session.flush()
    return "other_district"


# ------------------------------------------------------------------------------------ report


def test_grid_worker_reports_a_point_in_own_grid(client, session) -> None:  # type: ignore[no-untyped-def]
    worker = user(session, "grid_worker")
    grid = worker.region_code
    r = client.post(
        f"{API}/events", json=report_body(session), headers=bearer(client, "grid_worker")
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    no = ev["tracking_no"]
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{10}", no)
    assert r.headers["location"] == f"{API}/events/{no}"
    assert ev["category"] == "ZF03" and ev["category_name"] == "环境卫生 / 暴露垃圾"
    assert ev["status"] == "reported" and ev["status_name"] == "待受理"
    assert ev["channel"] == "grid" and ev["urgency"] == "normal"
    assert ev["description"] == "小区门口垃圾堆放" and ev["address"] == "演示小区东门"
    assert ev["title"] == "环境卫生 / 暴露垃圾: 小区门口垃圾堆放"
    assert ev["grid_code"] == grid
    assert [p["code"] for p in ev["path"]] == [
        grid[:6] + "000000",
        grid[:9] + "000",
        grid[:12],
        grid,
    ]
    assert all(p["name"] for p in ev["path"])
    # A grid worker's report goes to the village, which accepts it.
    assert ev["receiver"]["key"] == grid[:12] and ev["holder"]["key"] == grid[:12]
    assert ev["sender"] is None and ev["closed_at"] is None and ev["self_closed"] is False
    assert ev["allowance"] == "1wd" and ev["photos"] == []
    assert datetime.fromisoformat(ev["reported_at"]) == NOW
    # The reporter cannot accept their own report: nothing to do until it comes back.
    assert ev["actions"] == []
    # The Location header leads to the same event.
    again = client.get(r.headers["location"], headers=bearer(client, "village_staff"))
    assert again.status_code == 200 and again.json()["id"] == ev["id"]


def test_idempotency_key_replays_and_refuses_a_different_body(client, session) -> None:  # type: ignore[no-untyped-def]
    headers = {**bearer(client, "grid_worker"), "Idempotency-Key": "report-abc-1"}
    body = report_body(session, description="幂等测试: 楼道堆物")
    first = client.post(f"{API}/events", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = client.post(f"{API}/events", json=body, headers=headers)
    assert second.status_code == 200, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["tracking_no"] == first.json()["tracking_no"]
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["location"] == first.headers["location"]

    changed = client.post(
        f"{API}/events", json={**body, "description": "幂等测试: 另一件事"}, headers=headers
    )
    assert changed.status_code == 409
    assert error_code(changed) == "idempotency_key_reused"
    assert first.json()["tracking_no"] in changed.json()["detail"][0]["msg"]

    # Only one event was created.
    found = client.get(
        f"{API}/events", params={"q": "幂等测试"}, headers=bearer(client, "village_staff")
    ).json()
    assert found["total"] == 1


def test_report_refusals(client, session) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "grid_worker")
    r = client.post(f"{API}/events", json=report_body(session, category="XX99"), headers=headers)
    assert r.status_code == 422 and error_code(r) == "unknown_category"
    assert "XX99" in r.json()["detail"][0]["msg"]

    r = client.post(
        f"{API}/events", json=report_body(session, lon=116.397, lat=39.909), headers=headers
    )
    assert r.status_code == 422 and error_code(r) == "outside_city"
    assert "不在本市任何网格内" in r.json()["detail"][0]["msg"]

    # Nothing was stored by the refused reports.
    todo = client.get(f"{API}/worklists/todo", headers=bearer(client, "village_staff")).json()
    assert todo["total"] == 0


# ------------------------------------------------------------------------- the closed loop


def test_full_loop_with_versions_actions_and_timeline(client, session) -> None:  # type: ignore[no-untyped-def]
    worker = bearer(client, "grid_worker")
    village = bearer(client, "village_staff")
    grid = user(session, "grid_worker").region_code

    ev = report(client, session, worker)
    no = ev["tracking_no"]
    assert set(get_event(client, village, no)["actions"]) == {"accept", "refuse", "escalate"}

    ev = act_ok(client, village, ev, "accept")
    assert ev["status"] == "accepted" and ev["routed"]["key"] == grid
    assert ev["deadline_at"] is not None and datetime.fromisoformat(ev["deadline_at"]) > NOW
    assert set(ev["actions"]) == {"dispatch", "escalate"}
    assert grid in [t["key"] for t in ev["targets"]]

    ev = act_ok(client, village, ev, "dispatch", target=grid)
    assert ev["status"] == "dispatched" and ev["holder"]["key"] == grid
    assert ev["sender"]["key"] == grid[:12]
    # The village, as sender and superior, may redispatch or supervise; the grid worker signs for it.
    assert set(ev["actions"]) == {"redispatch", "supervise"}
    ev = get_event(client, worker, no)
    assert set(ev["actions"]) == {"receive", "return", "escalate", "request_extension"}

    ev = act_ok(client, worker, ev, "receive")
    assert ev["status"] == "handling"
    assert "feedback" in ev["actions"] and "receive" not in ev["actions"]

    ev = act_ok(client, worker, ev, "feedback", comment="已清理干净")
    assert ev["status"] == "feedback" and ev["result"] == "已清理干净"
    assert ev["actions"] == []
    ev = get_event(client, village, no)
    assert {"verify", "reject"} <= set(ev["actions"])

    ev = act_ok(client, village, ev, "verify")
    assert ev["status"] == "verifying"
    ev = get_event(client, worker, no)
    assert ev["actions"] == ["close"]

    ev = act_ok(client, worker, ev, "close", satisfaction="satisfied")
    assert ev["status"] == "closed" and ev["status_name"] == "已结案"
    assert ev["closed_level"] == 5 and ev["closed_on_time"] is True
    assert ev["satisfaction"] == "satisfied"
    assert ev["actions"] == []
    assert get_event(client, village, no)["actions"] == ["reopen"]

    r = client.get(f"{API}/events/{no}/timeline", headers=village)
    assert r.status_code == 200, r.text
    entries = r.json()
    assert [e["action"] for e in entries] == [
        "report",
        "accept",
        "dispatch",
        "receive",
        "feedback",
        "verify",
        "close",
    ]
    assert [e["seq"] for e in entries] == list(range(1, 8))
    assert [e["action_name"] for e in entries][:3] == ["上报", "受理", "分派"]
    assert [e["to_status"] for e in entries] == [
        "reported",
        "accepted",
        "dispatched",
        "handling",
        "feedback",
        "verifying",
        "closed",
    ]
    for before, after in itertools.pairwise(entries):
        assert after["from_status"] == before["to_status"]
    assert entries[4]["comment"] == "已清理干净"
    # Each hash chains the previous one over the entry's fields.
    ids = {
        u.display_name: u.id for u in (user(session, "grid_worker"), user(session, "village_staff"))
    }
    prev = GENESIS
    for e in entries:
        assert HEX64.fullmatch(e["hash"])
        fields = {
            "event_id": ev["id"],
            "seq": e["seq"],
            "at": datetime.fromisoformat(e["at"]),
            "actor_id": ids[e["actor_name"]],
            **{
                k: e[k]
                for k in (
                    "actor_name",
                    "actor_role",
                    "actor_unit",
                    "action",
                    "from_status",
                    "to_status",
                    "from_unit",
                    "to_unit",
                    "comment",
                    "attachments",
                    "data",
                )
            },
        }
        assert e["hash"] == entry_hash(prev, fields), e["action"]
        prev = e["hash"]


def test_stale_version_and_stale_if_match_are_409_with_current_state(client, session) -> None:  # type: ignore[no-untyped-def]
    worker = bearer(client, "grid_worker")
    village = bearer(client, "village_staff")
    reported = report(client, session, worker)
    no = reported["tracking_no"]
    accepted = act_ok(client, village, reported, "accept")
    assert accepted["version"] != reported["version"]

    # A second browser still showing the reported event tries to accept it again.
    r = act(client, village, reported, "accept")
    assert r.status_code == 409
    body = r.json()
    assert body["detail"][0]["code"] == "version_conflict"
    assert no in body["detail"][0]["msg"]
    assert body["current"]["version"] == accepted["version"]
    assert body["current"]["status"] == "accepted"
    assert set(body["current"]["actions"]) == {"dispatch", "escalate"}
    assert r.headers["etag"] == str(accepted["version"])

    r = client.post(
        f"{API}/events/{no}/actions",
        json={"action": "dispatch"},
        headers={**village, "If-Match": f'"{reported["version"]}"'},
    )
    assert r.status_code == 409
    assert r.json()["detail"][0]["code"] == "version_conflict"
    assert r.json()["current"]["version"] == accepted["version"]
    assert r.json()["current"]["status"] == "accepted"

    # Nothing changed; the current If-Match goes through.
    assert get_event(client, village, no)["version"] == accepted["version"]
    r = client.post(
        f"{API}/events/{no}/actions",
        json={"action": "dispatch"},
        headers={**village, "If-Match": f'"{accepted["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "dispatched"

    r = client.post(
        f"{API}/events/{no}/actions",
        json={"action": "receive"},
        headers={**worker, "If-Match": "not-a-version"},
    )
    assert r.status_code == 422 and error_code(r) == "bad_if_match"


def test_forbidden_invalid_and_reasonless_actions(client, session) -> None:  # type: ignore[no-untyped-def]
    worker = bearer(client, "grid_worker")
    village = bearer(client, "village_staff")
    ev = report(client, session, worker)
    no = ev["tracking_no"]

    # The reporting grid worker may not accept: only the holding unit may.
    r = act(client, worker, ev, "accept")
    assert r.status_code == 403 and error_code(r) == "not_allowed"
    msg = r.json()["detail"][0]["msg"]
    assert msg.startswith("只有") and "当前承办单位" in msg and no in msg and "受理" in msg

    # Closing a reported event skips the loop.
    r = act(client, village, ev, "close")
    assert r.status_code == 409 and error_code(r) == "invalid_transition"
    assert "待受理" in r.json()["detail"][0]["msg"]

    ev = act_ok(client, village, ev, "accept")
    ev = act_ok(client, village, ev, "dispatch")
    r = act(client, worker, ev, "return")
    assert r.status_code == 422 and error_code(r) == "reason_required"
    assert "理由" in r.json()["detail"][0]["msg"]
    r = act(client, worker, ev, "return", comment="   ")
    assert r.status_code == 422 and error_code(r) == "reason_required"

    r = act(client, worker, ev, "teleport")
    assert r.status_code == 422 and error_code(r) == "unknown_action"

    # None of the refused attempts changed the event.
    after = get_event(client, worker, no)
    assert after["status"] == "dispatched" and after["version"] == ev["version"]
    r = client.get(f"{API}/events/{no}/timeline", headers=worker)
    assert [e["action"] for e in r.json()] == ["report", "accept", "dispatch"]


# ----------------------------------------------------------------- worklists, search, export


def test_worklists_and_search_find_the_event(client, session) -> None:  # type: ignore[no-untyped-def]
    worker = bearer(client, "grid_worker")
    village = bearer(client, "village_staff")
    ev = report(client, session, worker)
    no = ev["tracking_no"]

    todo = client.get(f"{API}/worklists/todo", headers=village).json()
    assert no in [e["tracking_no"] for e in todo["items"]]
    mine = client.get(f"{API}/worklists/todo", headers=worker).json()
    assert no not in [e["tracking_no"] for e in mine["items"]]

    ev = act_ok(client, village, get_event(client, village, no), "accept")
    ev = act_ok(client, village, ev, "dispatch")
    mine = client.get(f"{API}/worklists/todo", headers=worker).json()
    assert no in [e["tracking_no"] for e in mine["items"]]
    done = client.get(f"{API}/worklists/done", headers=village).json()
    assert no in [e["tracking_no"] for e in done["items"]]

    r = client.get(f"{API}/worklists/nonsense", headers=village)
    assert r.status_code == 422 and error_code(r) == "bad_worklist"

    for q in (no, no.lower()):
        found = client.get(f"{API}/events", params={"q": q}, headers=village).json()
        assert found["total"] == 1 and found["items"][0]["tracking_no"] == no
    by_status = client.get(
        f"{API}/events", params={"status": "dispatched", "category": "ZF03"}, headers=village
    ).json()
    assert no in [e["tracking_no"] for e in by_status["items"]]
    none = client.get(f"{API}/events", params={"q": no, "status": "closed"}, headers=village)
    assert none.json()["total"] == 0


def test_other_district_cannot_see_the_event(client, session) -> None:  # type: ignore[no-untyped-def]
    ev = report(client, session, bearer(client, "grid_worker"))
    no = ev["tracking_no"]
    outsider = bearer(client, other_district_user(session))
    assert client.get(f"{API}/events/{no}", headers=outsider).status_code == 404
    assert client.get(f"{API}/events/{no}/timeline", headers=outsider).status_code == 404
    r = act(client, outsider, ev, "supervise", comment="越界督办")
    assert r.status_code == 404 and error_code(r) == "event_not_found"
    assert client.get(f"{API}/events", params={"q": no}, headers=outsider).json()["total"] == 0
    rows = client.get(f"{API}/events-export.csv", params={"q": no}, headers=outsider)
    assert no not in rows.content.decode("utf-8-sig")


def test_export_csv_and_xlsx_hold_the_rows(client, session) -> None:  # type: ignore[no-untyped-def]
    village = bearer(client, "village_staff")
    ev = report(client, session, bearer(client, "grid_worker"))
    no = ev["tracking_no"]

    r = client.get(f"{API}/events-export.csv", params={"q": no}, headers=village)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8").removeprefix("\ufeff"))))
    assert rows[0] == list(COLUMNS)
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["查询编号"] == no
    assert row["类别代码"] == "ZF03" and row["状态"] == "待受理" and row["渠道"] == "网格员上报"
    assert row["网格代码"] == ev["grid_code"] and row["地址"] == "演示小区东门"
    assert row["上报时间"] == "2026-11-27 10:00:00"  # Asia/Shanghai

    r = client.get(f"{API}/events-export.xlsx", params={"q": no}, headers=village)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    with zipfile.ZipFile(io.BytesIO(r.content)) as book:
        names = book.namelist()
        assert "xl/worksheets/sheet1.xml" in names
        text = book.read("xl/worksheets/sheet1.xml").decode("utf-8")
        if "xl/sharedStrings.xml" in names:
            text += book.read("xl/sharedStrings.xml").decode("utf-8")
    assert no in text and "查询编号" in text

    r = client.get(f"{API}/events-export.pdf", headers=village)
    assert r.status_code == 422 and error_code(r) == "bad_format"


# ----------------------------------------------------------------------------------- photos


def test_photo_upload_self_close_and_thumbnail_scope(client, session) -> None:  # type: ignore[no-untyped-def]
    worker = bearer(client, "grid_worker")
    data = png_bytes()
    r = client.post(
        f"{API}/photos", files={"file": ("after.png", data, "image/png")}, headers=worker
    )
    assert r.status_code == 201, r.text
    photo = r.json()
    sha = hashlib.sha256(data).hexdigest()
    assert photo["sha256"] == sha
    assert photo["media_type"] == "image/png"
    assert (photo["width"], photo["height"], photo["size"]) == (40, 30, len(data))
    assert photo["thumb_url"] == f"{API}/photos/{sha}/thumb"

    # Content decides, not the name or the declared type.
    r = client.post(
        f"{API}/photos",
        files={"file": ("fake.png", "这不是图片".encode(), "image/png")},
        headers=worker,
    )
    assert r.status_code == 422 and error_code(r) == "photo_type"
    assert "JPEG、PNG 或 WebP" in r.json()["detail"][0]["msg"]

    ev = report(client, session, worker, photos=[sha], self_close=True, result="已当场清理")
    assert ev["status"] == "closed" and ev["self_closed"] is True
    assert ev["closed_level"] == 5 and ev["result"] == "已当场清理"
    assert ev["photos"] == [sha]
    timeline = client.get(f"{API}/events/{ev['tracking_no']}/timeline", headers=worker).json()
    assert [e["action"] for e in timeline] == ["report", "self_close"]
    assert timeline[1]["attachments"] == [sha]

    r = client.get(f"{API}/photos/{sha}/thumb", headers=worker)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content.startswith(b"\xff\xd8\xff")
    # Staff above the grid see it through the event.
    assert (
        client.get(f"{API}/photos/{sha}/thumb", headers=bearer(client, "town_staff")).status_code
        == 200
    )

    outsider = bearer(client, other_district_user(session))
    r = client.get(f"{API}/photos/{sha}/thumb", headers=outsider)
    assert r.status_code == 404 and error_code(r) == "photo_not_found"
    assert client.get(f"{API}/photos/{sha}", headers=outsider).status_code == 404


def test_self_close_with_a_separate_after_photo_in_the_api_and_the_desk_form(  # type: ignore[no-untyped-def]
    client, session
) -> None:
    """The after photo goes on the closing step only; the report keeps the scene photos (the
    only ones a public page could show)."""
    worker = bearer(client, "grid_worker")
    shas = []
    for color in ("red", "green"):
        r = client.post(f"{API}/photos", files={"file": ("p.png", png_bytes(color), "image/png")},
                        headers=worker)  # fmt: skip
        shas.append(r.json()["sha256"])
    scene, after = shas
    ev = report(client, session, worker, photos=[scene], after_photos=[after], self_close=True,
                result="已当场清理")  # fmt: skip
    assert ev["status"] == "closed" and ev["photos"] == [scene]
    timeline = client.get(f"{API}/events/{ev['tracking_no']}/timeline", headers=worker).json()
    assert [(e["action"], e["attachments"]) for e in timeline] == [
        ("report", [scene]), ("self_close", [after])
    ]  # fmt: skip
    # An after photo belongs to a self-closure only.
    r = client.post(f"{API}/events", json=report_body(session, photos=[scene],
                    after_photos=[after]), headers=worker)  # fmt: skip
    assert r.status_code == 422 and error_code(r) == "bad_photos"

    # The desk form has its own file field for the after photo.
    client.post("/login", data={"username": "grid_worker", "password": "Gridgov@2026"})
    assert 'name="after_photos"' in client.get("/events/new").text
    lon, lat = point_in(session, user(session, "grid_worker").region_code)
    r = client.post(
        "/events/new",
        data={"category": "ZF03", "description": "桌面上报自结案", "lon": str(lon),
              "lat": str(lat), "self_close": "on", "result": "已清理"},
        files=[("photos", ("scene.png", png_bytes("blue"), "image/png")),
               ("after_photos", ("after.png", png_bytes("yellow"), "image/png"))],
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303, r.text
    no = r.headers["location"].split("/events/")[1].split("?")[0]
    blue, yellow = (hashlib.sha256(png_bytes(c)).hexdigest() for c in ("blue", "yellow"))
    timeline = client.get(f"{API}/events/{no}/timeline", headers=worker).json()
    assert [(e["action"], e["attachments"]) for e in timeline] == [
        ("report", [blue]), ("self_close", [yellow])
    ]  # fmt: skip


def test_self_close_without_photo_is_refused(client, session) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        f"{API}/events",
        json=report_body(session, self_close=True, result="已清理"),
        headers=bearer(client, "grid_worker"),
    )
    assert r.status_code == 422 and error_code(r) == "photo_required"


# ---------------------------------------------------------------------------- notifications


def test_new_report_notifies_the_village(client, session) -> None:  # type: ignore[no-untyped-def]
    village = bearer(client, "village_staff")
    ev = report(client, session, bearer(client, "grid_worker"))
    r = client.get(f"{API}/notifications", headers=village)
    assert r.status_code == 200, r.text
    mine = [n for n in r.json() if n["tracking_no"] == ev["tracking_no"]]
    assert len(mine) == 1
    note = mine[0]
    assert note["kind"] == "new" and note["read"] is False
    assert note["event_id"] == ev["id"]
    assert note["message"] == f"新事件待受理: {ev['title']}"
    # The reporter's own notifications do not include the village's.
    worker_notes = client.get(f"{API}/notifications", headers=bearer(client, "grid_worker")).json()
    assert note["id"] not in [n["id"] for n in worker_notes]

    r = client.post(f"{API}/notifications/read", json=[note["id"]], headers=village)
    assert r.status_code == 200 and r.json() == {"marked": 1}
    after = {n["id"]: n for n in client.get(f"{API}/notifications", headers=village).json()}
    assert after[note["id"]]["read"] is True
    unread = client.get(f"{API}/notifications", params={"unread": "true"}, headers=village).json()
    assert note["id"] not in [n["id"] for n in unread]
    # Someone else's notification cannot be marked.
    r = client.post(
        f"{API}/notifications/read", json=[note["id"]], headers=bearer(client, "grid_worker")
    )
    assert r.json() == {"marked": 0}


# ---------------------------------------------------------------------------- unauthenticated

SHA = "0" * 64
UNAUTHENTICATED: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", f"{API}/events", {"json": {"category": "ZF03", "description": "x", "grid_code": "1"}}),
    ("GET", f"{API}/events", {}),
    ("GET", f"{API}/events/ABCDEFGHJK", {}),
    ("POST", f"{API}/events/ABCDEFGHJK/actions", {"json": {"action": "accept"}}),
    ("GET", f"{API}/events/ABCDEFGHJK/timeline", {}),
    ("GET", f"{API}/events/catalog", {}),
    ("GET", f"{API}/worklists/todo", {}),
    ("GET", f"{API}/events-export.csv", {}),
    ("GET", f"{API}/events-export.xlsx", {}),
    ("POST", f"{API}/photos", {"files": {"file": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")}}),
    ("GET", f"{API}/photos/{SHA}", {}),
    ("GET", f"{API}/photos/{SHA}/thumb", {}),
    ("GET", f"{API}/notifications", {}),
    ("POST", f"{API}/notifications/read", {"json": [1]}),
]


@pytest.mark.parametrize(("method", "url", "kw"), UNAUTHENTICATED)
def test_routes_need_a_login(client, method: str, url: str, kw: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    r = client.request(method, url, **kw)
    assert r.status_code == 401, r.text
    assert error_code(r) == "not_authenticated"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.request(method, url, headers={"Authorization": "Bearer not-a-token"}, **kw)
    assert r.status_code == 401, r.text


# ------------------------------------------------------------- bugs found in src (failing)


def test_all_digit_tracking_number_names_its_own_event(client, session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """SRC BUG (events/service.py `_event_by_ref`): a reference of digits shorter than 12 is
    read as a database id. Tracking numbers are 10 Crockford base-32 characters, so about one in
    100,000 is all digits; its Location header then leads to another event, or to a 404."""
    from gridgov.events import service

    worker = bearer(client, "grid_worker")
    first = report(client, session, worker, description="先上报的事件")
    monkeypatch.setattr(service, "new_tracking_no", lambda: f"{first['id']:010d}")
    r = client.post(
        f"{API}/events", json=report_body(session, description="编号全是数字"), headers=worker
    )
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["tracking_no"].isdigit() and second["id"] != first["id"]
    shown = client.get(r.headers["location"], headers=bearer(client, "village_staff"))
    assert shown.status_code == 200, shown.text
    assert shown.json()["id"] == second["id"], "the tracking number opened a different event"


def test_export_writes_residents_text_as_text_not_formulas(client, app, session) -> None:  # type: ignore[no-untyped-def]
    """SRC BUG (events/export.py `write_xlsx`): xlsxwriter turns every string that starts with
    "=" into a formula (strings_to_formulas defaults to True), so an address typed by a resident
    on the public form or through Open311 runs as a formula in the staff's spreadsheet."""
    from gridgov.events import service

    ctx = service.context_from_settings(app.state.settings)
    lon, lat = point_in(session, user(session, "grid_worker").region_code)
    address = '=HYPERLINK("http://example.com/x","点此查看")'
    data = service.ReportInput("ZF03", "公式注入测试", lon=lon, lat=lat, address=address)
    ev = service.report_event(session, ctx=ctx, user=None, data=data, channel="public", now=NOW)
    session.flush()
    no = ev.event.tracking_no

    r = client.get(
        f"{API}/events-export.xlsx", params={"q": no}, headers=bearer(client, "village_staff")
    )
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert no in sheet
    assert "<f>" not in sheet, "a resident's address was written as a formula"


def test_staff_cannot_report_as_a_resident_outside_their_area(client, session) -> None:  # type: ignore[no-untyped-def]
    """SRC BUG (events/service.py `_channel_allowed` / `_where`): the staff API accepts channel
    "public" or "open311" from a logged-in user and then skips the jurisdiction check, so a grid
    worker files events in another district, which Open311 then lists as residents' reports."""
    own = user(session, "grid_worker").region_code
    far = session.scalars(
        select(Region.code)
        .where(Region.level == 5, ~Region.code.startswith(own[:6]))
        .order_by(Region.code)
    ).first()
    assert far is not None
    lon, lat = point_in(session, far)
    worker = bearer(client, "grid_worker")
    r = client.post(f"{API}/events", json=report_body(session, lon=lon, lat=lat), headers=worker)
    assert r.status_code == 404 and error_code(r) == "outside_jurisdiction"
    for channel in ("public", "open311"):
        body = report_body(session, lon=lon, lat=lat, channel=channel)
        r = client.post(f"{API}/events", json=body, headers=worker)
        assert r.status_code in (403, 404, 422), (channel, r.status_code, r.text[:200])
    assert client.get("/open311/v2/requests.json").json() == []


def test_export_file_name_uses_the_clock_and_local_time(client, session) -> None:  # type: ignore[no-untyped-def]
    """SRC BUG, minor (events/export.py `export_response`): the file name's stamp comes from
    datetime.now() in the server's zone, not from core.clock in Asia/Shanghai like every other
    time in the export, so a server on UTC names a 10:00 export ...0200."""
    village = bearer(client, "village_staff")
    for fmt in ("csv", "xlsx"):
        r = client.get(f"{API}/events-export.{fmt}", headers=village)
        assert r.status_code == 200
        assert r.headers["content-disposition"] == (
            f'attachment; filename="events-202611271000.{fmt}"'
        )
