"""Early warning over HTTP: the JSON API and the Chinese pages, the allowed case beside the
denied one."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from tests.conftest import NOW
from tests.helpers import bearer

from gridgov.accounts.models import User
from gridgov.analytics.warnings import service
from gridgov.analytics.warnings.rules import Kind
from gridgov.registry.models import KeyPersonTag, Person

DAY = date(2026, 11, 26)


def _plant(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A care-class and a control-class key person in the demo grid, never visited; the job."""
    grid = session.scalar(select(User.region_code).where(User.username == "grid_worker"))
    ids = []
    for cls, sub, name in (("service", "elderly_alone", "周独居"),
                           ("control", "community_correction", "吴矫正")):  # fmt: skip
        p = Person(name=name, grid_code=grid, updated_at=NOW)
        session.add(p)
        session.flush()
        session.add(KeyPersonTag(person_id=p.id, tag_class=cls, subtype=sub, source="MZ",
                                 grid_code=grid, valid_from=DAY - timedelta(days=40),
                                 updated_at=NOW))  # fmt: skip
        ids.append(p.id)
    session.flush()
    service.run_day(session, day=DAY, now=NOW, kinds=[Kind.VISIT])
    from gridgov.analytics.warnings.models import EarlyWarning

    rows = {w.evidence["person_id"]: w.id for w in session.scalars(select(EarlyWarning))}
    return rows[ids[0]], rows[ids[1]]


def test_list_detail_and_handle_over_the_api(client, session) -> None:  # type: ignore[no-untyped-def]
    care, control = _plant(session)
    headers = bearer(client, "village_staff")
    r = client.get("/api/v1/analytics/warnings", params={"kind": "visit"}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 2 and body["active_by_kind"] == {"visit": 2}
    assert {i["id"] for i in body["items"]} == {care, control}
    d = client.get(f"/api/v1/analytics/warnings/{care}", headers=headers).json()
    assert d["kind_name"] == "重点人员未按期走访" and d["status_name"] == "待签收"
    assert d["actions"] == ["acknowledge", "close"]
    assert [p["level"] for p in d["region_path"]] == [1, 2, 3, 4, 5]
    assert d["link"].startswith("/registry/persons/")
    url = f"/api/v1/analytics/warnings/{care}/actions"
    r = client.post(url, json={"action": "follow_up", "note": "x"}, headers=headers)
    assert r.status_code == 409 and r.json()["detail"][0]["code"] == "invalid_transition"
    r = client.post(url, json={"action": "acknowledge"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = client.post(url, json={"action": "close", "note": ""}, headers=headers)
    assert r.status_code == 422 and "note" in r.json()["detail"][0]["msg"]
    r = client.post(url, json={"action": "close", "note": "已上门探望"}, headers=headers)
    assert r.status_code == 200
    hist = r.json()["history"]
    assert [h["action"] for h in hist] == ["raise", "acknowledge", "close"]
    assert hist[-1]["note"] == "已上门探望" and hist[-1]["actor_name"]
    r = client.get("/api/v1/analytics/warnings", params={"status": "active"}, headers=headers)
    assert [i["id"] for i in r.json()["items"]] == [control]


def test_control_class_warnings_only_for_roles_that_see_sensitive_tags(client, session) -> None:  # type: ignore[no-untyped-def]
    care, control = _plant(session)
    city = bearer(client, "city_staff")  # sees the whole city, but not control-class tags
    ids = {i["id"] for i in client.get("/api/v1/analytics/warnings", headers=city).json()["items"]}
    assert ids == {care}
    r = client.get(f"/api/v1/analytics/warnings/{control}", headers=city)
    assert r.status_code == 404 and r.json()["detail"][0]["code"] == "warning_not_found"
    town = bearer(client, "town_staff")
    assert client.get(f"/api/v1/analytics/warnings/{control}", headers=town).status_code == 200


def test_pages_in_chinese(client, session) -> None:  # type: ignore[no-untyped-def]
    care, _ = _plant(session)
    r = client.get("/analytics/warnings", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    client.post("/login", data={"username": "town_staff", "password": "Gridgov@2026"})
    r = client.get("/analytics/warnings")
    assert r.status_code == 200 and "预警" in r.text and "周独居" in r.text
    assert 'href="/analytics/warnings"' in r.text  # the nav link
    r = client.get("/analytics/warnings", params={"kind": "rise"})
    assert "没有符合条件的预警" in r.text
    r = client.get("/analytics/warnings", params={"start": "2026-13-01"})
    assert r.status_code == 422 and "起始日期" in r.text
    r = client.get(f"/analytics/warnings/{care}")
    assert (
        r.status_code == 200
        and "预警理由" in r.text
        and "须每 7 天走访一次" in r.text
        and "从未走访" in r.text
    )
    assert 'href="/registry/persons/' in r.text and "签收" in r.text
    r = client.post(f"/analytics/warnings/{care}", data={"action": "acknowledge"})
    assert r.status_code == 200 and "已签收" in r.text  # followed the 303 back to the page
    r = client.post(f"/analytics/warnings/{care}", data={"action": "follow_up", "note": ""})
    assert r.status_code == 422 and "须填写说明" in r.text
    r = client.post(
        f"/analytics/warnings/{care}", data={"action": "follow_up", "note": "已联系家属"}
    )
    assert r.status_code == 200 and "跟进中" in r.text and "已联系家属" in r.text
