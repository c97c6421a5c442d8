"""The event pages in real Chromium: a grid worker reports, the village accepts and dispatches,
a resident reports anonymously and follows the case by its tracking number."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.browser.test_map_browser import _grid_point, browser, site

from gridgov.demo.build import DEMO_PASSWORD

pytestmark = pytest.mark.browser
__all__ = ["browser", "site"]  # fixtures shared with the map tests


def _login_to(browser, base: str, username: str, target: str):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/login?next={target}")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{target}")
    return page


def _worker_grid(db_url: str) -> str:
    from gridgov.accounts.models import User
    from gridgov.db.engine import make_engine

    engine = make_engine(db_url)
    with engine.connect() as conn:
        code = conn.execute(
            select(User.region_code).where(User.username == "grid_worker")
        ).scalar_one()
    engine.dispose()
    return str(code)


def test_report_accept_and_dispatch(site, browser) -> None:  # type: ignore[no-untyped-def]
    base, url = site
    grid = _worker_grid(url)
    _, lon, lat = _grid_point(url, grid)
    page = _login_to(browser, base, "grid_worker", "/events/new")
    page.select_option("#category", "ZF03")
    page.fill("#description", "楼道口垃圾堆放, 影响通行")
    page.fill("#lon", f"{lon:.6f}")
    page.fill("#lat", f"{lat:.6f}")
    page.click("#report-form button[type=submit]")
    page.wait_for_selector("#flash")
    assert "已上报" in page.locator("#flash").inner_text()
    assert page.locator("#event-status").inner_text() == "待受理"
    number = page.locator("#tracking-no").inner_text()
    assert page.locator("#no-actions").count() == 1  # the reporter waits for the village
    assert page.locator("#timeline li").count() == 1

    staff = _login_to(browser, base, "village_staff", f"/events/{number}")
    staff.click("form[data-action=accept] button")
    staff.wait_for_selector("#flash")
    assert staff.locator("#event-status").inner_text() == "待分派"
    options = staff.locator("form[data-action=dispatch] select[name=target] option")
    assert grid in [options.nth(i).get_attribute("value") for i in range(options.count())]
    staff.select_option("form[data-action=dispatch] select[name=target]", grid)
    staff.click("form[data-action=dispatch] button")
    staff.wait_for_selector("#flash")
    assert staff.locator("#event-status").inner_text() == "待签收"
    assert staff.locator("#timeline li").count() == 3

    # The worklist of the grid worker now holds it.
    page.goto(f"{base}/events?list=todo")
    assert number in page.locator("#event-table").inner_text()
    # Submitting the accept form again (an old page, an old version) is refused, not applied twice.
    staff.goto(f"{base}/events/{number}")
    staff.evaluate(
        "() => { const f = document.createElement('form'); f.method = 'post';"
        f" f.action = '/events/{number}/act';"
        " for (const [k, v] of [['action', 'accept'], ['version', '1']]) {"
        " const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i); }"
        " document.body.appendChild(f); f.submit(); }"
    )
    staff.wait_for_selector("#flash-error")
    assert (
        "不能受理" in staff.locator("#flash-error").inner_text()
        or "他人" in staff.locator("#flash-error").inner_text()
    )
    assert staff.locator("#timeline li").count() == 3


def test_resident_reports_and_tracks(site, browser) -> None:  # type: ignore[no-untyped-def]
    base, url = site
    _, lon, lat = _grid_point(url, "330212")
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(base + "/report")
    page.select_option("#category", "ZF08")
    page.fill("#description", "路灯不亮")
    page.fill("#lon", f"{lon:.6f}")
    page.fill("#lat", f"{lat:.6f}")
    page.click("#public-report-form button[type=submit]")
    page.wait_for_selector("#report-done")
    number = page.locator("#new-no").inner_text()
    assert len(number) == 10
    assert page.locator("#public-status").inner_text() == "待受理"
    page.goto(f"{base}/track?no={number.lower()}")
    assert page.locator("#public-status").inner_text() == "待受理"
    # Outside the city: the form comes back with the reason and what was typed.
    page.goto(base + "/report")
    page.select_option("#category", "ZF08")
    page.fill("#description", "北京的问题")
    page.fill("#lon", "116.4")
    page.fill("#lat", "39.9")
    page.click("#public-report-form button[type=submit]")
    page.wait_for_selector("#form-error")
    assert "不在本市" in page.locator("#form-error").inner_text()
    assert page.locator("#description").input_value() == "北京的问题"
