"""Two handlers acting on one event at once: exactly one wins, the other gets a conflict."""

from __future__ import annotations

import threading

import pytest
import shapely
from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker
from tests.conftest import NOW

from gridgov.accounts.models import User
from gridgov.core.errors import Conflict
from gridgov.events import service
from gridgov.events.models import Event, EventEntry, EventPhoto, Notification
from gridgov.events.service import ActInput, ReportInput
from gridgov.events.timeline import verify_chains
from gridgov.geo.models import Region


@pytest.fixture
def committed_event(seeded, tmp_path):  # type: ignore[no-untyped-def]
    """An accepted event committed for real (threads need their own connections); removed after."""
    factory = sessionmaker(bind=seeded.engine, expire_on_commit=False)
    ctx = service.make_context(None, "08:30-12:00,13:30-17:30", None, tmp_path / "m", 2**20)
    with factory() as s:
        worker = s.scalar(select(User).where(User.username == "grid_worker"))
        p = shapely.from_wkb(s.get(Region, worker.region_code).geometry).representative_point()
        data = ReportInput("ZF03", "并发测试", lon=p.x, lat=p.y)
        ev = service.report_event(s, ctx=ctx, user=worker, data=data, channel="grid", now=NOW).event
        vs = s.scalar(select(User).where(User.username == "village_staff"))
        service.act(s, ctx=ctx, user=vs, ref=ev.id, data=ActInput("accept"), now=NOW)
        s.commit()
        event_id, version = ev.id, ev.version
    yield factory, ctx, event_id, version
    with factory() as s:
        for model in (Notification, EventPhoto, EventEntry):
            s.execute(delete(model).where(model.event_id == event_id))
        s.execute(delete(Event).where(Event.id == event_id))
        s.commit()


def test_two_handlers_at_once_exactly_one_wins(committed_event) -> None:  # type: ignore[no-untyped-def]
    factory, ctx, event_id, version = committed_event
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def handler(action: ActInput) -> None:
        # Wait before touching the database: on SQLite the first statement takes the write lock.
        barrier.wait()
        with factory() as s:
            vs = s.scalar(select(User).where(User.username == "village_staff"))
            try:
                service.act(s, ctx=ctx, user=vs, ref=event_id, data=action, now=NOW)
                s.commit()
                result = "ok"
            except Conflict as exc:
                s.rollback()
                result = exc.code
            except Exception as exc:
                s.rollback()
                result = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(result)

    dispatch = ActInput("dispatch", version=version)
    escalate = ActInput("escalate", version=version, comment="需要上级")
    threads = [threading.Thread(target=handler, args=(a,)) for a in (dispatch, escalate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["ok", "version_conflict"]
    with factory() as s:
        ev = s.get(Event, event_id)
        assert ev.version == version + 1
        actions = s.scalars(
            select(EventEntry.action)
            .where(EventEntry.event_id == event_id)
            .order_by(EventEntry.seq)
        ).all()
        assert actions[:2] == ["report", "accept"] and len(actions) == 3
        assert verify_chains(s).ok
