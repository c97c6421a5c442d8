"""The demo's event history: real service-layer history across the city, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.conftest import NOW

from gridgov.accounts import service as accounts
from gridgov.accounts.models import User
from gridgov.core.clock import local
from gridgov.demo.build import (
    DEMO_PASSWORD,
    DEMO_USERNAMES,
    HISTORY_USERNAME_PREFIXES,
    demo_refusal,
)
from gridgov.demo.events import generate_event_history, history_present
from gridgov.events import service
from gridgov.events.models import Event, EventEntry
from gridgov.events.rules import OPEN_STATUSES, Status
from gridgov.events.timeline import verify_chains
from gridgov.geo.divisions import DISTRICT, GRID
from gridgov.geo.models import Region

OFFICE = "08:30-12:00,13:30-17:30"


@pytest.fixture
def ctx(tmp_path):  # type: ignore[no-untyped-def]
    return service.make_context(None, OFFICE, None, tmp_path / "media", 10 * 1024 * 1024)


def test_history_is_real_service_history_across_the_city(session, ctx) -> None:  # type: ignore[no-untyped-def]
    assert not history_present(session)
    seen: list[tuple[int, int]] = []
    report = generate_event_history(
        session,
        ctx=ctx,
        end=NOW,
        days=10,
        per_day=30,
        seed=7,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert history_present(session)
    assert report.skipped == 0, report.problems
    assert report.events > 200 and report.accounts > 0
    assert seen[-1][0] == seen[-1][1] and len(seen) == 11  # once at the start, then per day

    # Outcomes spread across the loop: closed and open, self-closed at grid level, overdue.
    statuses = report.by_status
    assert statuses[Status.CLOSED] > report.events / 2
    assert sum(n for s, n in statuses.items() if s in OPEN_STATUSES) == report.open > 0
    assert len([s for s in statuses if s in OPEN_STATUSES]) >= 3
    assert report.self_closed > 0 and report.refused > 0 and report.supervised > 0
    self_closed = session.scalars(select(Event).where(Event.self_closed.is_(True))).all()
    assert self_closed and all(e.closed_level == GRID for e in self_closed)
    grid_level = session.execute(
        select(func.count(), func.count().filter(Event.self_closed.is_(True))).where(
            Event.category_code.in_(["ZF03", "ZZ01", "AQ02", "ZZ07"])
        )
    ).one()
    assert 0.25 < grid_level[1] / grid_level[0] < 0.65
    actions = Counter(session.scalars(select(EventEntry.action)).all())
    for action in ("accept", "dispatch", "receive", "feedback", "verify", "close", "self_close"):
        assert actions[action] > 0, action
    assert actions["warn_yellow"] > 0 and actions["warn_red"] > 0
    assert report.overdue > 0 and report.escalated > 0
    assert set(report.by_channel) >= {"grid", "public", "hotline"}

    # The timelines verify, and each runs forward in time.
    check = verify_chains(session)
    assert check.ok and check.events == report.events and check.entries == report.entries
    last: dict[int, object] = {}
    for event_id, at in session.execute(
        select(EventEntry.event_id, EventEntry.at).order_by(EventEntry.event_id, EventEntry.seq)
    ):
        assert last.get(event_id, at) <= at  # type: ignore[operator]
        last[event_id] = at

    # Everything happened in Ningbo, before `end`, more on working days than at the weekend.
    districts = set(session.scalars(select(Region.code).where(Region.level == DISTRICT)).all())
    events = session.scalars(select(Event)).all()
    assert {e.district_code for e in events} <= districts
    assert all(e.grid_code.startswith("3302") and len(e.grid_code) == 15 for e in events)
    assert all(NOW - timedelta(days=10) < e.reported_at <= NOW for e in events)
    by_day = Counter(local(e.reported_at).date() for e in events)
    weekday = [n for d, n in by_day.items() if d.weekday() < 5 and d != local(NOW).date()]
    weekend = [n for d, n in by_day.items() if d.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 1.5 * sum(weekend) / len(weekend)

    # The demo accounts have work waiting, and the new accounts log in with the demo password.
    town_staff = accounts.get_user_by_username(session, "town_staff")
    assert town_staff is not None
    assert session.scalars(service.worklist_query(town_staff, "todo", NOW)).first() is not None
    made = session.scalars(
        select(User.username).where(User.username.not_in(list(DEMO_USERNAMES)))
    ).all()
    assert made and all(name.startswith(HISTORY_USERNAME_PREFIXES) for name in made)
    worker = next(n for n in made if n.startswith("gw_"))
    assert (
        accounts.authenticate(
            session,
            username=worker,
            password=DEMO_PASSWORD,
            now=NOW,
            max_failures=5,
            lockout=timedelta(minutes=15),
        ).username
        == worker
    )


def test_same_seed_same_history(session, ctx) -> None:  # type: ignore[no-untyped-def]
    def run(seed: int) -> list[tuple[str, str, str]]:
        before = session.scalar(select(func.max(Event.id))) or 0
        generate_event_history(session, ctx=ctx, end=NOW, days=3, per_day=15, seed=seed)
        rows = session.execute(
            select(Event.category_code, Event.channel, Event.grid_code)
            .where(Event.id > before)
            .order_by(Event.reported_at, Event.id)
        ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    first = run(11)
    again = run(11)
    assert first and again == first
    assert run(12) != first


def test_demo_can_run_again_after_the_history(session, ctx) -> None:  # type: ignore[no-untyped-def]
    generate_event_history(session, ctx=ctx, end=NOW, days=1, per_day=5, seed=1)
    assert demo_refusal(session) is None
