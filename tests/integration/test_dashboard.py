"""Dashboards: every figure equals a direct count over the events and the data center's tables."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import pytest
import shapely
from sqlalchemy import and_, case, func, select
from tests.conftest import NOW
from tests.integration.test_events import user
from tests.integration.test_rollups import ACTORS, act_once, start_clean

from gridgov.accounts.models import User, UserRole
from gridgov.analytics.dashboard import service as dash
from gridgov.analytics.rollups import service as rollups
from gridgov.core.clock import DISPLAY_TZ, local
from gridgov.events import figures as fig
from gridgov.events import service
from gridgov.events.models import Event
from gridgov.events.service import ReportInput
from gridgov.geo.divisions import GRID, PREFIX_LEN, VILLAGE, level_of_code, prefix_range
from gridgov.geo.models import Region
from gridgov.registry.models import Address, KeyPersonTag, Organization, Person, Room

TODAY = local(NOW).date()
PERIOD = dash.Period(TODAY - timedelta(days=4), TODAY)


def _grids(session, worker_grid: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Grids near and far: the worker's village, its town, its district, other districts."""
    out: list[str] = [worker_grid]
    for prefix, n in ((worker_grid[:12], 2), (worker_grid[:9], 2), (worker_grid[:6], 2), ("", 3)):
        q = select(Region.code).where(Region.level == GRID, Region.code.not_in(out))
        if prefix:
            q = q.where(Region.code.like(prefix + "%"))
        else:
            q = q.where(Region.code.not_like(worker_grid[:6] + "%"))
        out += list(session.scalars(q.order_by(Region.code).limit(n)))
    return out


def _history(session, ctx, grids: list[str]) -> list[Event]:  # type: ignore[no-untyped-def]
    """Residents' reports over 10 local days in every grid, then 120 random workflow actions."""
    rng = random.Random(6)
    events: list[Event] = []
    start = datetime.combine(TODAY - timedelta(days=9), time(0, 30), DISPLAY_TZ)
    categories = ("ZF01", "ZF02", "ZF03", "ZF04")
    for i in range(60):
        grid = grids[i % len(grids)]
        p = shapely.from_wkb(session.get(Region, grid).geometry).representative_point()
        when = start + timedelta(minutes=rng.randint(0, 10 * 24 * 60 - 120))
        channel = "public" if i % 3 else "open311"
        data = ReportInput(rng.choice(categories), f"事件 {i}", lon=p.x, lat=p.y)
        events.append(
            service.report_event(
                session, ctx=ctx, user=None, data=data, channel=channel, now=when
            ).event
        )
    users = {name: user(session, name) for name in ACTORS}
    for _ in range(120):
        picks = (rng.randint(0, 99), rng.randint(0, 99), rng.randint(0, 99))
        sat = rng.choice((None, "satisfied", "fair", "unsatisfied"))
        act_once(session, ctx, users, events, (*picks, sat), NOW)
    service.sweep(session, ctx=ctx, now=NOW + timedelta(days=5))
    session.flush()
    return events


def _base_records(session, grids: list[str]) -> None:  # type: ignore[no-untyped-def]
    for i, grid in enumerate(grids):
        persons = [
            Person(name=f"居民{i}-{k}", grid_code=grid, updated_at=NOW) for k in range(i + 2)
        ]
        orgs = [
            Organization(name=f"单位{i}-{k}", grid_code=grid, updated_at=NOW) for k in range(i % 3)
        ]
        addresses = [
            Address(key=f"{grid}|路|{k}号", village_code=grid[:12], grid_code=grid, text=f"路{k}号",
                    source="ZR", updated_at=NOW)
            for k in range(i + 2)
        ]  # fmt: skip
        session.add_all([*persons, *orgs, *addresses])
        session.flush()
        session.add_all(
            [Room(address_id=a.id, grid_code=grid, updated_at=NOW) for a in addresses[: i + 1]]
        )
        tags = [
            KeyPersonTag(person_id=persons[k % len(persons)].id, tag_class=klass, subtype=f"t{k}",
                         source="MZ", grid_code=grid, updated_at=NOW)
            for k, klass in enumerate(("backbone", "service", "control", "control"))
            if k <= i % 4
        ]  # fmt: skip
        session.add_all(tags)
    session.flush()


@pytest.fixture
def fixture_city(session, tmp_path):  # type: ignore[no-untyped-def]
    ctx = service.make_context(None, "08:30-12:00,13:30-17:30", None, tmp_path / "m", 10 * 2**20)
    start_clean(session)
    worker = user(session, "grid_worker")
    grids = _grids(session, worker.region_code)
    events = _history(session, ctx, grids)
    _base_records(session, grids)
    rollups.refresh_base(session, now=NOW)
    assert len({e.status for e in events}) >= 4  # the history reaches several states
    return grids


def _bounds(p: dash.Period) -> tuple[datetime, datetime]:
    return (
        datetime.combine(p.start, time(0), DISPLAY_TZ),
        datetime.combine(p.end + timedelta(days=1), time(0), DISPLAY_TZ),
    )


def _in(column, code: str):  # type: ignore[no-untyped-def]
    level = level_of_code(code)
    if level == GRID:
        return column == code
    low, high = prefix_range(code[: PREFIX_LEN[level]])
    return and_(column >= low, column < high)


def _dashboard(session, code: str) -> dash.Dashboard:  # type: ignore[no-untyped-def]
    return dash.dashboard(
        session,
        region=session.get(Region, code),
        period=PERIOD,
        category_names={},
        channel_names=service.CHANNELS,
        show_sensitive=True,
    )


def test_every_figure_equals_a_direct_count(session, fixture_city) -> None:  # type: ignore[no-untyped-def]
    grids = fixture_city
    g = grids[0]
    for code in (g[:4] + "00000000", g[:6] + "000000", g[:9] + "000", g[:12], g):
        d = _dashboard(session, code)
        for period, pick in ((PERIOD, "current"), (PERIOD.previous, "previous")):
            start, end = _bounds(period)
            total, children = fig.figures(session, region_code=code, start=start, end=end)
            assert getattr(d.total, pick).as_dict() == total.as_dict(), (code, pick)
            got = {r.key: getattr(r, pick).as_dict() for r in d.children}
            assert got == {c.code: c.as_dict() for c in children}, (code, pick)
        start, end = _bounds(PERIOD)
        where = and_(
            _in(Event.grid_code, code), Event.reported_at >= start, Event.reported_at < end
        )
        for dim, column in (
            ("category", Event.category_code),
            ("channel", Event.channel),
            ("status", Event.status),
        ):
            want = {
                r[0]: (r[1], r[2], r[3])
                for r in session.execute(
                    select(
                        column,
                        func.count(),
                        func.sum(case((Event.status == "closed", 1), else_=0)),
                        func.count(Event.satisfaction),
                    )
                    .where(where)
                    .group_by(column)
                )
            }
            have = {
                r.key: (r.current.reported, r.current.closed, r.current.follow_ups)
                for r in d.by_dim[dim]
                if r.current.reported
            }
            assert have == want, (code, dim)
        counted: dict[date, int] = {}
        for ev in session.scalars(select(Event).where(where)):
            counted[local(ev.reported_at).date()] = counted.get(local(ev.reported_at).date(), 0) + 1
        assert {day: f.reported for day, f in d.series if f.reported} == counted, code
        assert len(d.series) == PERIOD.days
        # Base numbers: direct counts of the data center's tables in the subtree.
        base = d.total.base
        for key, model, col in (
            ("persons", Person, Person.grid_code),
            ("organizations", Organization, Organization.grid_code),
            ("houses", Room, Room.grid_code),
            ("addresses", Address, Address.grid_code),
        ):
            n = session.scalar(select(func.count()).select_from(model).where(_in(col, code)))
            assert base[key] == n, (code, key)
        for klass in ("backbone", "service", "control"):
            n = session.scalar(
                select(func.count(KeyPersonTag.person_id.distinct())).where(
                    _in(KeyPersonTag.grid_code, code), KeyPersonTag.tag_class == klass
                )
            )
            assert base[f"key_{klass}"] == n, (code, klass)
        n_grids = session.scalar(
            select(func.count())
            .select_from(Region)
            .where(Region.level == GRID, _in(Region.code, code))
        )
        workers = session.scalar(
            select(func.count())
            .select_from(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(
                UserRole.role == "grid_worker",
                func.length(User.region_code) == 15,
                _in(User.region_code, code),
            )
        )
        assert (base["grids"], base["grid_workers"]) == (n_grids, workers), code
    # The fixture is not trivial: the town's dashboard sees events, closures and several villages.
    town = _dashboard(session, g[:9] + "000")
    assert town.total.current.reported > 0 and town.total.previous.reported > 0
    assert sum(1 for c in town.children if c.current.reported) >= 2


def test_rollups_of_the_fixture_equal_a_rebuild(session, fixture_city) -> None:  # type: ignore[no-untyped-def]
    assert rollups.differences(session) == []
    before = rollups.stored_frame(session, rollups.EventUnitDay, rollups.UNIT_KEYS).sort(
        list(rollups.UNIT_KEYS)
    )
    rollups.rebuild_events(session)
    after = rollups.stored_frame(session, rollups.EventUnitDay, rollups.UNIT_KEYS).sort(
        list(rollups.UNIT_KEYS)
    )
    assert before.equals(after) and before.height > 0


def test_control_class_is_hidden_from_roles_without_access(session, fixture_city) -> None:  # type: ignore[no-untyped-def]
    g = fixture_city[0]
    d = dash.dashboard(
        session,
        region=session.get(Region, g[:9] + "000"),
        period=PERIOD,
        category_names={},
        channel_names={},
        show_sensitive=False,
    )
    assert d.total.base["key_control"] is None and d.base_hidden == ("key_control",)
    assert d.total.base["persons"] > 0
    assert VILLAGE == 4
