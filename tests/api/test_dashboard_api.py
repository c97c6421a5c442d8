"""Dashboard API, page and XLSX: the same numbers everywhere, scoped to the caller."""

from __future__ import annotations

import io
from datetime import timedelta

from openpyxl import load_workbook
from tests.conftest import NOW
from tests.helpers import bearer
from tests.integration.test_events import report

from gridgov.analytics.rollups import service as rollups
from gridgov.core.clock import local
from gridgov.events import service


def _setup(client, session):  # type: ignore[no-untyped-def]
    ctx = service.context_from_settings(client.app.state.settings)
    evs = [report(session, ctx, "grid_worker", c) for c in ("ZF03", "ZF03", "ZF01")]
    rollups.refresh_base(session, now=NOW)
    session.flush()
    return evs


def test_json_xlsx_and_page_agree(client, session) -> None:  # type: ignore[no-untyped-def]
    evs = _setup(client, session)
    town = evs[0].town_code
    day = local(NOW).date()
    params = {"start": (day - timedelta(days=6)).isoformat(), "end": day.isoformat()}
    headers = bearer(client, "town_staff")
    r = client.get(f"/api/v1/analytics/dashboard/{town}", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"]["current"]["reported"] == 3
    assert body["period"]["days"] == 7 and len(body["series"]) == 7
    assert {c["key"]: c["current"]["reported"] for c in body["by_category"]} == {
        "ZF03": 2,
        "ZF01": 1,
    }
    village = evs[0].village_code
    kids = {c["key"]: c for c in body["children"]}
    assert kids[village]["current"]["reported"] == 3
    assert body["total"]["base"]["grids"] == sum(c["base"]["grids"] for c in body["children"])

    x = client.get(
        f"/api/v1/analytics/dashboard/{town}/export.xlsx", params=params, headers=headers
    )
    assert x.status_code == 200
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(x.content))
    assert wb.sheetnames == ["概览", "基础数据", "下级单位", "按类别", "按状态", "按渠道", "逐日"]
    rows = list(wb["下级单位"].iter_rows(values_only=True))
    header = rows[0]
    col = header.index("上报")
    sheet = {r[0]: r[col] for r in rows[1:]}
    assert sheet[town] == 3
    assert sheet == {town: 3, **{c["key"]: c["current"]["reported"] for c in body["children"]}}
    cats = {r[0]: r[2] for r in list(wb["按类别"].iter_rows(values_only=True))[1:]}
    assert cats == {"ZF03": 2, "ZF01": 1}
    base = list(wb["基础数据"].iter_rows(values_only=True))
    assert base[1][0] == town and base[1][base[0].index("网格")] == body["total"]["base"]["grids"]
    days = {r[0]: r[1] for r in list(wb["逐日"].iter_rows(values_only=True))[1:]}
    assert days == {s["day"]: s["reported"] for s in body["series"]}

    client.post("/login", data={"username": "town_staff", "password": "Gridgov@2026"})
    page = client.get("/analytics/dashboard", params={"code": town, **params})
    assert page.status_code == 200 and "驾驶舱" in page.text
    assert f'<tr data-code="{village}"' in page.text
    assert "/static/vendor/plotly/plotly.min.js" in page.text and "cdn" not in page.text.lower()
    # Without a code the page shows the caller's own unit.
    assert client.get("/analytics/dashboard").status_code == 200


def test_plotly_is_served_locally(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/static/vendor/plotly/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert r.headers["content-type"].startswith("text/javascript")


def test_outside_and_bad_periods_are_refused(client, session) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "village_staff")
    me = client.get("/api/v1/me", headers=headers).json()["region_code"]
    town = me[:9] + "000"
    r = client.get(f"/api/v1/analytics/dashboard/{town}", headers=headers)
    assert r.status_code == 404 and town in r.text
    r = client.get(
        f"/api/v1/analytics/dashboard/{me}",
        params={"start": "2026-11-10", "end": "2026-11-01"},
        headers=headers,
    )
    assert r.status_code == 422 or r.status_code == 400
    assert "早于" in r.text
    r = client.get(
        f"/api/v1/analytics/dashboard/{me}", params={"start": "2020-01-01"}, headers=headers
    )
    assert "最长" in r.text
    r = client.get(f"/api/v1/analytics/dashboard/{me}", headers=headers)
    assert r.status_code == 200 and r.json()["region"]["level"] == 4
    # A village account sees no control-class count unless its role may (village staff may).
    assert "key_control" not in r.json()["base_hidden"]
    city = bearer(client, "city_staff")
    r = client.get("/api/v1/analytics/dashboard/330200000000", headers=city)
    assert r.status_code == 200 and r.json()["base_hidden"] == ["key_control"]
