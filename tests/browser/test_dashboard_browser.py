"""The dashboard in real Chromium: plotly and Leaflet load from this server under the page's CSP,
charts and the coloured map draw, and clicking a unit drills down."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.browser.test_map_browser import _login, browser, site  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser
OUT = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"


def _history(db_url: str) -> str:
    """Three reports by the demo grid worker, one self-closed; returns the worker's town."""
    from sqlalchemy import select

    from gridgov.accounts.models import User
    from gridgov.analytics.rollups import service as rollups
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.events import service
    from gridgov.events.service import ReportInput

    engine = make_engine(db_url)
    ctx = service.make_context(None, "08:30-12:00,13:30-17:30", None, None, 10 * 2**20)
    with session_scope(make_sessionmaker(engine)) as session:
        worker = session.scalar(select(User).where(User.username == "grid_worker"))
        assert worker is not None
        for category in ("ZF03", "ZF01", "ZF04"):
            service.report_event(
                session,
                ctx=ctx,
                user=worker,
                data=ReportInput(category, "浏览器测试事件", grid_code=worker.region_code),
                channel="grid",
                now=clock.now(),
            )
        town = worker.region_code[:9] + "000"
        rollups.refresh_base(session, now=clock.now())
    engine.dispose()
    return town


def test_dashboard_draws_and_drills_down(site, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    base, db_url = site
    town = _history(db_url)
    page = _login(browser, base, "town_staff")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(base + "/analytics/dashboard")
    page.wait_for_selector("body[data-dashboard-ready='1']")
    assert "驾驶舱" in page.locator("h1").inner_text()
    page.wait_for_selector("#chart-series .main-svg")
    page.wait_for_selector("#chart-category .main-svg")
    page.wait_for_selector("#chart-children .main-svg")
    page.wait_for_function("document.getElementById('map-legend').textContent.includes('下钻')")
    assert page.locator("#table-category tbody tr").count() == 3
    assert page.locator("[data-figure='reported']").inner_text() == "3"
    assert page.locator("[data-base='grid_workers']").first.inner_text() not in ("—", "0")
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / "01-town.png"), full_page=False)
    # Colour the map by another figure, then drill down into the village with the events.
    page.select_option("#map-figure", "closure_rate")
    village = page.locator("#table-children tbody tr[data-code] a").first
    assert town[:9] in (village.get_attribute("href") or "")
    with_events = page.locator(
        "#table-children tbody tr[data-code]:not(.table-primary)", has_text="3"
    ).first
    with_events.locator("a").click()
    page.wait_for_selector("body[data-dashboard-ready='1']")
    assert "村" in page.locator("h1").inner_text() or "社区" in page.locator("h1").inner_text()
    page.screenshot(path=str(OUT / "02-village.png"), full_page=False)
    assert problems == [], problems
