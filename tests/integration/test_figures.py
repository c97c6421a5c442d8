"""Headline figures: counted from the events' recorded outcomes, the same in service, API and CSV."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import NOW
from tests.helpers import bearer
from tests.integration.test_events import act, png_bytes, report, user

from gridgov.core.clock import local
from gridgov.events import figures as fig
from gridgov.events import service


def _closed_at_grid(session, ctx):  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF03")
    for who, a, kw in (
        ("village_staff", "accept", {}),
        ("village_staff", "dispatch", {}),
        ("grid_worker", "receive", {}),
        ("grid_worker", "feedback", {"comment": "已处理"}),
        ("village_staff", "verify", {}),
        ("village_staff", "close", {"satisfaction": "satisfied"}),
    ):
        ev = act(session, ctx, who, ev, a, **kw)
    return ev


def test_figures_count_what_happened(session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = service.make_context(None, "08:30-12:00,13:30-17:30", None, tmp_path / "m", 10 * 2**20)
    worker = user(session, "grid_worker")
    sha = service.upload_photo(
        session, ctx=ctx, user=worker, data=png_bytes(), filename="a.png", now=NOW
    ).sha256
    _closed_at_grid(session, ctx)  # grid level, on time, satisfied
    report(session, ctx, "grid_worker", "ZF03", self_close=True, result="已清理", photos=[sha])
    big = report(session, ctx, "grid_worker", "ZF01")  # climbs to the town, stays open
    act(session, ctx, "village_staff", big, "accept")
    report(session, ctx, "grid_worker", "ZF03")  # reported, not accepted
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    total, children = fig.figures(
        session, region_code=worker.region_code[:12], start=start, end=end
    )
    assert (total.reported, total.grid_reported, total.due, total.closed) == (4, 4, 3, 2)
    assert total.closed_at_grid == 2 and total.self_closure_rate == 0.5
    assert total.closure_rate == round(2 / 3, 4) and total.on_time_closure_rate == round(2 / 3, 4)
    assert total.self_closed == 1 and total.satisfaction_rate == 1.0
    # A self-closed event counts as dispatched on the spot, on time.
    assert total.dispatched == 2 and total.on_time_dispatch_rate == 1.0
    by_code = {c.code: c for c in children}
    assert by_code[worker.region_code].reported == 4
    assert sum(c.reported for c in children) == 4 and len(children) > 1  # quiet grids show zeros
    # Outside the period nothing counts.
    quiet, _ = fig.figures(
        session, region_code=worker.region_code[:12], start=end, end=end + timedelta(days=1)
    )
    assert quiet.reported == 0 and quiet.closure_rate is None


def test_api_page_and_csv_agree(client, session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = service.context_from_settings(client.app.state.settings)
    _closed_at_grid(session, ctx)
    worker = user(session, "grid_worker")
    village = worker.region_code[:12]
    headers = bearer(client, "town_staff")
    params = {
        "start": (NOW - timedelta(days=1)).isoformat(),
        "end": (NOW + timedelta(days=1)).isoformat(),
    }
    body = client.get(f"/api/v1/figures/{village}", params=params, headers=headers).json()
    assert body["total"]["reported"] == 1 and body["total"]["self_closure_rate"] == 1.0
    csv_text = client.get(
        f"/api/v1/figures/{village}", params={**params, "format": "csv"}, headers=headers
    ).text
    first = csv_text.lstrip("\ufeff").splitlines()[1].split(",")
    assert first[0] == village and first[2] == "1" and first[6] == "1.0"
    client.post("/login", data={"username": "town_staff", "password": "Gridgov@2026"})
    day = local(NOW).date().isoformat()
    page = client.get("/figures", params={"code": village, "start": day, "end": day})
    assert page.status_code == 200
    assert f'data-code="{village}"' in page.text and "100.0%" in page.text
