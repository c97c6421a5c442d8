"""`gridgov field purge-tracks`: tracks older than the retention go, the figures stay."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gridgov.cli.main import app
from gridgov.core import clock
from gridgov.db.engine import make_engine, make_sessionmaker, session_scope

runner = CliRunner()
GRID = "330203001001001"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", url)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["users", "add", "gw_field", "--password", "Str0ng!pass", "--region", GRID[:12],
              "--role", "village_staff"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return url


def _two_patrols(engine) -> None:  # type: ignore[no-untyped-def]
    """A patrol ended 100 days ago and one 10 days ago, three track points each."""
    from gridgov.accounts.models import User
    from gridgov.field.models import Patrol, TrackPoint

    now = clock.now()
    with session_scope(make_sessionmaker(engine)) as s:
        uid = s.scalar(select(User.id).where(User.username == "gw_field"))
        for key, age in (("old", 100), ("new", 10)):
            start = now - timedelta(days=age)
            p = Patrol(user_id=uid, client_key=key, grid_code=GRID, started_at=start,
                       ended_at=start + timedelta(hours=1), status="closed")  # fmt: skip
            s.add(p)
            s.flush()
            s.add_all(
                TrackPoint(patrol_id=p.id, at=start + timedelta(minutes=i), lon=121.5, lat=29.8)
                for i in range(3)
            )


def test_purge_tracks_keeps_recent_ones(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gridgov.field.models import TrackPoint

    engine = make_engine(db)
    _two_patrols(engine)
    monkeypatch.setenv("GRIDGOV_FIELD_TRACK_DAYS", "90")
    result = runner.invoke(app, ["field", "purge-tracks", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"deleted_points": 3, "keep_days": 90}
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(TrackPoint)) == 3
    result = runner.invoke(app, ["field", "purge-tracks", "--days", "5"])
    assert result.exit_code == 0 and "3" in result.output
    engine.dispose()


def test_the_server_purges_expired_tracks_in_the_background(db: str) -> None:
    import time

    from gridgov.config import Settings
    from gridgov.field.models import TrackPoint
    from gridgov.field.tasks import start_track_purge

    engine = make_engine(db)
    _two_patrols(engine)
    stop = start_track_purge(engine, Settings(database_url=db, field_track_days=30), every=3600)
    try:
        for _ in range(100):
            with engine.connect() as conn:
                left = conn.scalar(select(func.count()).select_from(TrackPoint))
            if left == 3:
                break
            time.sleep(0.05)
        assert left == 3
    finally:
        stop.set()
        engine.dispose()
