"""JSON API of import batches: counts, status and the quarantine report of each file."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from gridgov.ingest import service
from gridgov.ingest.models import IngestBatch
from gridgov.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1", tags=["数据导入"])


class BatchOut(BaseModel):
    id: int
    source: str
    dataset: str
    file_name: str
    file_format: str
    encoding: str
    status: str
    read: int
    loaded: int
    unchanged: int
    quarantined: int
    error: str
    started_at: datetime
    finished_at: datetime | None
    report: str  # the URL of the quarantine report


class BatchPage(BaseModel):
    total: int
    page: int
    size: int
    items: list[BatchOut]


def batch_out(b: IngestBatch) -> BatchOut:
    return BatchOut(
        id=b.id,
        source=b.source,
        dataset=b.dataset,
        file_name=b.file_name,
        file_format=b.file_format,
        encoding=b.encoding,
        status=b.status,
        read=b.rows_read,
        loaded=b.rows_loaded,
        unchanged=b.rows_unchanged,
        quarantined=b.rows_quarantined,
        error=b.error,
        started_at=b.started_at,
        finished_at=b.finished_at,
        report=f"/api/v1/ingest/batches/{b.id}/report.csv",
    )


@router.get("/ingest/batches", response_model=BatchPage, summary="导入批次 (市级)")
def batches(
    user: CurrentUser,
    session: SessionDep,
    source: Annotated[str, Query(max_length=8, description="部门代码")] = "",
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> BatchPage:
    total, rows = service.list_batches(session, user, source=source, page=page, size=size)
    return BatchPage(total=total, page=page, size=size, items=[batch_out(b) for b in rows])


@router.get("/ingest/batches/{batch_id}", response_model=BatchOut, summary="导入批次详情")
def batch(batch_id: int, user: CurrentUser, session: SessionDep) -> BatchOut:
    return batch_out(service.access_batch(session, user, batch_id))


@router.get("/ingest/batches/{batch_id}/report.csv", summary="隔离行报告 (CSV)")
def report(batch_id: int, user: CurrentUser, session: SessionDep) -> Response:
    b = service.access_batch(session, user, batch_id)
    name = f"quarantine_{b.id}_{b.source}_{b.dataset}.csv"
    return Response(
        service.report_bytes(session, b),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
