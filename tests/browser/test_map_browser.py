"""The map page in real Chromium: login, drill-down, search, grid leader, locate, jurisdiction."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import shapely
from playwright.sync_api import expect
from sqlalchemy import select
from tests.helpers import demo_city

from gridgov.demo.build import DEMO_PASSWORD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRE = os.environ.get("GRIDGOV_REQUIRE_BROWSER", "") not in ("", "0", "false")

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real server on a free port over a committed SQLite demo city; yields (base URL, db URL)."""
    import uvicorn

    from gridgov.app import create_app
    from gridgov.config import Settings
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.db.migrate import upgrade
    from gridgov.demo.build import create_demo_accounts, store_generated
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import load_divisions

    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(make_sessionmaker(engine)) as session:
        geo.load_division_tree(session, load_divisions(), now=clock.now())
        store_generated(session, demo_city(), now=clock.now())
        create_demo_accounts(session, now=clock.now())
    port = _free_port()
    app = create_app(Settings(database_url=url), engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", url
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        if REQUIRE:
            pytest.fail("GRIDGOV_REQUIRE_BROWSER=1 but Debian's chromium is not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def _login(browser, base: str, username: str):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(base + "/map")
    assert "/login" in page.url
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#children [data-code]")
    return page


def _grid_point(db_url: str, prefix: str) -> tuple[str, float, float]:
    from gridgov.db.engine import make_engine
    from gridgov.geo.models import Region

    engine = make_engine(db_url)
    with engine.connect() as conn:
        code, wkb = conn.execute(
            select(Region.code, Region.geometry)
            .where(Region.level == 5, Region.code.like(prefix + "%"))
            .order_by(Region.code.desc())
            .limit(1)
        ).one()
    engine.dispose()
    p = shapely.from_wkb(wkb).representative_point()
    return code, p.x, p.y


def test_city_drill_down_to_a_grid(site, browser) -> None:  # type: ignore[no-untyped-def]
    base, _ = site
    page = _login(browser, base, "city_staff")
    assert page.locator("#children [data-code]").count() == 10
    assert page.locator("#info-name").inner_text() == "宁波市"
    # Polygons drawn on the map: one path per district (canvas renderer draws none as SVG).
    page.dblclick("#children [data-code='330203000000']")
    page.wait_for_selector("#children[data-parent='330203000000'] [data-code]")
    towns = page.locator("#children [data-code]")
    assert towns.count() > 5
    first_town = towns.first.get_attribute("data-code")
    towns.first.dblclick()
    page.wait_for_selector(f"#children[data-parent='{first_town}'] [data-code]")
    villages = page.locator("#children [data-code]")
    first_village = villages.first.get_attribute("data-code")
    villages.first.dblclick()
    page.wait_for_selector(f"#children[data-parent='{first_village}'] [data-code]")
    assert page.locator("#children-title").inner_text() == "下级网格"
    page.locator("#children [data-code]").first.click()
    page.wait_for_selector("#info-leader")
    assert "网格员" in page.locator("#info-leader").inner_text()  # the demo's grid leader
    crumbs = page.locator("#breadcrumb li").all_inner_texts()
    assert crumbs[:2] == ["宁波市", "海曙区"] and len(crumbs) == 4
    assert "code=" + first_village in page.url


def test_search_and_locate(site, browser) -> None:  # type: ignore[no-untyped-def]
    base, db_url = site
    page = _login(browser, base, "district_staff")
    page.fill("#search", "南门")
    page.wait_for_selector("#search-results [data-code]")
    page.locator("#search-results [data-code]").first.click()
    page.wait_for_selector("#children[data-parent='330203001000'] [data-code]")
    assert "南门街道" in page.locator("#breadcrumb").inner_text()
    code, lon, lat = _grid_point(db_url, "330203")
    page.click("summary")
    page.fill("input[name=lon]", f"{lon:.7f}")
    page.fill("input[name=lat]", f"{lat:.7f}")
    page.click("#locate-form button")
    page.wait_for_selector("#locate-result .alert-success")
    # Polled by Playwright, not by an injected function: the page's CSP forbids eval.
    expect(page.locator("#info-code")).to_contain_text(code)
    assert "海曙区" in page.locator("#locate-result").inner_text()
    # Outside this district: a clear message, nothing revealed.
    _, lon2, lat2 = _grid_point(db_url, "330282")
    page.fill("input[name=lon]", f"{lon2:.7f}")
    page.fill("input[name=lat]", f"{lat2:.7f}")
    page.click("#locate-form button")
    page.wait_for_selector("#locate-result .alert-warning")
    assert "不在您的管辖范围内" in page.locator("#locate-result").inner_text()


def test_outside_jurisdiction_page_is_404(site, browser) -> None:  # type: ignore[no-untyped-def]
    base, _ = site
    page = _login(browser, base, "town_staff")
    resp = page.goto(base + "/map?code=330282000000")
    assert resp is not None and resp.status == 404
    assert "未找到" in page.content()


def test_grid_worker_sees_their_grid(site, browser) -> None:  # type: ignore[no-untyped-def]
    base, _ = site
    page = _login(browser, base, "grid_worker")
    page.wait_for_selector("#info-leader")
    rows = page.locator("#children [data-code]")
    assert rows.count() == 1
    code = rows.first.get_attribute("data-code")
    assert code is not None and len(code) == 15
    assert code in page.locator("#info-code").inner_text()
    assert page.locator("#status").is_hidden()  # no error banner
