"""The field app (/m/) in real Chromium on a 360×640 phone: login, reporting with photos and
position, self-closure, a visit that updates a field fact, a patrol and its coverage, a check
task, handling, offline reporting that syncs exactly once, and a refusal shown to the worker.

Each screen is saved under test-output/field/ (the README shows them).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select
from tests.browser.test_map_browser import _free_port, browser
from tests.field_helpers import STEP, FieldData, place_field_data
from tests.helpers import demo_city

from gridgov.demo.build import DEMO_PASSWORD

pytestmark = pytest.mark.browser
__all__ = ["browser"]

OUT = Path(__file__).resolve().parents[2] / "test-output" / "field"
PHONE = {"width": 360, "height": 640}


@dataclass
class FieldSite:
    base: str
    url: str
    data: FieldData
    dispatched: str  # an event dispatched to the worker's grid
    photos: Path


@pytest.fixture(scope="module")
def field_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FieldSite]:
    """A real server over a committed SQLite demo city with registry data in the worker's grid."""
    import uvicorn
    from PIL import Image

    from gridgov.accounts.models import User
    from gridgov.app import create_app
    from gridgov.config import Settings
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.db.migrate import upgrade
    from gridgov.demo.build import create_demo_accounts, store_generated
    from gridgov.events import service as events
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import load_divisions

    root = tmp_path_factory.mktemp("field")
    url = f"sqlite:///{root / 'field.db'}"
    settings = Settings(database_url=url, media_dir=root / "media")
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(make_sessionmaker(engine)) as session:
        now = clock.now()
        geo.load_division_tree(session, load_divisions(), now=now)
        store_generated(session, demo_city(), now=now)
        create_demo_accounts(session, now=now)
        worker = session.scalars(select(User).where(User.username == "grid_worker")).one()
        village = session.scalars(select(User).where(User.username == "village_staff")).one()
        data = place_field_data(session, worker.region_code, now, leader_id=worker.id)
        ctx = events.context_from_settings(settings)
        ev = events.report_event(
            session, ctx=ctx, user=village,
            data=events.ReportInput("ZZ01", "两户因漏水发生纠纷, 请网格员上门调解",
                                    lon=data.lon, lat=data.lat),
            channel="staff", now=now,
        ).event  # fmt: skip
        events.act(session, ctx=ctx, user=village, ref=ev.tracking_no,
                   data=events.ActInput("accept"), now=now)  # fmt: skip
        events.act(session, ctx=ctx, user=village, ref=ev.tracking_no,
                   data=events.ActInput("dispatch", target=worker.region_code), now=now)  # fmt: skip
        dispatched = ev.tracking_no
    photos = root / "photos"
    photos.mkdir()
    # A camera-sized photo (2400×1800): the app must shrink it to ≤ 1600 px before upload.
    for name, color in (("scene.png", "#8a6d3b"), ("after.png", "#3b8a4f")):
        img = Image.new("RGB", (2400, 1800), color)
        img.paste(Image.new("RGB", (600, 400), "white"), (900, 700))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        (photos / name).write_bytes(buf.getvalue())
    port = _free_port()
    app = create_app(settings, engine=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    OUT.mkdir(parents=True, exist_ok=True)
    yield FieldSite(f"http://127.0.0.1:{port}", url, data, dispatched, photos)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def _query(url: str, stmt):  # type: ignore[no-untyped-def]
    from gridgov.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(stmt).all()
    finally:
        engine.dispose()


def _shot(page, name: str, *, full: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Save a screenshot; `full` lets the scrolling screen grow to its whole height first."""
    if not full:
        page.screenshot(path=str(OUT / name))
        return
    tag = page.add_style_tag(
        content="body{height:auto!important;overflow:visible!important}"
        "main{overflow:visible!important}"
    )
    page.screenshot(path=str(OUT / name), full_page=True)
    tag.evaluate("t => t.remove()")


def _phone(browser, site: FieldSite, *, lon: float | None = None, lat: float | None = None,
           init: str = ""):  # type: ignore[no-untyped-def]  # fmt: skip
    context = browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        geolocation={"longitude": lon or site.data.lon, "latitude": lat or site.data.lat,
                     "accuracy": 8},
        permissions=["geolocation"],
    )  # fmt: skip
    if init:
        context.add_init_script(init)
    return context


def _login(context, site: FieldSite, shot: str = ""):  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(site.base + "/m/")
    expect(page.locator("#screen-login")).to_be_visible()
    page.fill("#login-username", "grid_worker")
    page.fill("#login-password", DEMO_PASSWORD)
    if shot:
        page.screenshot(path=str(OUT / shot))
    page.click("#login-form button[type=submit]")
    # The password check (argon2id) is slow by design; on a loaded machine, with the server's
    # one database gate (SQLite) behind the previous test's last requests, it can take longer
    # than the default 5 s.
    expect(page.locator("#screen-home")).to_be_visible(timeout=20_000)
    expect(page.locator("#home-grid")).to_contain_text(site.data.grid_code, timeout=20_000)
    expect(page.locator("#home-position")).to_contain_text("精度")
    return page


def _fill_report(page, site: FieldSite, category: str, description: str) -> None:  # type: ignore[no-untyped-def]
    page.click("#tabbar [data-go=report]")
    expect(page.locator("#report-position")).to_contain_text("精度 ±8 米")
    page.fill("#cat-search", category)
    page.locator("#cat-list [data-cat]").first.click()
    expect(page.locator("#cat-chosen")).to_contain_text(category)
    page.fill("#report-description", description)
    page.set_input_files("#report-photos", str(site.photos / "scene.png"))
    expect(page.locator("#report-previews img")).to_have_count(1)


def test_login_home_and_report_with_photo_and_position(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    """A grid worker's report goes to the to-do list of the grid's village (the receiving unit
    for every report from a grid) and appears at once in the town's worklist of open events in
    its area (辖区在办), where the town's command centre watches and supervises it; it enters
    the town's own to-do list only if the village forwards it (covered by the events tests)."""
    from gridgov.events.models import Event, Photo
    from gridgov.geo.models import Region

    site = field_site
    context = _phone(browser, site)
    page = _login(context, site, "01-login.png")
    expect(page.locator("#count-todo")).to_have_text("1")  # the event dispatched to the grid
    expect(page.locator("#count-tasks")).to_have_text("1")
    expect(page.locator("#home-due")).to_contain_text("李独居")
    _shot(page, "02-home.png")

    _fill_report(page, site, "食品安全", "路边摊贩无证售卖熟食, 无防尘设施")
    _shot(page, "03-report.png", full=True)
    page.click("#report-form button[type=submit]")
    done = page.locator("#report-done")
    expect(done).to_contain_text("已上报。事件编号")
    _shot(page, "04-report-done.png")
    number = done.inner_text().split("事件编号 ")[1].split(",")[0]
    holder = done.inner_text().split("「")[1].split("」")[0]

    (ev,) = _query(site.url, select(Event).where(Event.tracking_no == number))
    assert ev.channel == "grid" and ev.category_code == "SC01"
    assert abs(ev.lon - site.data.lon) < 1e-6 and abs(ev.lat - site.data.lat) < 1e-6
    assert ev.location_accuracy_m == 8  # the device's accuracy, kept with the event
    (photo,) = _query(site.url, select(Photo).where(Photo.sha256 == ev.photos[0]))
    assert max(photo.width, photo.height) == 1600  # resized on the device from 2400 px
    (village,) = _query(site.url, select(Region.name).where(
        Region.code == site.data.grid_code[:12]))  # fmt: skip
    assert holder == village[0]  # the grid's village received it
    assert ev.holder_unit == site.data.grid_code[:12]

    # The event is in the village's to-do list and in the town's area worklist.
    desk = browser.new_page(viewport={"width": 1280, "height": 900})
    for who, target, shot in (("village_staff", "/events?list=todo", "05-village-worklist.png"),
                              ("town_staff", "/events?list=area", "20-town-worklist.png")):  # fmt: skip
        desk.context.clear_cookies()
        desk.goto(f"{site.base}/login?next={target.replace('&', '%26').replace('?', '%3F')}")
        desk.fill("#username", who)
        desk.fill("#password", DEMO_PASSWORD)
        desk.click("button[type=submit]")
        expect(desk.locator("#worklists .nav-link.active")).to_contain_text(
            "待办" if who == "village_staff" else "辖区在办"
        )
        expect(desk.locator("#event-table")).to_contain_text(number)
        desk.screenshot(path=str(OUT / shot))
    # The desk page shows how precise the worker's position was.
    desk.goto(f"{site.base}/events/{number}")
    expect(desk.locator("#location-accuracy")).to_contain_text("±8 米")
    desk.close()
    context.close()


def test_self_closure_with_after_photo(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.events.models import Event, EventEntry, EventPhoto

    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    _fill_report(page, site, "暴露垃圾", "楼道口垃圾堆放")
    expect(page.locator("#self-close-box")).to_be_visible()
    page.check("#report-self-close")
    page.fill("#report-result", "已当场清理并告知保洁")
    page.set_input_files("#report-after", str(site.photos / "after.png"))
    expect(page.locator("#report-after-preview img")).to_have_count(1)
    _shot(page, "06-self-close.png", full=True)
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-done")).to_contain_text("已当场处置结案")
    number = page.locator("#report-done").inner_text().split("事件编号 ")[1].strip()
    (ev,) = _query(site.url, select(Event).where(Event.tracking_no == number))
    # The scene photo is the report's; the after photo is on the closing step only.
    assert ev.status == "closed" and ev.self_closed and len(ev.photos) == 1
    rows = _query(site.url, select(EventEntry.action, EventEntry.attachments).where(
        EventEntry.event_id == ev.id).order_by(EventEntry.seq))  # fmt: skip
    assert [a for a, _ in rows] == ["report", "self_close"]
    assert rows[0][1] == ev.photos and len(rows[1][1]) == 1 and rows[1][1] != ev.photos
    (public,) = _query(site.url, select(func.count()).select_from(EventPhoto).where(
        EventPhoto.event_id == ev.id, EventPhoto.seq == 1))  # fmt: skip
    assert public == (1,)
    context.close()


def test_visit_updates_a_field_fact(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.ingest.models import SourceRecord
    from gridgov.registry.models import Person

    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    page.click("#tabbar [data-go=visit]")
    page.click("[data-kind=person]")
    page.fill("#visit-search", "张走访")
    expect(page.locator("#visit-targets [data-target]")).to_have_count(1)
    expect(page.locator("#visit-targets")).to_contain_text("张走访")
    page.locator("#visit-targets [data-target]").first.click()
    expect(page.locator("#visit-target")).to_contain_text("张走访")
    page.select_option("#visit-type", "verify")
    page.fill("#visit-notes", "本人在家, 新换了手机号")
    page.fill("#fact-phone", "13912345678")
    page.select_option("#fact-residence", "present")
    _shot(page, "07-visit.png", full=True)
    page.click("#visit-form button[type=submit]")
    expect(page.locator("#visit-done")).to_contain_text("现场信息已更新")
    _shot(page, "08-visit-done.png")
    (person,) = _query(site.url, select(Person).where(Person.id == site.data.person_id))
    assert person.phone == "13912345678" and person.provenance["phone"]["source"] == "WG"
    (record,) = _query(
        site.url,
        select(SourceRecord).where(SourceRecord.id == person.provenance["phone"]["record"]),
    )
    assert (record.source, record.kind, record.values["phone"]) == ("WG", "check", "13912345678")
    context.close()


def test_patrol_track_and_coverage(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    site = field_site
    # The sampler's own timer is set far off; the test takes each sample itself (no timing).
    init = "localStorage.setItem('field.sampleSeconds', '3600'); localStorage.setItem('field.flushPoints', '4');"
    context = _phone(browser, site, init=init)
    context.clock.install()  # the page's clock, moved on by the test between samples
    page = _login(context, site)
    page.click("#tabbar [data-go=patrol]")
    page.click("#patrol-start")
    expect(page.locator("#patrol-stop")).to_be_visible()
    # Walk north past the four buildings on the route (one every 3 × 11 m).
    for i in range(1, 11):
        context.set_geolocation(
            {"longitude": site.data.lon, "latitude": site.data.lat + i * STEP, "accuracy": 6}
        )
        page.clock.fast_forward(2000)  # 2 s between fixes (the server keeps one per second)
        page.evaluate("() => samplePoint()")
        expect(page.locator("#patrol-state")).to_contain_text(f"已记录 {i + 1} 个位置")
    _shot(page, "09-patrol.png")
    page.click("#patrol-stop")
    expect(page.locator("#patrol-state")).to_contain_text("覆盖率 80%")
    expect(page.locator("#patrol-coverage")).to_contain_text("80% (4/5 栋)")
    _shot(page, "10-patrol-done.png")
    distance = page.locator("#patrol-distance").inner_text()
    assert distance.endswith("米") and 90 <= int(distance.split()[0]) <= 115
    context.close()


def test_check_task_resolved(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.registry.models import CheckTask

    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    page.click("#tabbar [data-go=tasks]")
    page.locator("#task-list [data-task]").first.click()
    expect(page.locator("#task-candidates")).to_contain_text("人社")
    page.check("#cand-1")
    page.fill("#task-note", "已电话核实")
    _shot(page, "11-check-task.png", full=True)
    page.click("#task-form button[type=submit]")
    expect(page.locator("#task-done")).to_contain_text("核查结果已提交: 13900000009")
    expect(page.locator("#task-list")).to_contain_text("没有待处理的核查任务")
    (task,) = _query(site.url, select(CheckTask).where(CheckTask.id == site.data.task_id))
    assert task.status == "resolved" and task.resolution["source"] == "RS"
    context.close()


def test_handling_a_dispatched_event_offline(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.events.models import Event, EventEntry

    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    page.click("#tabbar [data-go=handle]")
    page.click(f"#handle-list [data-event='{site.dispatched}']")
    expect(page.locator("#handle-receive")).to_be_visible()
    expect(page.locator("#handle-feedback")).to_be_disabled()
    # In a basement without signal: sign for it and feed back; both wait on the device, in order.
    context.set_offline(True)
    page.click("#handle-receive")
    expect(page.locator("#handle-done")).to_contain_text("已存入本机待发送队列")
    expect(page.locator("#handle-feedback")).to_be_enabled()
    page.fill("#handle-comment", "已上门调解, 双方达成一致")
    page.set_input_files("#handle-photos", str(site.photos / "after.png"))
    expect(page.locator("#handle-previews img")).to_have_count(1)
    _shot(page, "12-handling.png", full=True)
    page.click("#handle-feedback")
    expect(page.locator("#queue-count")).to_have_text("2")
    context.set_offline(False)
    expect(page.locator("#queue-count")).to_have_text("0", timeout=15_000)
    page.click("#sync-badge")
    expect(page.locator("#queue-done")).to_contain_text("反馈")
    expect(page.locator("#queue-refused")).to_contain_text("无")
    (ev,) = _query(site.url, select(Event).where(Event.tracking_no == site.dispatched))
    assert ev.status == "feedback"
    (entry,) = _query(
        site.url,
        select(EventEntry).where(EventEntry.event_id == ev.id, EventEntry.action == "feedback"),
    )
    assert len(entry.attachments) == 1 and entry.comment.startswith("已上门调解")
    context.close()


def test_offline_report_syncs_once_on_reconnect(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.events.models import Event

    site = field_site
    text = "离线上报: 河道漂浮物较多"
    context = _phone(browser, site)
    page = _login(context, site)
    _fill_report(page, site, "河道", text)
    context.set_offline(True)
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-done")).to_contain_text("已存入本机待发送队列")
    expect(page.locator("#queue-count")).to_have_text("1")
    expect(page.locator("#net-state")).to_have_text("离线")
    page.click("#sync-badge")
    expect(page.locator("#queue-waiting")).to_contain_text(text[:10])
    _shot(page, "13-offline-queue.png")

    # The first answer after reconnecting is lost on the way back (the server did the work):
    # the item stays queued, and the next sync replays its key instead of reporting twice.
    held: list = []  # type: ignore[type-arg]

    def hold_first(route):  # type: ignore[no-untyped-def]
        if not held:
            held.append(route)  # answered below, once "立即同步" has been pressed
        else:
            route.continue_()

    page.route("**/api/field/sync", hold_first)
    # The 'online' event starts a sync.
    with page.expect_request(lambda r: r.url.endswith("/api/field/sync")):
        context.set_offline(False)
    expect(page.locator("#queue-count")).to_have_text("1")
    # Pressed while that round still waits for its answer: another round follows it.
    page.click("#sync-now")
    assert len(held) == 1  # the handler ran before the driver answered the calls above
    lost = [held[0].fetch().status]
    held[0].abort("connectionreset")
    expect(page.locator("#queue-count")).to_have_text("0")
    expect(page.locator("#queue-done")).to_contain_text("编号")
    _shot(page, "14-synced.png")
    assert lost == [200]
    (n,) = _query(
        site.url, select(func.count()).select_from(Event).where(Event.description == text)
    )
    assert n == (1,)
    page.unroute_all(behavior="ignoreErrors")
    page.click("#sync-now")  # nothing left to send; still one
    (n,) = _query(
        site.url, select(func.count()).select_from(Event).where(Event.description == text)
    )
    assert n == (1,)
    context.close()


def test_refused_upload_is_shown_with_its_reason(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.registry.models import Person

    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    page.click("#tabbar [data-go=visit]")
    page.click("[data-kind=person]")
    page.fill("#visit-search", "张走访")
    expect(page.locator("#visit-targets [data-target]")).to_have_count(1)
    expect(page.locator("#visit-targets")).to_contain_text("张走访")
    page.locator("#visit-targets [data-target]").first.click()
    page.fill("#fact-phone", "12345")
    page.click("#visit-form button[type=submit]")
    expect(page.locator("#visit-done")).to_contain_text("提交被退回")
    expect(page.locator("#visit-target")).to_contain_text("张走访")
    expect(page.locator("#visit-done")).to_contain_text("联系电话 phone")
    expect(page.locator("#net-state")).to_have_text("1 项被退回")
    page.click("#sync-badge")
    expect(page.locator("#queue-refused")).to_contain_text("联系电话 phone 须为 7–12 位数字")
    _shot(page, "15-refused.png")
    # Corrected and sent again from the queue: a new item (a new key), the refused one replaced.
    page.click("#queue-refused .edit")
    phone = page.locator("#queue-refused [data-field='facts.phone']")
    expect(phone).to_have_value("12345")
    expect(page.locator("#queue-refused [data-field='notes']")).to_be_visible()
    phone.fill("13912345670")
    page.click("#queue-refused .resend-send")
    expect(page.locator("#queue-refused")).to_contain_text("无")
    expect(page.locator("#queue-done li").first).to_contain_text("已记录走访: 张走访")
    expect(page.locator("#net-state")).to_have_text("在线")
    (person,) = _query(site.url, select(Person.phone).where(Person.name == "张走访"))
    assert person == ("13912345670",)
    # Another account's unsent work on this device: counted, not shown.
    page.evaluate("""() => FieldStore.put({ key: "visit-of-another-user", seq: 1, user: "other_worker",
        kind: "visit", payload: { notes: "王某某家中走访" }, blobs: [], shas: [], label: "王某某",
        status: "waiting", created: new Date().toISOString(), result: null }).then(renderQueue)""")
    expect(page.locator("#queue-others")).to_contain_text("另有 1 项其他账号的待发送内容")
    expect(page.locator("#screen-queue")).not_to_contain_text("王某某")
    expect(page.locator("#queue-count")).to_have_text("0")
    context.close()


def test_app_opens_offline_from_the_service_worker(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    assert page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    # Once the service worker is active it holds the shell; reloaded, the page is under its
    # control, and offline it still opens the app, logged in, with the home data kept on the device.
    page.reload()
    expect(page.locator("#screen-home")).to_be_visible()
    assert page.evaluate("() => navigator.serviceWorker.controller !== null")
    # The cache is named after the shell's version and holds the versioned scripts, no data.
    version = page.evaluate("() => document.body.dataset.version")
    names = page.evaluate("() => caches.keys()")
    assert names == [f"gridgov-field-{version}"]
    cached = page.evaluate(
        "(n) => caches.open(n).then((c) => c.keys()).then((ks) => ks.map((r) => r.url))", names[0]
    )
    assert any(u.endswith(f"/static/app/field/app.js?v={version}") for u in cached)
    assert not any("/api/" in u for u in cached)
    context.set_offline(True)
    page.reload()
    expect(page.locator("#screen-home")).to_be_visible()
    expect(page.locator("#home-grid")).to_contain_text(site.data.grid_code)
    expect(page.locator("#net-state")).to_have_text("离线")
    context.set_offline(False)
    context.close()


def test_login_is_remembered_until_idle(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    page.reload()  # remembered on the device
    expect(page.locator("#screen-home")).to_be_visible()
    # Unused for longer than the idle limit: the device asks for the password again, with the
    # user name filled in.
    page.evaluate("() => localStorage.setItem('field.active', String(Date.now() - 31 * 60000))")
    page.reload()
    expect(page.locator("#screen-login")).to_be_visible()
    expect(page.locator("#login-username")).to_have_value("grid_worker")
    assert page.evaluate("() => localStorage.getItem('field.token')") is None
    context.close()


def _visit_person(page, name: str, notes: str) -> None:  # type: ignore[no-untyped-def]
    page.click("#tabbar [data-go=visit]")
    page.click("[data-kind=person]")
    page.fill("#visit-search", name)
    expect(page.locator("#visit-targets [data-target]")).to_have_count(1)
    expect(page.locator("#visit-targets")).to_contain_text(name)
    page.locator("#visit-targets [data-target]").first.click()
    expect(page.locator("#visit-target")).to_contain_text(name)
    page.fill("#visit-notes", notes)
    page.click("#visit-form button[type=submit]")


def test_an_item_the_server_fails_on_does_not_block_the_queue(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.field.models import Visit

    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    # The server fails (500) on every request that carries this one item.
    page.route(
        "**/api/field/sync",
        lambda route: (
            route.fulfill(status=500, body="boom")
            if "服务器出错的走访" in (route.request.post_data or "")
            else route.continue_()
        ),
    )
    _visit_person(page, "李独居", "服务器出错的走访")
    expect(page.locator("#visit-done")).to_contain_text("暂未发送 (同步失败 (500))")
    # The next item is sent although the first one is still failing ahead of it.
    _visit_person(page, "张走访", "排在出错项之后的走访")
    expect(page.locator("#visit-done")).to_contain_text("已保存走访: 张走访")
    page.click("#sync-badge")
    expect(page.locator("#queue-waiting")).to_contain_text("已失败 2 次: 同步失败 (500)")
    expect(page.locator("#queue-done")).to_contain_text("张走访")
    # The third server error sets it aside, with its reason, as an item that needs the user.
    page.click("#sync-now")
    expect(page.locator("#queue-refused")).to_contain_text("服务器连续 3 次无法处理")
    expect(page.locator("#queue-count")).to_have_text("0")
    _shot(page, "16-server-error.png")
    (n,) = _query(site.url, select(func.count()).select_from(Visit).where(
        Visit.notes == "排在出错项之后的走访"))  # fmt: skip
    assert n == (1,)
    page.unroute_all(behavior="ignoreErrors")
    context.close()


def _insert(url: str, row) -> int:  # type: ignore[no-untyped-def]
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope

    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            session.add(row)
            session.flush()
            return int(row.id)
    finally:
        engine.dispose()


def test_legal_fact_task_offers_candidates_or_referral_only(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.core import clock
    from gridgov.registry.models import CheckTask, Person

    site = field_site
    task_id = _insert(site.url, CheckTask(
        entity="person", entity_id=site.data.person_id, field="birth_date",
        kind="authority_conflict", grid_code=site.data.grid_code, status="open",
        candidates=[{"value": "1990-01-01", "source": "GA"}, {"value": "1990-01-02", "source": "RS"}],
        open_key=f"person:{site.data.person_id}:birth_date", created_at=clock.now(), note="",
    ))  # fmt: skip
    context = _phone(browser, site)
    page = _login(context, site)
    page.click("#tabbar [data-go=tasks]")
    page.locator("#task-list [data-task]", has_text="出生日期").click()
    expect(page.locator("#task-candidates")).to_contain_text("公安")
    # No typed value for a legal fact: confirm a candidate or refer it back.
    expect(page.locator("#task-value")).to_be_hidden()
    expect(page.locator("#task-none-box")).to_contain_text("法定信息")
    page.check("#task-none")
    page.click("#task-form button[type=submit]")
    expect(page.locator("#task-error")).to_contain_text("请在备注中说明")
    page.fill("#task-note", "户口本上的出生日期为 1990-03-01")
    _shot(page, "17-legal-fact-task.png", full=True)
    page.click("#task-form button[type=submit]")
    expect(page.locator("#task-done")).to_contain_text("已退回主管部门核实")
    (task,) = _query(site.url, select(CheckTask).where(CheckTask.id == task_id))
    assert task.status == "referred" and task.note.startswith("户口本")
    (person,) = _query(site.url, select(Person).where(Person.id == site.data.person_id))
    assert person.birth_date is None
    context.close()


_DEVICE = """async () => {
  const keys = await FieldStore.kvKeys();
  const items = await FieldStore.all();
  return { keys, items: items.map((i) => ({ status: i.status, payload: i.payload, result: i.result })) };
}"""


def test_logout_and_idle_timeout_leave_only_unsent_work(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    page.click("#tabbar [data-go=tasks]")
    page.click("#tabbar [data-go=report]")
    expect(page.locator("#cat-list [data-cat]").first).to_be_visible()
    _visit_person(page, "张走访", "已发送的走访: 本人电话 13912345678")
    expect(page.locator("#visit-done")).to_contain_text("已保存走访")
    device = page.evaluate(_DEVICE)
    assert {"home:grid_worker", "categories:grid_worker"} <= set(device["keys"])
    # A sent item keeps a summary only, not what was typed.
    assert all(i["payload"] is None for i in device["items"] if i["status"] == "done")
    assert "13912345678" not in str(device["items"])
    # One visit made offline: unsent, so it stays.
    context.set_offline(True)
    page.click("#tabbar [data-go=home]")
    page.locator("#home-due [data-person]").first.click()
    expect(page.locator("#visit-target")).to_contain_text("李独居")
    page.fill("#visit-notes", "离线走访, 未发送")
    page.click("#visit-form button[type=submit]")
    expect(page.locator("#visit-done")).to_contain_text("已存入本机待发送队列")
    page.click("#tabbar [data-go=home]")
    page.click("#logout")
    expect(page.locator("#screen-login")).to_be_visible()
    expect(page.locator("#login-pending")).to_contain_text("1 项尚未发送")
    device = page.evaluate(_DEVICE)
    assert not [k for k in device["keys"] if k.split(":")[0] in ("home", "tasks", "categories")]
    assert [i["status"] for i in device["items"]] == ["waiting"]
    assert page.locator("#home-due").inner_text() == ""
    _shot(page, "18-logged-out.png")
    context.set_offline(False)

    # Idle expiry clears the same way, at the next start of the app.
    page = _login(context, site)
    expect(page.locator("#queue-count")).to_have_text("0")
    assert "home:grid_worker" in page.evaluate(_DEVICE)["keys"]
    page.evaluate("() => localStorage.setItem('field.active', String(Date.now() - 31 * 60000))")
    page.reload()
    expect(page.locator("#screen-login")).to_be_visible()
    device = page.evaluate(_DEVICE)
    assert not [k for k in device["keys"] if k.split(":")[0] in ("home", "tasks", "categories")]
    assert all(i["status"] != "done" for i in device["items"])
    context.close()


def test_visit_and_report_take_a_fresh_position_at_submit(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.events.models import Event
    from gridgov.field.models import Visit

    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)  # Home took a fix at the starting point
    _fill_report(page, site, "占道", "新位置上报: 占道经营")
    # The worker walks 100 m north before submitting: the report is where they are now.
    moved = {"longitude": site.data.lon, "latitude": site.data.lat + 9 * STEP, "accuracy": 5}
    context.set_geolocation(moved)
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-done")).to_contain_text("已上报")
    (ev,) = _query(site.url, select(Event).where(Event.description == "新位置上报: 占道经营"))
    assert abs(ev.lat - moved["latitude"]) < 1e-7 and ev.location_accuracy_m == 5
    context.set_geolocation({**moved, "latitude": site.data.lat + 18 * STEP, "accuracy": 7})
    _visit_person(page, "张走访", "在新位置的走访")
    expect(page.locator("#visit-done")).to_contain_text("已保存走访")
    (visit,) = _query(site.url, select(Visit).where(Visit.notes == "在新位置的走访"))
    assert abs(visit.lat - (site.data.lat + 18 * STEP)) < 1e-7 and visit.accuracy_m == 7
    context.close()


def test_report_placed_on_the_map_without_gps(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    from gridgov.events.models import Event

    site = field_site
    # Indoors with location denied: no fix at all.
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  locale="zh-CN", timezone_id="Asia/Shanghai", permissions=[])  # fmt: skip
    page = context.new_page()
    page.goto(site.base + "/m/")
    page.fill("#login-username", "grid_worker")
    page.fill("#login-password", DEMO_PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#home-grid")).to_contain_text(site.data.grid_code)
    page.click("#tabbar [data-go=report]")
    expect(page.locator("#report-position")).to_contain_text("点击地图选择事发位置")
    # A pin waits at the grid's centre; no base map is configured, and the map still works.
    expect(page.locator("#report-map .leaflet-marker-icon")).to_have_count(1)
    expect(page.locator("#report-map .leaflet-tile")).to_have_count(0)
    page.fill("#cat-search", "占道")
    page.locator("#cat-list [data-cat]").first.click()
    page.fill("#report-description", "室内无定位, 在地图上选点")
    page.set_input_files("#report-photos", str(site.photos / "scene.png"))
    expect(page.locator("#report-previews img")).to_have_count(1)
    # Tap a few pixels off a point known to be inside the grid (and away from the pin).
    at = page.evaluate(
        "([lat, lon]) => state.maps.report.latLngToContainerPoint([lat, lon])",
        [site.data.lat, site.data.lon],
    )
    page.locator("#report-map").click(position={"x": at["x"] + 3, "y": at["y"] + 3})
    expect(page.locator("#report-position")).to_contain_text("已在地图上选择")
    chosen = page.evaluate("() => state.reportPos")
    _shot(page, "19-report-map-pick.png", full=True)
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-done")).to_contain_text("已上报")
    (ev,) = _query(site.url, select(Event).where(Event.description == "室内无定位, 在地图上选点"))
    assert abs(ev.lon - chosen["lon"]) < 1e-9 and abs(ev.lat - chosen["lat"]) < 1e-9
    assert ev.location_accuracy_m is None  # set by hand: no GPS accuracy
    context.close()


def test_refused_photo_upload_is_shown_with_its_reason(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    # The server refuses the photo itself (as it does a file that is not an image).
    page.route(
        "**/api/v1/photos",
        lambda route: route.fulfill(
            status=422, content_type="application/json",
            body='{"detail": [{"code": "bad_image", "msg": "文件不是可识别的图片"}]}',
        ),
    )  # fmt: skip
    _fill_report(page, site, "暴露垃圾", "照片被拒的上报")
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-done")).to_contain_text("照片被拒绝: 文件不是可识别的图片")
    page.click("#sync-badge")
    expect(page.locator("#queue-refused")).to_contain_text("照片被拒的上报")
    expect(page.locator("#queue-count")).to_have_text("0")
    page.unroute_all(behavior="ignoreErrors")
    page.click("#queue-refused .ack")
    expect(page.locator("#queue-refused")).to_contain_text("无")
    context.close()


def test_an_older_search_answering_late_does_not_replace_the_newer(field_site, browser) -> None:  # type: ignore[no-untyped-def]
    """Opening the visit screen, picking a kind and typing each start a search; the answers
    may come back in any order, and only the latest search's is shown."""
    site = field_site
    context = _phone(browser, site)
    page = _login(context, site)
    held = []

    def hold_unfiltered(route):  # type: ignore[no-untyped-def]
        if "q=&" in route.request.url or route.request.url.endswith("q="):
            held.append(route)  # answered only after the filtered search
        else:
            route.continue_()

    page.route("**/api/field/targets?*", hold_unfiltered)
    page.click("#tabbar [data-go=visit]")
    page.click("[data-kind=person]")
    page.fill("#visit-search", "张走访")
    expect(page.locator("#visit-targets [data-target]")).to_have_count(1)
    assert len(held) == 2  # the screen's own search (houses) and the kind's (persons)
    for route in held:
        with page.expect_event("requestfinished", lambda r, u=route.request.url: r.url == u):
            route.continue_()
    page.wait_for_function("() => state.searching === 0")
    expect(page.locator("#visit-targets [data-target]")).to_have_count(1)
    expect(page.locator("#visit-targets")).to_contain_text("张走访")
    page.locator("#visit-targets [data-target]").first.click()
    expect(page.locator("#visit-target")).to_contain_text("张走访")
    page.unroute_all(behavior="ignoreErrors")
    context.close()
