"""The event loop through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import shapely
from sqlalchemy import select, text, update
from tests.conftest import NOW

from gridgov.accounts.models import User
from gridgov.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, Rejected
from gridgov.events import service
from gridgov.events.models import Event, EventEntry, Notification
from gridgov.events.rules import Status
from gridgov.events.service import ActInput, ReportInput
from gridgov.events.timeline import verify_chains
from gridgov.geo.divisions import GRID, TOWN, VILLAGE
from gridgov.geo.models import Region

OFFICE = "08:30-12:00,13:30-17:30"


@pytest.fixture
def ctx(tmp_path):  # type: ignore[no-untyped-def]
    return service.make_context(None, OFFICE, None, tmp_path / "media", 10 * 1024 * 1024)


def user(session, name: str) -> User:  # type: ignore[no-untyped-def]
    u = session.scalar(select(User).where(User.username == name))
    assert u is not None
    return u


def point_in(session, code: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    p = shapely.from_wkb(session.get(Region, code).geometry).representative_point()
    return p.x, p.y


def other_grid(session, code: str, *, same_village: bool) -> str:  # type: ignore[no-untyped-def]
    q = select(Region.code).where(Region.level == GRID, Region.code != code)
    q = (
        q.where(Region.parent_code == code[:12])
        if same_village
        else q.where(~Region.code.startswith(code[:9]))
    )
    found = session.scalars(q.order_by(Region.code).limit(1)).first()
    assert found is not None
    return found


def png_bytes(color: str = "red") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, "PNG")
    return buf.getvalue()


def report(session, ctx, who: str, category: str, *, now=NOW, **kw):  # type: ignore[no-untyped-def]
    u = user(session, who)
    grid = kw.pop("grid", None) or (u.region_code if len(u.region_code) == 15 else None)
    lon, lat = point_in(session, grid)
    data = ReportInput(
        category_code=category,
        description=kw.pop("description", "测试事件"),
        lon=lon,
        lat=lat,
        **kw,
    )
    channel = kw.get("channel") or ("grid" if "grid_worker" in u.roles else "staff")
    return service.report_event(session, ctx=ctx, user=u, data=data, channel=channel, now=now).event


def act(session, ctx, who: str, ev: Event, action: str, *, now=NOW, **kw) -> Event:  # type: ignore[no-untyped-def]
    return service.act(
        session,
        ctx=ctx,
        user=user(session, who),
        ref=ev.tracking_no,
        data=ActInput(action=action, **kw),
        now=now,
    )


def actions(session, ev: Event) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.action for e in service.timeline(session, ev)]


def test_grid_level_event_runs_the_whole_loop(session, ctx) -> None:  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF03", description="小区门口垃圾堆放")
    worker = user(session, "grid_worker")
    assert ev.status == Status.REPORTED and ev.grid_code == worker.region_code
    assert ev.receiver_unit == worker.region_code[:12] and ev.holder_level == VILLAGE
    assert (
        ev.village_code == worker.region_code[:12]
        and ev.town_code == worker.region_code[:9] + "000"
    )
    ev = act(session, ctx, "village_staff", ev, "accept")
    assert ev.status == Status.ACCEPTED and ev.routed_unit == worker.region_code
    assert ev.deadline_at is not None and ev.deadline_at > NOW
    ev = act(session, ctx, "village_staff", ev, "dispatch")
    assert ev.status == Status.DISPATCHED and ev.holder_unit == worker.region_code
    assert ev.dispatched_on_time is True
    later = NOW + timedelta(hours=2)
    ev = act(session, ctx, "grid_worker", ev, "receive", now=later)
    ev = act(session, ctx, "grid_worker", ev, "feedback", comment="已清理", now=later)
    assert ev.status == Status.FEEDBACK and ev.clock_since is None and ev.spent_seconds == 2 * 3600
    ev = act(session, ctx, "village_staff", ev, "verify", now=later)
    ev = act(session, ctx, "grid_worker", ev, "close", satisfaction="satisfied", now=later)
    assert ev.status == Status.CLOSED and ev.closed_level == GRID and ev.closed_on_time is True
    assert actions(session, ev) == [
        "report",
        "accept",
        "dispatch",
        "receive",
        "feedback",
        "verify",
        "close",
    ]
    report_ = verify_chains(session)
    assert report_.ok and report_.entries >= 7


def test_big_things_climb_to_the_town_and_go_to_its_platform(session, ctx) -> None:  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF01", description="违法搭建")
    town = ev.town_code
    ev = act(session, ctx, "village_staff", ev, "accept")
    assert (
        ev.holder_unit == town
        and ev.routed_unit == f"{town}/ZF"
        and ev.sender_unit == ev.village_code
    )
    assert actions(session, ev)[-1] == "escalate"  # the system's climb, one level
    with pytest.raises(Forbidden):
        act(session, ctx, "village_staff", ev, "dispatch")
    ev = act(session, ctx, "town_staff", ev, "dispatch")
    assert ev.holder_unit == f"{town}/ZF" and ev.status == Status.DISPATCHED
    ev = act(session, ctx, "town_zf", ev, "receive")
    ev = act(session, ctx, "town_zf", ev, "feedback", comment="已拆除")
    ev = act(session, ctx, "town_staff", ev, "verify")
    ev = act(session, ctx, "town_staff", ev, "close")
    assert ev.closed_level == TOWN and ev.closed_unit == f"{town}/ZF"
    notes = session.scalars(
        select(Notification.unit_key).where(Notification.event_id == ev.id)
    ).all()
    assert town in notes and f"{town}/ZF" in notes


def test_return_escalate_and_redispatch(session, ctx) -> None:  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF03")
    ev = act(session, ctx, "village_staff", ev, "accept")
    ev = act(session, ctx, "village_staff", ev, "dispatch")
    with pytest.raises(Rejected, match="理由"):
        act(session, ctx, "grid_worker", ev, "return")
    ev = act(session, ctx, "grid_worker", ev, "return", comment="不在本网格")
    assert (
        ev.status == Status.ACCEPTED
        and ev.holder_unit == ev.village_code
        and ev.sender_unit is None
    )
    ev = act(session, ctx, "village_staff", ev, "escalate", comment="需要执法力量")
    assert ev.holder_unit == ev.town_code and ev.sender_unit == ev.village_code
    ev = act(session, ctx, "town_staff", ev, "dispatch", target=f"{ev.town_code}/ZF")
    with pytest.raises(Rejected, match="不能把事件"):
        act(
            session,
            ctx,
            "town_staff",
            ev,
            "redispatch",
            target=other_grid(session, ev.grid_code, same_village=False),
        )
    ev = act(session, ctx, "town_staff", ev, "redispatch", target=f"{ev.town_code}/ZZ")
    assert ev.holder_unit == f"{ev.town_code}/ZZ"


def test_self_closure_needs_a_photo_and_an_allowing_category(session, ctx) -> None:  # type: ignore[no-untyped-def]
    worker = user(session, "grid_worker")
    sha = service.upload_photo(
        session, ctx=ctx, user=worker, data=png_bytes(), filename="a.png", now=NOW
    ).sha256
    with pytest.raises(Rejected, match="照片"):
        report(session, ctx, "grid_worker", "ZF03", self_close=True, result="已清理")
    with pytest.raises(Rejected, match="不允许"):
        report(session, ctx, "grid_worker", "ZF01", self_close=True, result="x", photos=[sha])
    ev = report(session, ctx, "grid_worker", "ZF03", self_close=True, result="已清理", photos=[sha])
    assert ev.status == Status.CLOSED and ev.self_closed and ev.closed_level == GRID
    assert actions(session, ev) == ["report", "self_close"]
    assert service.access_photo(session, user(session, "town_staff"), sha).sha256 == sha


def test_idempotent_report(session, ctx) -> None:  # type: ignore[no-untyped-def]
    u = user(session, "grid_worker")
    lon, lat = point_in(session, u.region_code)
    data = ReportInput(category_code="ZF03", description="重复提交", lon=lon, lat=lat)
    first = service.report_event(
        session, ctx=ctx, user=u, data=data, channel="grid", now=NOW, idempotency_key="k-1"
    )
    again = service.report_event(
        session, ctx=ctx, user=u, data=data, channel="grid", now=NOW, idempotency_key="k-1"
    )
    assert again.replayed and again.event.id == first.event.id
    assert session.scalar(select(Event.id).where(Event.idem_key == "k-1")) == first.event.id
    changed = ReportInput(category_code="ZF03", description="另一件事", lon=lon, lat=lat)
    with pytest.raises(Conflict, match="Idempotency-Key"):
        service.report_event(
            session, ctx=ctx, user=u, data=changed, channel="grid", now=NOW, idempotency_key="k-1"
        )


def test_location_rules(session, ctx) -> None:  # type: ignore[no-untyped-def]
    u = user(session, "grid_worker")
    with pytest.raises(Rejected, match="不在本市"):
        service.report_event(
            session,
            ctx=ctx,
            user=u,
            data=ReportInput("ZF03", "x", lon=116.4, lat=39.9),
            channel="grid",
            now=NOW,
        )
    far = other_grid(session, u.region_code, same_village=False)
    lon, lat = point_in(session, far)
    with pytest.raises(NotFound, match="管辖范围"):
        service.report_event(
            session,
            ctx=ctx,
            user=u,
            data=ReportInput("ZF03", "x", lon=lon, lat=lat),
            channel="grid",
            now=NOW,
        )
    # Residents may report anywhere in the city; GCJ-02 input is converted first.
    from gridgov.geo.coords import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(lon, lat)
    ev = service.report_event(
        session,
        ctx=ctx,
        user=None,
        data=ReportInput("ZF03", "路灯坏了", lon=glon, lat=glat, crs="gcj02"),
        channel="public",
        now=NOW,
    ).event
    assert ev.grid_code == far and abs(ev.lon - lon) < 1e-6
    by_grid = service.report_event(
        session,
        ctx=ctx,
        user=u,
        data=ReportInput("ZF03", "x", grid_code=u.region_code),
        channel="grid",
        now=NOW,
    ).event
    assert by_grid.grid_code == u.region_code and by_grid.lon is None


def test_stale_version_is_a_conflict(session, ctx) -> None:  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF03")
    v = ev.version
    act(session, ctx, "village_staff", ev, "accept", version=v)
    with pytest.raises(Conflict, match="已被他人处理"):
        act(session, ctx, "village_staff", ev, "dispatch", version=v)


def test_suspension_pauses_the_clock_and_extension_adds_time(session, ctx) -> None:  # type: ignore[no-untyped-def]
    # NOW is Friday 2026-11-27 10:00 in Beijing; SC03 allows 5 working days.
    ev = report(session, ctx, "grid_worker", "SC03")
    ev = act(session, ctx, "village_staff", ev, "accept")
    ev = act(session, ctx, "town_staff", ev, "dispatch")
    ev = act(session, ctx, "town_staff", ev, "receive")
    first_deadline = ev.deadline_at
    ev = act(
        session,
        ctx,
        "town_staff",
        ev,
        "suspend",
        comment="等待当事人",
        now=NOW + timedelta(hours=1),
    )
    assert ev.status == Status.SUSPENDED and ev.deadline_at is None and ev.spent_seconds == 3600
    # Suspended over the weekend and Monday; resumed Tuesday 10:00 Beijing.
    resume = NOW + timedelta(days=4)
    ev = act(session, ctx, "town_staff", ev, "resume", now=resume)
    assert ev.deadline_at is not None and ev.deadline_at > first_deadline
    assert ctx.calendar.between(resume, ev.deadline_at) == ev.allowed_seconds - 3600
    ev = act(
        session,
        ctx,
        "town_staff",
        ev,
        "request_extension",
        comment="需要复查",
        extension="2wd",
        now=resume,
    )
    with pytest.raises(InvalidTransition, match="只能申请一次"):
        act(session, ctx, "town_staff", ev, "request_extension", comment="再延", now=resume)
    with pytest.raises(Forbidden):
        act(session, ctx, "village_staff", ev, "approve_extension", now=resume)
    before = ev.deadline_at
    ev = act(session, ctx, "district_staff", ev, "approve_extension", now=resume)
    assert ev.extension == "approved" and ev.deadline_at > before
    assert ctx.calendar.between(before, ev.deadline_at) == 2 * ctx.calendar.office_hours.day_seconds


def test_sweep_warns_once_then_escalates(session, ctx) -> None:  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF03")  # 1 working day
    ev = act(session, ctx, "village_staff", ev, "accept")
    ev = act(session, ctx, "village_staff", ev, "dispatch")
    yellow_at, deadline = ev.yellow_at, ev.deadline_at
    assert NOW < yellow_at < deadline
    assert service.sweep(session, ctx=ctx, now=yellow_at - timedelta(seconds=1)).yellow == 0
    r = service.sweep(session, ctx=ctx, now=yellow_at)
    assert r.yellow >= 1 and ev.warning_level == 1
    again = service.sweep(session, ctx=ctx, now=yellow_at)
    assert again.yellow == 0 and again.red == 0
    r = service.sweep(session, ctx=ctx, now=deadline)
    assert ev.warning_level == 2 and r.red >= 1 and ev.supervised_count == 1
    notes = session.scalars(select(Notification.kind).where(Notification.event_id == ev.id)).all()
    assert "supervision_notice" in notes
    assert service.sweep(session, ctx=ctx, now=deadline).red == 0
    r = service.sweep(session, ctx=ctx, now=ev.escalate_at)
    assert r.escalated >= 1 and ev.holder_unit == ev.village_code and ev.status == Status.ACCEPTED
    assert actions(session, ev)[-3:] == ["warn_yellow", "warn_red", "auto_escalate"]
    # The second red escalates once; the new holder is not escalated again by the sweep.
    assert service.sweep(session, ctx=ctx, now=ev.updated_at + timedelta(days=30)).escalated == 0
    assert verify_chains(session).ok


def test_reopen_only_within_seven_days(session, ctx) -> None:  # type: ignore[no-untyped-def]
    def closed() -> Event:
        ev = report(session, ctx, "grid_worker", "ZF03")
        for who, a, kw in (
            ("village_staff", "accept", {}),
            ("village_staff", "dispatch", {}),
            ("grid_worker", "receive", {}),
            ("grid_worker", "feedback", {"comment": "已处理"}),
            ("village_staff", "verify", {}),
            ("village_staff", "close", {}),
        ):
            ev = act(session, ctx, who, ev, a, **kw)
        return ev

    ev = closed()
    ev = act(
        session,
        ctx,
        "village_staff",
        ev,
        "reopen",
        comment="群众反映未清理干净",
        now=NOW + timedelta(days=6),
    )
    assert ev.status == Status.ACCEPTED and ev.closed_at is None and ev.reopen_count == 1
    late = closed()
    with pytest.raises(Rejected, match="7 天"):
        act(
            session,
            ctx,
            "village_staff",
            late,
            "reopen",
            comment="迟了",
            now=NOW + timedelta(days=8),
        )


def test_editing_the_timeline_is_detected(session, ctx) -> None:  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF03")
    ev = act(session, ctx, "village_staff", ev, "accept")
    ev = act(session, ctx, "village_staff", ev, "dispatch")
    session.flush()
    assert verify_chains(session).ok
    first = session.scalar(
        select(EventEntry).where(EventEntry.event_id == ev.id, EventEntry.seq == 2)
    )
    original = first.comment
    session.execute(
        update(EventEntry).where(EventEntry.id == first.id).values(comment="改过的意见")
    )
    bad = verify_chains(session)
    assert not bad.ok and any(p.event_id == ev.id and p.seq == 2 for p in bad.problems)
    session.execute(update(EventEntry).where(EventEntry.id == first.id).values(comment=original))
    session.expire_all()
    assert verify_chains(session).ok
    session.execute(text("DELETE FROM event_entries WHERE event_id = :e AND seq = 3"), {"e": ev.id})
    gone = verify_chains(session)
    assert any(p.event_id == ev.id and "实有" in p.message for p in gone.problems)


def test_town_account_cannot_see_or_act_outside_its_town(session, ctx) -> None:  # type: ignore[no-untyped-def]
    town = user(session, "town_staff")
    far = other_grid(session, town.region_code[:12] + "001", same_village=False)
    lon, lat = point_in(session, far)
    ev = service.report_event(
        session,
        ctx=ctx,
        user=None,
        data=ReportInput("ZF03", "别处的事", lon=lon, lat=lat),
        channel="public",
        now=NOW,
    ).event
    with pytest.raises(NotFound):
        service.access_event(session, town, ev.tracking_no)
    with pytest.raises(NotFound):
        service.act(
            session, ctx=ctx, user=town, ref=ev.id, data=ActInput("supervise", comment="x"), now=NOW
        )
    for name in service.WORKLISTS:
        ids = session.scalars(service.worklist_query(town, name, NOW)).all()
        assert ev not in ids
    found = session.scalars(
        service.search_query(session, town, service.SearchFilter(text=ev.tracking_no))
    ).all()
    assert found == []


def test_worklists(session, ctx) -> None:  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF03")
    vs = user(session, "village_staff")
    assert ev in session.scalars(service.worklist_query(vs, "todo", NOW)).all()
    ev = act(session, ctx, "village_staff", ev, "accept")
    ev = act(session, ctx, "village_staff", ev, "dispatch")
    gw = user(session, "grid_worker")
    assert ev in session.scalars(service.worklist_query(gw, "todo", NOW)).all()
    assert ev not in session.scalars(service.worklist_query(vs, "todo", NOW)).all()
    assert ev in session.scalars(service.worklist_query(vs, "done", NOW)).all()
    service.sweep(session, ctx=ctx, now=ev.deadline_at)
    assert ev in session.scalars(service.worklist_query(gw, "overdue", ev.deadline_at)).all()
    assert ev in session.scalars(service.worklist_query(vs, "supervised", ev.deadline_at)).all()


def test_area_worklist_holds_open_events_of_the_area_whoever_holds_them(session, ctx) -> None:  # type: ignore[no-untyped-def]
    """A grid worker's report goes to its village; the town sees it at once in its area list
    (辖区在办), not in its own to-do list, and no longer once it is closed."""
    ev = report(session, ctx, "grid_worker", "ZF03")
    town = user(session, "town_staff")
    assert ev.holder_unit == ev.village_code
    assert ev not in session.scalars(service.worklist_query(town, "todo", NOW)).all()
    assert ev in session.scalars(service.worklist_query(town, "area", NOW)).all()
    vs = user(session, "village_staff")
    assert ev in session.scalars(service.worklist_query(vs, "area", NOW)).all()
    ev = act(session, ctx, "village_staff", ev, "accept")
    ev = act(session, ctx, "village_staff", ev, "dispatch")
    assert ev in session.scalars(service.worklist_query(town, "area", NOW)).all()
    ev.status = "closed"
    session.flush()
    assert ev not in session.scalars(service.worklist_query(town, "area", NOW)).all()


def test_a_unit_may_handle_an_event_itself(session, ctx) -> None:  # type: ignore[no-untyped-def]
    ev = report(session, ctx, "grid_worker", "ZF04")  # small adverts: the village's business
    assert ev.tracking_no[0].isalpha() and len(ev.tracking_no) == 10
    ev = act(session, ctx, "village_staff", ev, "accept")
    ev = act(session, ctx, "village_staff", ev, "dispatch", target=ev.village_code)
    assert (
        ev.status == Status.HANDLING
        and ev.holder_unit == ev.village_code
        and ev.sender_unit is None
    )
    ev = act(session, ctx, "village_staff", ev, "feedback", comment="已劝离")
    ev = act(session, ctx, "village_staff", ev, "verify")
    ev = act(session, ctx, "village_staff", ev, "close")
    assert ev.closed_level == VILLAGE and ev.status == Status.CLOSED
    assert service.access_event(session, user(session, "village_staff"), str(ev.id)).id == ev.id
