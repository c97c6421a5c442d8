"""The assessment page in real Chromium: ranking per level, drill-down, method, XLSX download.

The screen is saved as test-output/analytics/assessment.png (the README shows it).
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from tests.browser.test_map_browser import browser, site
from tests.integration.test_assessment import add_event, at

from gridgov.demo.build import DEMO_PASSWORD

pytestmark = pytest.mark.browser
__all__ = ["browser", "site"]
OUT = Path(__file__).resolve().parents[2] / "test-output" / "analytics"
QUERY = "from=2026-11-02&to=2026-11-13"


def _events(url: str) -> tuple[str, str]:
    """In two grids of the demo village: one closed on time and satisfied, one closed late."""
    from gridgov.accounts.models import User
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.geo.models import Region

    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        worker = session.scalar(select(User).where(User.username == "grid_worker"))
        good = worker.region_code
        late = session.scalars(
            select(Region.code)
            .where(Region.parent_code == good[:12], Region.code != good)
            .order_by(Region.code)
        ).first()
        add_event(session, good, reporter_id=worker.id, closed_on_time=True, closed_level=5,
                  satisfaction="satisfied", closed_at=at(4))  # fmt: skip
        add_event(session, late, closed_on_time=False, closed_level=5, satisfaction="dissatisfied",
                  delay=timedelta(hours=30), closed_at=at(12))  # fmt: skip
    engine.dispose()
    return good, late


def test_assessment_page(site, browser) -> None:  # type: ignore[no-untyped-def]
    base, url = site
    good, late = _events(url)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    target = f"/analytics/assessment?{QUERY}&level=grid"
    page.goto(f"{base}/login?next=/analytics/assessment")
    page.fill("#username", "town_staff")
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/analytics/assessment")
    assert page.locator("nav a[href='/analytics/assessment']").count() == 1
    page.goto(f"{base}{target}")
    rows = page.locator("#assessment-table tbody tr")
    # The grid with the good event ranks first; the late one second (self-closure 100 of weight
    # 70 with data: 14.29); grids with no events score 0 on patrol attendance alone.
    first = rows.nth(0)
    assert first.get_attribute("data-code") == good
    assert first.locator("td").nth(0).inner_text() == "1"
    # Good grid: on time 100, self 100, timely 100, satisfaction 100, patrol 0 →
    # (20·100 + 10·100 + 10·100 + 20·100) / 70 = 85.71
    assert first.locator("td[data-key=total]").inner_text() == "85.71"
    late_row = page.locator(f"#assessment-table tr[data-code='{late}']")
    assert late_row.locator("td[data-key=on_time_closure-value]").inner_text() == "0.00%"
    assert late_row.locator("td[data-key=satisfaction-value]").inner_text() == "0.00%"
    assert late_row.locator("td[data-key=total]").inner_text() == "14.29"
    assert late_row.locator("td").nth(0).inner_text() == "2"
    assert "考核方法" in page.locator("#method").inner_text()
    assert "无数据规则" in page.locator("#method").inner_text()
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / "assessment.png"), full_page=False)
    # Tabs: the villages, then drill down into the demo village's grids.
    page.click("#levels a:has-text('村社区')")
    page.wait_for_selector("#assessment-table[data-level=village]")
    page.click(f"#assessment-table tr[data-code='{good[:12]}'] a")
    page.wait_for_selector("#assessment-table[data-level=grid]")
    assert page.locator("#assessment-table tbody tr").count() >= 2
    with page.expect_download() as info:
        page.click("#xlsx-link")
    book = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()), read_only=True)
    assert book.sheetnames == ["网格员", "网格", "村社区", "考核方法"]
    page.close()
