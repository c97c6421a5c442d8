"""Resolution steps for the step-runner tests (imported by name in the spawned step process)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


def write_then_fail(session: Session, *, now: datetime) -> None:
    """Writes a row, then fails: the step's transaction must leave nothing behind."""
    session.execute(
        text("INSERT INTO meta (key, value) VALUES ('step_fail', :v)"), {"v": now.isoformat()}
    )
    session.flush()
    raise RuntimeError("第 2 步失败: 测试用")


def write_meta(session: Session, *, now: datetime) -> dict[str, str]:
    session.execute(
        text("INSERT INTO meta (key, value) VALUES ('step_test', :v)"), {"v": now.isoformat()}
    )
    return {"written": now.isoformat()}
