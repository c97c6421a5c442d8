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
import itertools
import json
import multiprocessing as mp
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridgov.db.bulk import copy_frame, insert_new, refresh_statistics
from gridgov.db.engine import session_scope
from gridgov.ingest.columnar import FrameStandardiser
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
from gridgov.ingest.reader import (
    ColumnChunk,
    ReadError,
    arrow_csv_tables,
    columns_of,
    detect_encoding,
    file_format,
    read_csv_columns,
    read_file,
)
from gridgov.ingest.standardise import Outcome

CHUNK = 50_000
POOL_WINDOW = 1  # chunks standardised ahead of the one being written
STAGED_LAYOUT = "columns-1"  # c0…cN by column; a staged file of another layout is staged again
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
        # No row of this file collided with a stored one yet: chunks are copied straight in.
        self._fresh = True

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
                restage = batch.status in (STAGED, FAILED) or not _staged_current(staged)
                fmt = batch.file_format
            if restage:
                # Outside any transaction: staging a large file must not hold the database
                # (on SQLite, the write lock) while it reads.
                encoding, rows = self._stage(fmt, staged)
                with session_scope(self.factory) as s:
                    batch = s.get_one(IngestBatch, batch_id)
                    batch.encoding = encoding
                    batch.staged_path = str(staged)
                    batch.rows_read = rows
                    batch.rows_done = batch.rows_loaded = 0
                    batch.rows_quarantined = batch.rows_unchanged = 0
                    batch.status = LOADING
                    batch.error = ""
            self._load(batch_id, staged)
            with session_scope(self.factory) as s:
                batch = s.get_one(IngestBatch, batch_id)
                batch.report_path = str(self._report(s, batch, folder / REPORT_FILE))
                batch.status = DONE
                batch.finished_at = self.now()
                result = _result(batch)
            with session_scope(self.factory) as s:
                refresh_statistics(s, "source_records", "quarantined_rows")
            return result
        except ReadError as exc:
            with session_scope(self.factory) as s:
                batch = s.get_one(IngestBatch, batch_id)
                batch.status = FAILED
                batch.error = str(exc)
                batch.finished_at = self.now()
                return _result(batch)

    # ---------------------------------------------------------------------------- staging

    def _stage(self, fmt: str, staged: Path) -> tuple[str, int]:
        """Every row of the file as received, in file order, by column, written atomically;
        returns the encoding read and the number of rows."""
        encoding = "" if fmt == "xlsx" else detect_encoding(self.path)
        size = self.chunk * 5
        plain = arrow_csv_tables(self.path, encoding=encoding) if fmt == "csv" else None
        chunks: Iterator[ColumnChunk | pa.Table]
        if plain is not None:  # split by Arrow's reader: the same rows, numbers and problems
            header, chunks = plain
        elif fmt == "csv":
            header, chunks = read_csv_columns(self.path, encoding=encoding, size=size)
        else:
            raw = read_file(self.path, encoding=encoding, size=size)
            first = next(raw)
            header = first.header

            def by_column() -> Iterator[ColumnChunk]:
                for chunk in itertools.chain([first], raw):
                    yield columns_of(chunk.rows, len(header))

            chunks = by_column()
        schema = staged_schema(len(header)).with_metadata(
            {
                b"header": json.dumps(header, ensure_ascii=False).encode(),
                b"layout": STAGED_LAYOUT.encode(),
            }
        )
        tmp = staged.with_suffix(".tmp")
        rows = 0
        with pq.ParquetWriter(tmp, schema) as writer:
            for chunk in chunks:
                if isinstance(chunk, pa.Table):
                    arrays = chunk.columns
                else:
                    arrays = [
                        pa.array(chunk.row_no, pa.int64()),
                        pa.array(chunk.problem, pa.string()),
                        pa.array(chunk.extra, pa.string()),
                        *(pa.array(col, pa.string()) for col in chunk.columns),
                    ]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += len(chunk)
        tmp.replace(staged)
        return encoding, rows

    # ---------------------------------------------------------------------------- loading

    def _load(self, batch_id: int, staged: Path) -> None:
        pf = pq.ParquetFile(staged)
        header: list[str] = json.loads(pf.schema_arrow.metadata[b"header"])
        with session_scope(self.factory) as s:
            done = s.get_one(IngestBatch, batch_id).rows_done
        total = pf.metadata.num_rows

        def pending() -> Iterator[tuple[int, pl.DataFrame]]:
            """The rows not yet committed, by chunk, with the position each chunk ends at."""
            position = 0
            for record_batch in pf.iter_batches(batch_size=self.chunk):
                size = record_batch.num_rows
                if position + size > done:
                    skip = max(0, done - position)
                    frame = pl.from_arrow(record_batch)
                    assert isinstance(frame, pl.DataFrame)  # noqa: S101 (a record batch)
                    yield position + size, frame.slice(skip)
                position += size

        def commit(chunk: Standardised, end: int) -> None:
            self._write_chunk(batch_id, chunk, end)
            if self.progress is not None:
                self.progress(end, total)
            if self.after_chunk is not None:
                self.after_chunk(end)

        codes = self.mappings.codes
        # The next chunks are standardised (a thread by default: Polars and the database work
        # outside the GIL; or worker processes) while this one is written; chunks commit in
        # file order, so the resume point stays exact.
        local = ThreadPoolExecutor(max_workers=1, thread_name_prefix="standardise")
        standardiser = FrameStandardiser(self.dataset, header, codes)
        window: deque[tuple[int, Future[Standardised]]] = deque()
        try:
            for end, frame in pending():
                if self.pool is None:
                    future = local.submit(standardiser.standardise, frame)
                else:
                    future = self.pool.submit(standardise_frame, self.dataset, header, codes, frame)
                window.append((end, future))
                if len(window) > POOL_WINDOW:
                    first_end, first = window.popleft()
                    commit(first.result(), first_end)
            while window:
                first_end, first = window.popleft()
                commit(first.result(), first_end)
        finally:
            for _, pending_future in window:
                pending_future.cancel()
            local.shutdown(wait=True)

    def _write_chunk(self, batch_id: int, chunk: Standardised, done: int) -> None:
        ds = self.dataset
        loaded, rejected = chunk
        records = loaded.select(
            pl.lit(batch_id, pl.Int64()).alias("batch_id"),
            pl.lit(ds.source).alias("source"),
            pl.lit(ds.name).alias("dataset"),
            pl.lit(ds.kind).alias("kind"),
            "row_no",
            "record_key",
            "content_hash",
            "as_of",
            "values",
            "flags",
            "grid_code",
            pl.lit(self.now()).dt.convert_time_zone("UTC").alias("loaded_at"),
        )
        bad = [
            {
                "batch_id": batch_id,
                "row_no": o.row_no,
                "raw": o.raw,
                "reasons": [r.as_dict() for r in o.reasons],
            }
            for o in rejected
        ]
        with session_scope(self.factory) as s:
            inserted = copy_frame(
                s,
                SourceRecord.__table__,
                records,
                conflict=("source", "dataset", "record_key", "content_hash"),
                optimistic=self._fresh,
            )
            # Rows seen before (a re-sent or overlapping extract): the rest of the file goes
            # through the collision-checked path at once.
            self._fresh = self._fresh and inserted == records.height
            insert_new(s, QuarantinedRow.__table__, bad, conflict=("batch_id", "row_no"))
            batch = s.get_one(IngestBatch, batch_id)
            batch.rows_loaded += records.height
            batch.rows_unchanged += records.height - inserted
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


Standardised = tuple[pl.DataFrame, list[Outcome]]  # loadable rows, quarantined outcomes


def import_files(jobs: Sequence[ImportJob], at_once: int = 1) -> list[BatchResult]:
    """Run import jobs, `at_once` files at a time (threads: reading, Polars and the database
    overlap), results in the order given. Each job commits on its own; one failing file does
    not stop the others, and its exception is raised after they finish."""
    if at_once <= 1 or len(jobs) <= 1:
        return [job.run() for job in jobs]
    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="import") as pool:
        futures = [pool.submit(job.run) for job in jobs]
        return [f.result() for f in futures]


def _staged_current(staged: Path) -> bool:
    """A staged file of this version's layout (an older one is staged again, from the start)."""
    if not staged.exists():
        return False
    meta = pq.read_schema(staged).metadata or {}
    return meta.get(b"layout") == STAGED_LAYOUT.encode()


def staged_schema(width: int) -> pa.Schema:
    return pa.schema(
        [("row_no", pa.int64()), ("problem", pa.string()), ("extra", pa.string())]
        + [(f"c{i}", pa.string()) for i in range(width)]
    )


def standardise_frame(
    dataset: Dataset,
    header: list[str],
    codes: Mapping[str, Mapping[str, str]],
    frame: pl.DataFrame,
) -> Standardised:
    """One chunk in a worker process (module level, so it pickles)."""
    return FrameStandardiser(dataset, header, codes).standardise(frame)


def make_pool(workers: int) -> Executor | None:
    """Processes that standardise chunks in parallel (spawned: safe with open connections)."""
    if workers <= 1:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
