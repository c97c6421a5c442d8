"""Assessment over HTTP: the JSON API, the page with its method and the XLSX agree with the service."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from openpyxl import load_workbook
from tests.conftest import NOW
from tests.helpers import bearer
from tests.integration.test_assessment import fixture  # noqa: F401 (a pytest fixture)

from gridgov.core import clock

PARAMS = {"from": "2026-11-02", "to": "2026-11-13"}


@pytest.fixture(autouse=True)
def _clock_at_the_fixture_time() -> Iterator[None]:
    """The fixture's events are due or not as of its own time (`NOW`, 27 November 2026): one
    open event's deadline is three days after it. Read against the real clock, these figures
    changed once that deadline passed (30 November 2026, 10:00 Beijing time)."""
    clock.freeze(NOW)
    try:
        yield
    finally:
        clock.freeze(None)


def test_api_ranks_the_town_with_hand_computed_scores(client, fixture) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    headers = bearer(client, "town_staff")
    r = client.get("/api/v1/analytics/assessment", params=PARAMS, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == {"from": "2026-11-02", "to": "2026-11-13"}
    assert list(body["levels"]) == ["worker", "grid", "village", "town", "department"]
    workers = {w["code"]: w for w in body["levels"]["worker"]}
    w1 = workers["grid_worker"]
    assert w1["total"] == 43.33 and w1["rank"] == 2 and w1["grid_code"] == fixture["g"]
    assert w1["indicators"]["timely_report"] == {
        "key": "timely_report", "name": "及时上报率", "numerator": 3, "denominator": 5,
        "value": 0.6, "score": 60.0, "weight": 10,
    }  # fmt: skip
    assert workers["gw_test_2"]["indicators"]["check_on_time"]["value"] is None
    grids = {g["code"]: g for g in body["levels"]["grid"]}
    assert grids[fixture["g"]]["total"] == 50.0
    assert body["levels"]["department"][0]["code"] == fixture["zf"]
    assert "无数据" in " ".join(body["method"]["rules"])
    weights = {m["key"]: m["weight"] for m in body["method"]["indicators"]}
    assert weights == {"on_time_closure": 20, "self_closure": 10, "timely_report": 10,
                       "visit_coverage": 20, "check_on_time": 10, "satisfaction": 20,
                       "patrol_attendance": 10}  # fmt: skip
    only = client.get(
        "/api/v1/analytics/assessment", params={**PARAMS, "level": "grid"}, headers=headers
    ).json()
    assert list(only["levels"]) == ["grid"]
    bad = client.get(
        "/api/v1/analytics/assessment", params={"from": "2026-11-13", "to": "2026-11-01"},
        headers=headers,
    )  # fmt: skip
    assert bad.status_code == 422 and "早于" in bad.json()["detail"][0]["msg"]


def test_xlsx_download_matches_the_api(client, fixture) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    headers = bearer(client, "village_staff")
    r = client.get("/api/v1/analytics/assessment.xlsx", params=PARAMS, headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(r.content), read_only=True)
    # A village account: its workers, grids and itself; no towns, no departments.
    assert book.sheetnames == ["网格员", "网格", "村社区", "考核方法"]
    rows = list(book["网格"].iter_rows(values_only=True))
    g = next(row for row in rows[1:] if row[2] == fixture["g"])
    assert g[0] == 2 and g[4] == 50.0
    body = client.get("/api/v1/analytics/assessment", params=PARAMS, headers=headers).json()
    assert len(rows) - 1 == len(body["levels"]["grid"])


def test_page_shows_the_table_and_the_method_in_chinese(client, fixture) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    client.post("/login", data={"username": "town_staff", "password": "Gridgov@2026"})
    r = client.get("/analytics/assessment", params={**PARAMS, "level": "grid"})
    assert r.status_code == 200
    html = r.text
    assert 'id="assessment-table" data-level="grid"' in html
    assert f'data-code="{fixture["g"]}"' in html and ">50.00<" in html
    assert "考核方法" in html and "按期结案数 / 应结案数" in html and "无数据规则" in html
    assert "2026-11-02 至 2026-11-13" in html and 'href="/analytics/assessment"' in html
    workers = client.get("/analytics/assessment", params=PARAMS).text  # first level: workers
    assert 'data-level="worker"' in workers and ">43.33<" in workers
