"""The background sweeper of `gridgov serve` raises warnings on committed events."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select
from tests.integration.test_event_concurrency import committed_event

from gridgov.core import clock
from gridgov.events.models import Event, EventEntry
from gridgov.events.tasks import start_sweeper

__all__ = ["committed_event"]


def test_sweeper_thread_warns_overdue_events(committed_event, seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gridgov.config import Settings

    factory, _ctx, event_id, _version = committed_event
    with factory() as s:
        deadline = s.get(Event, event_id).deadline_at
    settings = Settings(database_url=seeded.url, media_dir=tmp_path / "m")
    clock.freeze(deadline + timedelta(minutes=1))
    stop = start_sweeper(seeded.engine, settings, every=0.05)
    try:
        level = 0
        for _ in range(200):
            with factory() as s:
                level = s.get(Event, event_id).warning_level
            if level >= 2:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        clock.freeze(None)
    assert level == 2
    with factory() as s:
        actions = s.scalars(select(EventEntry.action).where(EventEntry.event_id == event_id)).all()
    assert actions.count("warn_red") == 1
