"""Import batches for the people who run the data center: list them, download their reports.

Department files concern the whole city, so batches are visible to city-level staff and
administrators only; anyone else gets NotFound, as for anything outside their jurisdiction.
"""

from __future__ import annotations

import io

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridgov.accounts.models import User
from gridgov.accounts.rules import Role
from gridgov.core.errors import NotFound
from gridgov.geo.divisions import CITY, level_of_code
from gridgov.ingest.models import IngestBatch
from gridgov.ingest.pipeline import write_report

BATCH_ROLES = frozenset({Role.CITY_STAFF, Role.ADMIN})


def may_see_batches(user: User) -> bool:
    return level_of_code(user.region_code) == CITY and any(r in BATCH_ROLES for r in user.roles)


def _denied() -> NotFound:
    return NotFound("导入批次只对市级工作人员和系统管理员开放", code="batches_not_found")


def list_batches(
    session: Session, user: User, *, source: str = "", page: int, size: int
) -> tuple[int, list[IngestBatch]]:
    if not may_see_batches(user):
        raise _denied()
    stmt = select(IngestBatch)
    if source:
        stmt = stmt.where(IngestBatch.source == source.upper())
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(IngestBatch.id.desc()).offset((page - 1) * size).limit(size)
    ).all()
    return total, list(rows)


def access_batch(session: Session, user: User, batch_id: int) -> IngestBatch:
    if not may_see_batches(user):
        raise _denied()
    batch = session.get(IngestBatch, batch_id)
    if batch is None:
        raise NotFound(f"导入批次 {batch_id} 不存在", code="batch_not_found")
    return batch


def report_bytes(session: Session, batch: IngestBatch) -> bytes:
    """The quarantine report, built from the database (the copy on disk may be elsewhere)."""
    buf = io.StringIO()
    write_report(session, batch, buf)
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")
