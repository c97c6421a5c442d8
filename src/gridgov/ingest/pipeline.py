"""The import job: stage a department file raw, then validate, standardise and load it in chunks.

    file ──sha256──▶ batch (one per source and file content; the same file twice is a no-op)
         ──read────▶ staged.parquet (every row as received, with its file row number)
         ──chunks──▶ source_records (loaded, with provenance) | quarantined_rows (with reasons)
         ──────────▶ report.csv (every quarantined row and why), batch done

Each chunk commits together with the batch's resume point (`rows_done`), so an import killed at
any moment resumes where the last commit left it: no row is loaded twice, none is skipped. This
is a job, like the CLI's unit of work: it commits; the services it calls do not.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing as mp
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridgov.db.bulk import copy_new, insert_new
from gridgov.db.engine import session_scope
from gridgov.ingest.mapping import Dataset, Mappings
from gridgov.ingest.models import (
    DONE,
    FAILED,
    LOADING,
    STAGED,
    IngestBatch,
    QuarantinedRow,
    SourceRecord,
)
from gridgov.ingest.reader import RawRow, ReadError, detect_encoding, file_format, read_file
from gridgov.ingest.standardise import Outcome, RowStandardiser

CHUNK = 20_000
POOL_WINDOW = 2  # chunks standardised ahead of the one being written
RECORD_COLUMNS = (
    "batch_id", "source", "dataset", "kind", "row_no", "record_key", "content_hash", "as_of",
    "values", "flags", "grid_code", "loaded_at",
)  # fmt: skip
STAGED_FILE, REPORT_FILE = "staged.parquet", "report.csv"
Progress = Callable[[int, int], None]  # (rows done, rows in the file)


@dataclass
class BatchResult:
    batch_id: int
    source: str
    dataset: str
    file_name: str
    status: str
    read: int
    loaded: int
    unchanged: int
    quarantined: int
    report_path: str
    encoding: str
    file_format: str
    already_imported: bool = False  # this exact file was imported before: nothing changed
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch_id,
            "source": self.source,
            "dataset": self.dataset,
            "file": self.file_name,
            "status": self.status,
            "read": self.read,
            "loaded": self.loaded,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "report": self.report_path,
            "encoding": self.encoding,
            "format": self.file_format,
            "already_imported": self.already_imported,
            "error": self.error,
        }


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _result(batch: IngestBatch, *, already: bool = False) -> BatchResult:
    return BatchResult(
        batch_id=batch.id,
        source=batch.source,
        dataset=batch.dataset,
        file_name=batch.file_name,
        status=batch.status,
        read=batch.rows_read,
        loaded=batch.rows_loaded,
        unchanged=batch.rows_unchanged,
        quarantined=batch.rows_quarantined,
        report_path=batch.report_path,
        encoding=batch.encoding,
        file_format=batch.file_format,
        already_imported=already,
        error=batch.error,
    )


class ImportJob:
    """Import one file for one source. `run()` is safe to call again after a crash."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        path: Path,
        *,
        source: str,
        mappings: Mappings,
        work_dir: Path,
        now: Callable[[], datetime],
        actor: str = "",
        progress: Progress | None = None,
        chunk: int = CHUNK,
        after_chunk: Callable[[int], None] | None = None,
        pool: Executor | None = None,
    ) -> None:
        self.factory, self.path, self.mappings = factory, path, mappings
        self.source = mappings.source(source).code
        self.dataset: Dataset = mappings.dataset_for(self.source, path.name)
        self.work_dir, self.now, self.actor = work_dir, now, actor
        self.progress, self.chunk, self.after_chunk = progress, chunk, after_chunk
        self.pool = pool

    # ------------------------------------------------------------------------------ batch

    def run(self) -> BatchResult:
        sha = file_sha256(self.path)
        with session_scope(self.factory) as s:
            batch = s.scalar(
                select(IngestBatch).where(
                    IngestBatch.source == self.source, IngestBatch.file_sha256 == sha
                )
            )
            if batch is not None and batch.status == DONE:
                return _result(batch, already=True)
            if batch is None:
                batch = IngestBatch(
                    source=self.source,
                    dataset=self.dataset.name,
                    file_name=self.path.name,
                    file_sha256=sha,
                    file_bytes=self.path.stat().st_size,
                    file_format=file_format(self.path),
                    status=STAGED,
                    created_by=self.actor,
                    started_at=self.now(),
                )
                s.add(batch)
                s.flush()
            batch_id = batch.id
        folder = self.work_dir / f"batch_{batch_id:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / STAGED_FILE
        try:
            with session_scope(self.factory) as s:
                batch = s.get_one(IngestBatch, batch_id)
                if batch.status in (STAGED, FAILED) or not staged.exists():
                    self._stage(batch, staged)
                    batch.status = LOADING
                    batch.error = ""
            self._load(batch_id, staged)
            with session_scope(self.factory) as s:
                batch = s.get_one(IngestBatch, batch_id)
                batch.report_path = str(self._report(s, batch, folder / REPORT_FILE))
                batch.status = DONE
                batch.finished_at = self.now()
                return _result(batch)
        except ReadError as exc:
            with session_scope(self.factory) as s:
                batch = s.get_one(IngestBatch, batch_id)
                batch.status = FAILED
                batch.error = str(exc)
                batch.finished_at = self.now()
                return _result(batch)

    # ---------------------------------------------------------------------------- staging

    def _stage(self, batch: IngestBatch, staged: Path) -> None:
        """Every row of the file as received, in file order, written atomically."""
        encoding = "" if batch.file_format == "xlsx" else detect_encoding(self.path)
        batch.encoding = encoding
        schema = pa.schema(
            [("row_no", pa.int64()), ("cells", pa.list_(pa.string())), ("problem", pa.string())]
        )
        tmp = staged.with_suffix(".tmp")
        rows = 0
        writer: pq.ParquetWriter | None = None
        try:
            for chunk in read_file(self.path, encoding=encoding, size=self.chunk * 5):
                if writer is None:
                    meta = {b"header": json.dumps(chunk.header, ensure_ascii=False).encode()}
                    writer = pq.ParquetWriter(tmp, schema.with_metadata(meta))
                table = pa.table(
                    {
                        "row_no": [r.row_no for r in chunk.rows],
                        "cells": [r.cells for r in chunk.rows],
                        "problem": [r.problem for r in chunk.rows],
                    },
                    schema=schema,
                )
                writer.write_table(table)
                rows += len(chunk.rows)
        finally:
            if writer is not None:
                writer.close()
        tmp.replace(staged)
        batch.staged_path = str(staged)
        batch.rows_read = rows
        batch.rows_done = batch.rows_loaded = batch.rows_quarantined = batch.rows_unchanged = 0

    # ---------------------------------------------------------------------------- loading

    def _load(self, batch_id: int, staged: Path) -> None:
        pf = pq.ParquetFile(staged)
        header: list[str] = json.loads(pf.schema_arrow.metadata[b"header"])
        with session_scope(self.factory) as s:
            done = s.get_one(IngestBatch, batch_id).rows_done
        total = pf.metadata.num_rows

        def pending() -> Iterator[tuple[int, list[RawRow]]]:
            """The rows not yet committed, by chunk, with the position each chunk ends at."""
            position = 0
            for record_batch in pf.iter_batches(batch_size=self.chunk):
                size = record_batch.num_rows
                if position + size > done:
                    cols = record_batch.to_pydict()
                    skip = max(0, done - position)
                    yield position + size, [_raw_row(cols, i) for i in range(skip, size)]
                position += size

        def commit(outcomes: list[Outcome], end: int) -> None:
            self._write_chunk(batch_id, outcomes, end)
            if self.progress is not None:
                self.progress(end, total)
            if self.after_chunk is not None:
                self.after_chunk(end)

        codes = self.mappings.codes
        if self.pool is None:
            standardise = RowStandardiser(self.dataset, header, codes)
            for end, rows in pending():
                commit([standardise(r) for r in rows], end)
            return
        # Worker processes standardise the next chunks while this one writes; chunks commit in
        # file order, so the resume point stays exact.
        window: deque[tuple[int, Future[list[Outcome]]]] = deque()
        for end, rows in pending():
            window.append(
                (end, self.pool.submit(standardise_rows, self.dataset, header, codes, rows))
            )
            if len(window) > POOL_WINDOW:
                first_end, future = window.popleft()
                commit(future.result(), first_end)
        while window:
            first_end, future = window.popleft()
            commit(future.result(), first_end)

    def _write_chunk(self, batch_id: int, outcomes: list[Outcome], done: int) -> None:
        now = self.now()
        ds = self.dataset
        check = ds.kind == "check"
        records = [
            (
                batch_id, ds.source, ds.name, ds.kind, o.row_no, o.record_key, o.content_hash(),
                o.as_of, o.values_json or o.seal().values_json,
                json.dumps(o.flags, ensure_ascii=False),
                o.values.get("grid_code") if check else None, now,
            )
            for o in outcomes
            if o.ok
        ]  # fmt: skip
        bad = [
            {
                "batch_id": batch_id,
                "row_no": o.row_no,
                "raw": o.raw,
                "reasons": [r.as_dict() for r in o.reasons],
            }
            for o in outcomes
            if not o.ok
        ]
        with session_scope(self.factory) as s:
            inserted = copy_new(
                s,
                SourceRecord.__table__,
                RECORD_COLUMNS,
                records,
                conflict=("source", "dataset", "record_key", "content_hash"),
                json_columns=("values", "flags"),
            )
            insert_new(s, QuarantinedRow.__table__, bad, conflict=("batch_id", "row_no"))
            batch = s.get_one(IngestBatch, batch_id)
            batch.rows_loaded += len(records)
            batch.rows_unchanged += len(records) - inserted
            batch.rows_quarantined += len(bad)
            batch.rows_done = done

    # ----------------------------------------------------------------------------- report

    def _report(self, s: Session, batch: IngestBatch, path: Path) -> Path:
        """Every quarantined row with its reasons (UTF-8 with BOM, so Excel opens it as such)."""
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
            write_report(s, batch, fh)
        tmp.replace(path)
        return path


def write_report(s: Session, batch: IngestBatch, fh: Any) -> None:
    """The batch's counts, then one line per quarantined row and reason (CSV)."""
    rows = s.execute(
        select(QuarantinedRow.row_no, QuarantinedRow.raw, QuarantinedRow.reasons)
        .where(QuarantinedRow.batch_id == batch.id)
        .order_by(QuarantinedRow.row_no)
    )
    out = csv.writer(fh)
    out.writerow(["# 文件", batch.file_name, "部门", batch.source, "数据集", batch.dataset])
    out.writerow(
        [
            "# 读取",
            batch.rows_read,
            "入库",
            batch.rows_loaded,
            "其中未变化",
            batch.rows_unchanged,
            "隔离",
            batch.rows_quarantined,
        ]
    )
    out.writerow(["行号", "列", "字段", "问题代码", "说明", "原始内容"])
    for row_no, raw, reasons in rows:
        shown = json.dumps(raw, ensure_ascii=False)
        for r in reasons:
            out.writerow([row_no, r["column"], r["field"], r["code"], r["msg"], shown])


def standardise_rows(
    dataset: Dataset, header: list[str], codes: Mapping[str, Mapping[str, str]], rows: list[RawRow]
) -> list[Outcome]:
    """One chunk in a worker process (module level, so it pickles)."""
    standardise = RowStandardiser(dataset, header, codes)
    return [standardise(r) for r in rows]


def make_pool(workers: int) -> Executor | None:
    """Processes that standardise chunks in parallel (spawned: safe with open connections)."""
    if workers <= 1:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))


def _raw_row(cols: dict[str, list[Any]], i: int) -> RawRow:
    return RawRow(cols["row_no"][i], list(cols["cells"][i]), cols["problem"][i] or "")
