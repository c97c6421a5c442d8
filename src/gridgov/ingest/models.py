"""Import batches, the records they loaded (with provenance) and the rows they quarantined."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.db.base import Base
from gridgov.db.types import UTCDateTime, json_text_type, json_type

# Batch states: a batch moves staged → loading → done; failed keeps its error for the report.
STAGED, LOADING, DONE, FAILED = "staged", "loading", "done", "failed"


class IngestBatch(Base):
    """One department file as received. The same file (by SHA-256) is never imported twice."""

    __tablename__ = "ingest_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(8), index=True)
    dataset: Mapped[str] = mapped_column(String(40))
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_bytes: Mapped[int] = mapped_column(BigInteger)
    file_format: Mapped[str] = mapped_column(String(8))  # csv, xlsx, jsonl
    encoding: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[str] = mapped_column(String(12), default=STAGED)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_loaded: Mapped[int] = mapped_column(Integer, default=0)
    rows_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    # Loaded rows whose record (same key, same values) was already stored by an earlier batch.
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    # Resume point: rows before this (file row order) are committed as loaded or quarantined.
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    staged_path: Mapped[str] = mapped_column(String(500), default="")
    report_path: Mapped[str] = mapped_column(String(500), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("source", "file_sha256"),)


class SourceRecord(Base):
    """One loaded row: its standardised values, kept with source, batch and time (一数一源).

    `record_key` is the department's own record id; `content_hash` covers the standardised values,
    so a row seen again unchanged (a re-sent file, an overlapping extract) is not stored twice.
    """

    __tablename__ = "source_records"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    batch_id: Mapped[int] = mapped_column(Integer, index=True)
    source: Mapped[str] = mapped_column(String(8))
    dataset: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))
    row_no: Mapped[int] = mapped_column(Integer)  # the file's own row number (header = row 1)
    record_key: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime)
    values: Mapped[dict[str, Any]] = mapped_column(json_text_type())
    flags: Mapped[list[str]] = mapped_column(
        json_text_type(), default=list
    )  # kept-but-flagged issues
    # The grid the row was placed in at import (not indexed: scoping is on golden records).
    grid_code: Mapped[str | None] = mapped_column(String(15))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("source", "dataset", "record_key", "content_hash"),
        Index("ix_source_records_kind_source", "kind", "source"),
    )


class QuarantinedRow(Base):
    """A row that could not be loaded, kept as received with every field-level reason."""

    __tablename__ = "quarantined_rows"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    batch_id: Mapped[int] = mapped_column(Integer, ForeignKey("ingest_batches.id"), index=True)
    row_no: Mapped[int] = mapped_column(Integer)
    raw: Mapped[dict[str, Any]] = mapped_column(json_type())
    # [{"column": "公民身份号码", "field": "citizen_id", "code": "checksum", "message": "…"}]
    reasons: Mapped[list[dict[str, str]]] = mapped_column(json_type())

    __table_args__ = (UniqueConstraint("batch_id", "row_no"),)
