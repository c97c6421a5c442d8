"""Scheduled jobs: the deadline sweep in a background thread of `gridgov serve`."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine

from gridgov.core import clock
from gridgov.core.errors import Conflict

log = logging.getLogger("gridgov.sweep")


def start_sweeper(engine: Engine, settings: Any, *, every: float) -> threading.Event:
    """Run the deadline sweep every `every` seconds until the returned event is set.

    The sweep is idempotent, so several server processes may run it; one that loses a race to
    another just finds nothing left to do next time.
    """
    from gridgov.db.engine import make_sessionmaker, session_scope
    from gridgov.events.service import context_from_settings, sweep

    stop = threading.Event()
    factory = make_sessionmaker(engine)
    ctx = context_from_settings(settings)

    def run() -> None:
        while not stop.wait(every):
            try:
                with session_scope(factory) as session:
                    report = sweep(session, ctx=ctx, now=clock.now())
                if report.yellow or report.red or report.escalated:
                    log.info(
                        "sweep: yellow %d, red %d, escalated %d",
                        report.yellow,
                        report.red,
                        report.escalated,
                    )
            except Conflict:
                log.info("sweep: another process changed an event first; retrying next round")
            except Exception:
                log.exception("sweep failed; retrying next round")

    threading.Thread(target=run, name="gridgov-sweep", daemon=True).start()
    return stop
