"""Scheduled job: the retention of patrol tracks, in a background thread of `gridgov serve`."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine

from gridgov.core import clock

log = logging.getLogger("gridgov.field")
EVERY_SECONDS = 3600.0


def purge_once(engine: Engine, settings: Any) -> int:
    """Delete the track points past `settings.field_track_days`; the number deleted."""
    from gridgov.db.engine import make_sessionmaker, session_scope
    from gridgov.field.service import purge_tracks

    with session_scope(make_sessionmaker(engine)) as session:
        return purge_tracks(session, keep_days=settings.field_track_days, now=clock.now())


def start_track_purge(
    engine: Engine, settings: Any, *, every: float = EVERY_SECONDS
) -> threading.Event:
    """Purge expired tracks at start and then every `every` seconds, until the event is set.

    Idempotent: several server processes may run it.
    """
    stop = threading.Event()

    def run() -> None:
        while True:
            try:
                n = purge_once(engine, settings)
                if n:
                    log.info(
                        "track retention: %d points older than %d days deleted",
                        n,
                        settings.field_track_days,
                    )
            except Exception:
                log.exception("track retention failed; retrying next round")
            if stop.wait(every):
                return

    threading.Thread(target=run, name="gridgov-track-purge", daemon=True).start()
    return stop
