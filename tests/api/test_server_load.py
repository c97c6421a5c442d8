"""Many requests at once against few handler threads: all are answered, none deadlock.

Before the database gate, a request held its pooled connection while waiting for a thread to run
its next step, and threads waited for connections: with more concurrent requests than threads the
server stalled until the pool timed out.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from gridgov.accounts.models import User
from gridgov.app import create_app
from gridgov.config import Settings
from gridgov.demo.build import DEMO_PASSWORD
from gridgov.events.models import Event, EventEntry, Notification

REQUESTS = 24


def test_more_concurrent_requests_than_threads_all_succeed(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=seeded.url, media_dir=tmp_path / "media", threads=2)
    app = create_app(settings)
    factory = sessionmaker(bind=seeded.engine)
    with factory() as s:
        grid = s.scalar(select(User.region_code).where(User.username == "grid_worker"))
    start = threading.Barrier(REQUESTS)
    made: list[str] = []
    try:
        with TestClient(app) as client:
            login = {"username": "grid_worker", "password": DEMO_PASSWORD}
            token = client.post("/api/v1/auth/token", data=login).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            def report(i: int) -> tuple[int, str]:
                start.wait()
                body = {"category": "ZF03", "description": f"并发上报 {i}", "grid_code": grid}
                r = client.post("/api/v1/events", json=body, headers=headers)
                return r.status_code, r.json().get("tracking_no", r.text)

            with ThreadPoolExecutor(REQUESTS) as pool:
                results = list(pool.map(report, range(REQUESTS)))
        made = [no for status, no in results if status == 201]
        assert [status for status, _ in results] == [201] * REQUESTS, results
        assert len(set(made)) == REQUESTS
        with factory() as s:
            stored = s.scalars(select(Event.tracking_no).where(Event.tracking_no.in_(made))).all()
        assert sorted(stored) == sorted(made)
    finally:
        app.state.engine.dispose()
        with factory() as s:
            ids = s.scalars(select(Event.id).where(Event.tracking_no.in_(made))).all()
            for model in (Notification, EventEntry):
                s.execute(delete(model).where(model.event_id.in_(ids)))
            s.execute(delete(Event).where(Event.id.in_(ids)))
            s.commit()
