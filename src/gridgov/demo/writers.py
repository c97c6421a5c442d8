"""Write a department table as its department would: CSV (UTF-8, BOM, or GBK with CRLF), XLSX, JSON Lines.

Large tables are split into parts of at most `part_rows` rows (`ga_hukou_part001.csv`, …). CSV is
written unquoted, as many department exports are, so a comma inside a value (a broken row on
purpose) shifts the columns; no generated value contains a quote or a line break.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

IntArray = npt.NDArray[np.int64]
EXTENSIONS = {"csv": "csv", "xlsx": "xlsx", "jsonl": "jsonl"}
FIXED_TIME = datetime(2023, 6, 30, tzinfo=UTC)  # workbook properties, so the bytes are reproducible
EXTRA_CELL = "(备注)"


@dataclass(frozen=True, slots=True)
class WrittenFile:
    name: str
    rows: int
    offset: int  # index of the file's first row in the table
    first_row_no: int  # the row number a reader gives the first data row (header = 1)


def part_names(stem: str, ext: str, rows: int, part_rows: int) -> list[tuple[str, int, int]]:
    parts = max(1, -(-rows // part_rows))
    if parts == 1:
        return [(f"{stem}.{ext}", 0, rows)]
    return [
        (f"{stem}_part{i + 1:03d}.{ext}", i * part_rows, min(part_rows, rows - i * part_rows))
        for i in range(parts)
    ]


def write_table(
    folder: Path,
    stem: str,
    frame: pl.DataFrame,
    *,
    fmt: str,
    encoding: str,
    part_rows: int,
    structural: IntArray,
) -> list[WrittenFile]:
    out = []
    for name, offset, rows in part_names(stem, EXTENSIONS[fmt], frame.height, part_rows):
        part = frame.slice(offset, rows)
        extra = structural[(structural >= offset) & (structural < offset + rows)] - offset
        path = folder / name
        if fmt == "csv":
            _write_csv(path, part, encoding)
            first = 2
        elif fmt == "xlsx":
            _write_xlsx(path, part, extra)
            first = 2
        else:
            _write_jsonl(path, part, extra)
            first = 1
        out.append(WrittenFile(name=name, rows=rows, offset=offset, first_row_no=first))
    return out


def _write_csv(path: Path, frame: pl.DataFrame, encoding: str) -> None:
    buf = io.BytesIO()
    frame.write_csv(
        buf,
        quote_style="never",
        include_bom=encoding == "utf-8-sig",
        line_terminator="\r\n" if encoding in ("gbk", "gb18030") else "\n",
    )
    data = buf.getvalue()
    if encoding in ("gbk", "gb18030"):
        data = data.decode("utf-8").encode(encoding)  # strict: a non-GBK character is a bug
    path.write_bytes(data)


def _write_xlsx(path: Path, frame: pl.DataFrame, extra: IntArray) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    book.set_properties({"created": FIXED_TIME, "author": "gridgov", "title": path.stem})
    sheet = book.add_worksheet("Sheet1")
    sheet.write_row(0, 0, frame.columns)
    broken = set(extra.tolist())
    # xlsxwriter writes cell by cell; these workbooks are the small datasets (≤ 150,000 rows).
    for i, row in enumerate(frame.iter_rows()):
        sheet.write_row(i + 1, 0, (*row, EXTRA_CELL) if i in broken else row)
    book.close()


def _write_jsonl(path: Path, frame: pl.DataFrame, extra: IntArray) -> None:
    buf = io.BytesIO()
    frame.write_ndjson(buf)
    data = buf.getvalue()
    if len(extra):
        lines = data.split(b"\n")
        for i in extra.tolist():
            # a line cut short, as by a crash mid-export: not valid JSON
            line = lines[i].decode("utf-8")
            lines[i] = line[: len(line) // 2].encode("utf-8")
        data = b"\n".join(lines)
    path.write_bytes(data)
