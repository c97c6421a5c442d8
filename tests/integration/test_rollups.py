"""Rollups: random event histories through the service leave the incremental rollups equal to a
full rebuild, row for row, on both databases; the closure figures follow from them."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from tests.conftest import NOW
from tests.integration.test_events import png_bytes, point_in, report, user

from gridgov.analytics.rollups import service as rollups
from gridgov.analytics.rollups.models import EventGridDay, EventUnitDay
from gridgov.core.errors import DomainError
from gridgov.events import service
from gridgov.events.models import Event
from gridgov.events.rules import Action
from gridgov.events.service import ActInput, ReportInput

ACTORS = (
    "grid_worker",
    "village_staff",
    "town_staff",
    "town_zf",
    "district_staff",
    "department_staff",
    "city_staff",
)
CATEGORIES = ("ZF01", "ZF02", "ZF03", "ZF04")
CHANNELS = {"grid_worker": "grid", "village_staff": "staff", "town_staff": "hotline"}


def _ctx(tmp_path):  # type: ignore[no-untyped-def]
    return service.make_context(None, "08:30-12:00,13:30-17:30", None, tmp_path / "m", 10 * 2**20)


def start_clean(session) -> None:  # type: ignore[no-untyped-def]
    """Rollups equal to the events before the test: other tests commit events to the shared
    database and remove them with bulk SQL, which bypasses the ORM (and so the hook)."""
    rollups.rebuild_events(session)
    session.flush()


def _table_rows(session, model, keys):  # type: ignore[no-untyped-def]
    return sorted(rollups.stored_frame(session, model, keys).rows(), key=str)


def _rebuilt_rows(session):  # type: ignore[no-untyped-def]
    grids, units = rollups.expected_event_rollups(session)
    return (
        sorted(rollups._rows(grids, rollups.GRID_KEYS), key=str),
        sorted(rollups._rows(units, rollups.UNIT_KEYS), key=str),
    )


def _assert_agree(session) -> None:  # type: ignore[no-untyped-def]
    session.flush()
    want_grids, want_units = _rebuilt_rows(session)
    assert _table_rows(session, EventGridDay, rollups.GRID_KEYS) == want_grids
    assert _table_rows(session, EventUnitDay, rollups.UNIT_KEYS) == want_units
    assert rollups.differences(session) == []


def test_one_event_counts_in_its_grid_and_every_unit(session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path)
    start_clean(session)
    ev = report(session, ctx, "grid_worker", "ZF03")
    session.flush()
    grid_rows = session.execute(select(EventGridDay)).scalars().all()
    assert [(r.grid_code, r.status, r.reported, r.grid_reported) for r in grid_rows] == [
        (ev.grid_code, "reported", 1, 1)
    ]
    # 3 levels (town, district, city) × (whole, category, channel, status)
    assert session.scalar(select(func.count()).select_from(EventUnitDay)) == 12
    service.act(
        session,
        ctx=ctx,
        user=user(session, "village_staff"),
        ref=ev.tracking_no,
        data=ActInput(action="accept"),
        now=NOW + timedelta(minutes=5),
    )
    session.flush()
    statuses = session.scalars(select(EventGridDay.status)).all()
    assert statuses == [ev.status] and ev.status != "reported"
    _assert_agree(session)


def test_a_failed_action_leaves_the_rollups_untouched(session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path)
    start_clean(session)
    ev = report(session, ctx, "grid_worker", "ZF03")
    session.flush()
    before = _table_rows(session, EventGridDay, rollups.GRID_KEYS)
    try:
        with session.begin_nested():
            service.act(
                session,
                ctx=ctx,
                user=user(session, "village_staff"),
                ref=ev.tracking_no,
                data=ActInput(action="accept"),
                now=NOW,
            )
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    session.expire_all()
    assert _table_rows(session, EventGridDay, rollups.GRID_KEYS) == before
    _assert_agree(session)


# A step: ("report", actor, category, self_close, minutes later) or ("act", event pick, actor
# pick, action pick, satisfaction pick, minutes later) or ("sweep", hours later).
_step = st.one_of(
    st.tuples(
        st.just("report"),
        st.sampled_from(tuple(CHANNELS)),
        st.sampled_from(CATEGORIES),
        st.booleans(),
        st.integers(0, 600),
    ),
    st.tuples(
        st.just("act"),
        st.integers(0, 50),
        st.integers(0, 50),
        st.integers(0, 50),
        st.sampled_from((None, "satisfied", "fair", "unsatisfied")),
        st.integers(0, 900),
    ),
    st.tuples(st.just("sweep"), st.integers(1, 96)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=25))
def test_random_histories_equal_a_rebuild(session, tmp_path, steps) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path)
    start_clean(session)
    nested = session.begin_nested()
    try:
        _run(session, ctx, steps)
        _assert_agree(session)
    finally:
        nested.rollback()


def _run(session, ctx, steps) -> None:  # type: ignore[no-untyped-def]
    now = NOW - timedelta(days=2, hours=3)
    events: list[Event] = []
    users = {name: user(session, name) for name in ACTORS}
    after = None
    for step in steps:
        if step[0] == "report":
            _, who, category, self_close, minutes = step
            now += timedelta(minutes=minutes)
            u = users[who]
            grid = u.region_code if len(u.region_code) == 15 else _first_grid(session, u)
            lon, lat = point_in(session, grid)
            if self_close and who == "grid_worker":
                if after is None:
                    after = service.upload_photo(
                        session, ctx=ctx, user=u, data=png_bytes(), filename="a.png", now=now
                    ).sha256
                data = ReportInput(
                    category, "随机事件", lon=lon, lat=lat, self_close=True, result="已处置",
                    photos=[after],
                )  # fmt: skip
            else:
                data = ReportInput(category, "随机事件", lon=lon, lat=lat)
            try:
                with session.begin_nested():
                    ev = service.report_event(
                        session, ctx=ctx, user=u, data=data, channel=CHANNELS[who], now=now
                    ).event
                events.append(ev)
            except DomainError:
                pass
        elif step[0] == "act" and events:
            _, e_pick, u_pick, a_pick, satisfaction, minutes = step
            now += timedelta(minutes=minutes)
            act_once(session, ctx, users, events, (e_pick, u_pick, a_pick, satisfaction), now)
        elif step[0] == "sweep":
            now += timedelta(hours=step[1])
            service.sweep(session, ctx=ctx, now=now)


def act_once(session, ctx, users, events, picks, now) -> None:  # type: ignore[no-untyped-def]
    """One workflow action chosen by `picks` (event, actor, action, satisfaction) among those
    the actor may take; a refused action changes nothing."""
    e_pick, u_pick, a_pick, satisfaction = picks
    ev = events[e_pick % len(events)]
    u = users[ACTORS[u_pick % len(ACTORS)]]
    allowed = [a for a in service.actions_for(u, ev) if a != Action.REPORT]
    if not allowed:
        return
    action = allowed[a_pick % len(allowed)]
    target = None
    if action in (Action.DISPATCH, Action.REDISPATCH):
        targets = service.targets_for(ctx, ev, action)
        if not targets:
            return
        target = targets[a_pick % len(targets)].key
    data = ActInput(
        action=action.value,
        comment="随机操作",
        target=target,
        satisfaction=satisfaction if action == Action.CLOSE else None,
    )
    try:
        with session.begin_nested():
            service.act(session, ctx=ctx, user=u, ref=ev.id, data=data, now=now)
    except DomainError:
        session.refresh(ev)


def _first_grid(session, u):  # type: ignore[no-untyped-def]
    from gridgov.geo.models import Region

    return session.scalar(
        select(Region.code)
        .where(Region.level == 5, Region.code.like(u.region_code[:9] + "%"))
        .order_by(Region.code)
        .limit(1)
    )
