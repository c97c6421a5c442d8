"""Read department files (CSV in UTF-8/GBK/GB18030, XLSX, JSON Lines) as rows of text cells.

Every row keeps the file's own row number (the header is row 1 in CSV and XLSX; JSON Lines count
lines from 1), so a quarantine report points at the row a department clerk sees in the file.
A row that cannot be read as a row (wrong number of columns, bad JSON, undecodable bytes) is
returned with its problem instead of being skipped.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

CSV, XLSX, JSONL = "csv", "xlsx", "jsonl"
FORMATS = {".csv": CSV, ".txt": CSV, ".xlsx": XLSX, ".jsonl": JSONL, ".ndjson": JSONL}
CHUNK_ROWS = 50_000
REPLACEMENT = "\ufffd"


class ReadError(ValueError):
    """A file that cannot be read at all (unknown format, no header); the message says why."""


@dataclass(slots=True)
class RawRow:
    row_no: int
    cells: list[str | None]  # aligned to the header; None where the row had no such cell
    problem: str = ""  # "columns:7/9", "json", "encoding" — a row that is kept but not loadable


@dataclass(slots=True)
class RawChunk:
    header: list[str]
    rows: list[RawRow] = field(default_factory=list)


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ReadError(
            f"{path.name}: 不支持的文件类型 {path.suffix or '(无扩展名)'}; 支持 CSV、XLSX、JSON Lines"
        )
    return fmt


def detect_encoding(path: Path, *, block: int = 1 << 20) -> str:
    """utf-8-sig (BOM), utf-8, gbk or gb18030: the first that decodes the whole file strictly.

    A file that none decodes strictly is read in the one that leaves the fewest undecodable bytes,
    with replacement characters; the rows holding them are reported as undecodable ("encoding"
    problem), never silently altered.
    """
    with path.open("rb") as fh:
        head = fh.read(3)
    if head == codecs.BOM_UTF8:
        return "utf-8-sig"
    for encoding in ("utf-8", "gbk", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(block):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    # Some bytes are bad whatever the encoding: read it as the one that leaves fewest of them,
    # and let the rows holding replacement characters go to quarantine.
    data = path.read_bytes()
    damage = {
        enc: data.decode(enc, errors="replace").count(REPLACEMENT) for enc in ("utf-8", "gb18030")
    }
    return min(damage, key=lambda enc: damage[enc]) + "-replace"


def _cell_text(value: object) -> str | None:
    """A spreadsheet cell as the text a clerk sees (numbers without a spurious .0)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (
            value.strftime("%Y-%m-%d %H:%M:%S")
            if value.time() != datetime.min.time()
            else (value.strftime("%Y-%m-%d"))
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def _chunks(header: list[str], rows: Iterator[RawRow], size: int) -> Iterator[RawChunk]:
    """Chunks of rows; at least one (empty for a file with a header only), so callers see it."""
    chunk = RawChunk(header)
    yielded = False
    for row in rows:
        chunk.rows.append(row)
        if len(chunk.rows) >= size:
            yield chunk
            yielded = True
            chunk = RawChunk(header)
    if chunk.rows or not yielded:
        yield chunk


def _clean_header(names: list[str], path: Path) -> list[str]:
    header = [(n or "").strip().lstrip("\ufeff") for n in names]
    if not any(header):
        raise ReadError(f"{path.name}: 第 1 行应为表头 (列名), 但为空")
    dupes = sorted({n for n in header if n and header.count(n) > 1})
    if dupes:
        raise ReadError(f"{path.name}: 表头列名重复: {', '.join(dupes)}")
    return header


def _open_csv(path: Path, encoding: str) -> tuple[Any, Iterator[list[str]], list[str]]:
    """The open file, its csv reader past the header, and the header (the caller closes)."""
    errors = "replace" if encoding.endswith("-replace") else "strict"
    codec = encoding.removesuffix("-replace")
    fh = io.open(path, encoding=codec, errors=errors, newline="")  # noqa: SIM115, UP020
    reader = csv.reader(fh)
    try:
        first = next(reader)
    except StopIteration:
        fh.close()
        raise ReadError(f"{path.name}: 文件为空") from None
    return fh, reader, _clean_header(first, path)


def _csv_rows(path: Path, encoding: str) -> tuple[list[str], Iterator[RawRow]]:
    fh, reader, header = _open_csv(path, encoding)
    width = len(header)

    def rows() -> Iterator[RawRow]:
        try:
            # reader.line_num counts physical lines; a data row's number is its record index + 1
            # (header = row 1), which is what spreadsheet programs show for files without
            # embedded line breaks.
            row_no = 1
            for cells in reader:
                row_no += 1
                if not cells:  # a blank line is not a record
                    continue
                problem = ""
                if any(REPLACEMENT in c for c in cells):
                    problem = "encoding"
                out: list[str | None] = list(cells)
                if len(cells) != width:
                    problem = problem or f"columns:{len(cells)}/{width}"
                    if len(cells) < width:
                        out = (out + [None] * width)[:width]
                yield RawRow(row_no, out, problem)
        finally:
            fh.close()

    return header, rows()


def _jsonl_rows(path: Path, encoding: str) -> tuple[list[str], Iterator[RawRow]]:
    """Two passes over the file, so memory stays flat however long it is: the first collects
    the keys (the header, in order of first appearance), the second yields the rows."""
    codec = encoding.removesuffix("-replace")
    errors = "replace" if encoding.endswith("-replace") else "strict"

    def docs() -> Iterator[tuple[int, object]]:
        with path.open(encoding=codec, errors=errors, newline="") as fh:
            # Lines as str.splitlines() ends them (\n, \r\n, \r, and the rarer separators).
            i = 0
            for physical in fh:
                for line in physical.splitlines() or [""]:
                    i += 1
                    if not line.strip():
                        continue
                    try:
                        yield i, json.loads(line)
                    except json.JSONDecodeError:
                        yield i, line

    seen: dict[str, None] = {}
    for _, doc in docs():
        if isinstance(doc, dict):
            for key in doc:
                seen.setdefault(str(key), None)
    header = list(seen)
    if not header:
        raise ReadError(f"{path.name}: 没有任何 JSON 对象行")

    def rows() -> Iterator[RawRow]:
        for row_no, doc in docs():
            if not isinstance(doc, dict):
                yield RawRow(row_no, [str(doc)] + [None] * (len(header) - 1), "json")
                continue
            cells = [_cell_text(doc.get(k)) for k in header]
            bad = "encoding" if any(c and REPLACEMENT in c for c in cells) else ""
            yield RawRow(row_no, cells, bad)

    return header, rows()


def _xlsx_rows(path: Path) -> tuple[list[str], Iterator[RawRow]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    try:
        first = next(it)
    except StopIteration:
        wb.close()
        raise ReadError(f"{path.name}: 工作表为空") from None
    names = [_cell_text(v) or "" for v in first]
    while names and not names[-1].strip():  # read-only sheets report trailing empty cells
        names.pop()
    header = _clean_header(names, path)
    width = len(header)

    def rows() -> Iterator[RawRow]:
        try:
            for i, values in enumerate(it, start=2):
                cells = [_cell_text(v) for v in values]
                while len(cells) > width and cells[-1] in (None, ""):
                    cells.pop()
                if not any(c not in (None, "") for c in cells):
                    continue
                problem = f"columns:{len(cells)}/{width}" if len(cells) > width else ""
                cells = (cells + [None] * width)[:width] if len(cells) < width else cells
                yield RawRow(i, cells, problem)
        finally:
            wb.close()

    return header, rows()


@dataclass(slots=True)
class ColumnChunk:
    """Rows by column: the cells of column i in `columns[i]`, surplus cells as JSON in `extra`."""

    row_no: list[int]
    problem: list[str | None]
    extra: list[str | None]
    columns: list[Sequence[str | None]]

    def __len__(self) -> int:
        return len(self.row_no)


def columns_of(rows: list[RawRow], width: int) -> ColumnChunk:
    """RawRows (as `read_file` gives them) by column."""
    cells = [r.cells[:width] + [None] * (width - len(r.cells)) for r in rows]
    extra = [
        json.dumps(r.cells[width:], ensure_ascii=False) if len(r.cells) > width else None
        for r in rows
    ]
    columns: list[Sequence[str | None]] = (
        [list(c) for c in zip(*cells, strict=True)] if cells else [[] for _ in range(width)]
    )
    return ColumnChunk(
        row_no=[r.row_no for r in rows],
        problem=[r.problem or None for r in rows],
        extra=extra,
        columns=columns,
    )


def read_csv_columns(
    path: Path, *, encoding: str, size: int = CHUNK_ROWS
) -> tuple[list[str], Iterator[ColumnChunk]]:
    """A CSV file's rows in chunks by column, with the same row numbers and problems as
    `read_file` (blank lines are not records but count; wrong widths and undecodable bytes are
    marked). Transposed at C speed; only irregular rows are looked at one by one."""
    fh, reader, header = _open_csv(path, encoding)
    width = len(header)

    def chunks() -> Iterator[ColumnChunk]:
        row_no = 1
        try:
            while rows := list(itertools.islice(reader, size)):
                n = len(rows)
                numbers = list(range(row_no + 1, row_no + 1 + n))
                row_no += n
                problem: list[str | None] = [None] * n
                extra: list[str | None] = [None] * n
                blank = False
                lengths = list(map(len, rows))
                if lengths.count(width) != n:
                    for i, length in enumerate(lengths):
                        if length == width:
                            continue
                        if length == 0:
                            blank = True
                            continue
                        cells = rows[i]
                        problem[i] = f"columns:{length}/{width}"
                        if length > width:
                            extra[i] = json.dumps(cells[width:], ensure_ascii=False)
                            if any(REPLACEMENT in c for c in cells[width:]):
                                problem[i] = "encoding"
                            rows[i] = cells[:width]
                        else:
                            rows[i] = cells + [None] * (width - length)  # type: ignore[list-item]
                if blank:
                    keep = [i for i, length in enumerate(lengths) if length]
                    rows = [rows[i] for i in keep]
                    numbers = [numbers[i] for i in keep]
                    problem = [problem[i] for i in keep]
                    extra = [extra[i] for i in keep]
                    if not rows:
                        continue
                columns: list[Sequence[str | None]] = list(zip(*rows, strict=True))
                for col in columns:
                    if REPLACEMENT in "".join(filter(None, col)):
                        for i, c in enumerate(col):
                            if c and REPLACEMENT in c:
                                problem[i] = "encoding"
                yield ColumnChunk(numbers, problem, extra, columns)
        finally:
            fh.close()

    return header, chunks()


def read_file(path: Path, *, encoding: str = "", size: int = CHUNK_ROWS) -> Iterator[RawChunk]:
    """The file's rows in chunks; `encoding` from `detect_encoding` (text formats only)."""
    fmt = file_format(path)
    if fmt == XLSX:
        header, rows = _xlsx_rows(path)
    else:
        enc = encoding or detect_encoding(path)
        header, rows = (_csv_rows if fmt == CSV else _jsonl_rows)(path, enc)
    yield from _chunks(header, rows, size)


# ------------------------------------------------------------------ CSV by Arrow's reader

# Bytes per batch of the Arrow reader (about 200,000 rows of a department extract).
ARROW_BLOCK = 32 << 20


def _plain_csv(path: Path, *, block: int = 16 << 20) -> bool:
    """Whether each line of the file is a record split at every comma: no quote character
    (so no quoted comma or line break) and no blank line but at the end (so a line's number is
    its row number). Line ends are single bytes in UTF-8, GBK and GB18030 alike."""
    blank = (b"\n\n", b"\r\r", b"\n\r")  # two line ends in a row ("\r\n" is one)
    with path.open("rb") as fh:
        prev = b""
        while chunk := fh.read(block):
            if b'"' in chunk:
                return False
            if not prev and chunk[:1] in (b"\r", b"\n"):
                return False  # a blank first line: no header where it should be
            window = prev + chunk
            at = min((i for i in (window.find(b) for b in blank) if i >= 0), default=-1)
            if at >= 0:
                # Blank lines are fine at the very end: the rest must be line ends only.
                if window[at:].strip(b"\r\n"):
                    return False
                return all(not rest.strip(b"\r\n") for rest in iter(lambda: fh.read(block), b""))
            prev = chunk[-1:]
    return True


def arrow_csv_tables(path: Path, *, encoding: str) -> tuple[list[str], Iterator[Any]] | None:
    """A plain CSV file (`_plain_csv`) read by Arrow's CSV reader, in Arrow tables of the staged
    layout (row_no, problem, extra, c0…): the rows, row numbers and problems `read_csv_columns`
    gives, several times faster. None for any other file (quotes, blank lines inside, a single
    column, undecodable bytes), which `read_csv_columns` reads."""
    if encoding.endswith("-replace") or not _plain_csv(path):
        return None
    fh, _rows, header = _open_csv(path, encoding)
    fh.close()
    width = len(header)
    if width < 2:  # a one-column file's empty cell is a blank line to Arrow
        return None
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(width)]
    invalid: list[tuple[int, str]] = []  # (line number, text) of rows of another width

    def keep(row: Any) -> str:
        if row.number is None:  # the serial reader numbers every row
            raise ReadError(f"{path.name}: 无法确定行号")
        invalid.append((row.number, row.text))
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            # UTF-8 natively (a BOM sits in the header line, which is skipped); GBK and
            # GB18030 through Python's codecs.
            encoding="utf8" if encoding in ("utf-8", "utf-8-sig") else encoding,
            column_names=names,
            skip_rows=1,
            use_threads=False,  # numbered rows for the invalid-row handler
            block_size=ARROW_BLOCK,
        ),
        parse_options=pacsv.ParseOptions(
            quote_char=False, newlines_in_values=False, invalid_row_handler=keep
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
        ),
    )

    def tables() -> Iterator[Any]:
        last, taken = 1, 0  # the last line numbered (the header), invalid rows placed
        try:
            for batch in reader:
                n = batch.num_rows
                # The invalid rows among this batch's lines: each one moves its end a line on.
                m = 0
                while taken + m < len(invalid) and invalid[taken + m][0] <= last + n + m:
                    m += 1
                odd = invalid[taken : taken + m]
                lines = np.arange(last + 1, last + n + m + 1, dtype=np.int64)
                if odd:
                    lines = lines[~np.isin(lines, [no for no, _ in odd])]
                table = _arrow_rows(pa.Table.from_batches([batch]), lines)
                if odd:
                    table = pa.concat_tables([table, _arrow_odd(odd, width)]).sort_by("row_no")
                taken, last = taken + m, last + n + m
                yield table
            if taken < len(invalid):
                yield _arrow_odd(invalid[taken:], width)
        finally:
            reader.close()

    return header, tables()


def _arrow_rows(table: Any, lines: Any) -> Any:
    """Rows of the header's width: numbered; "encoding" where a cell holds U+FFFD (as in
    `read_csv_columns`, the file itself may carry it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    hit = None
    for col in table.columns:
        found = pc.match_substring(col, REPLACEMENT)
        hit = found if hit is None else pc.or_(hit, found)
    none = pa.scalar(None, pa.string())
    problem = pc.if_else(hit, pa.scalar("encoding"), none)
    extra = pa.nulls(table.num_rows, pa.string())
    arrays = [pa.array(lines, pa.int64()), problem, extra, *table.columns]
    return pa.Table.from_arrays(arrays, names=["row_no", "problem", "extra", *table.column_names])


def _arrow_odd(rows: list[tuple[int, str]], width: int) -> Any:
    """Rows of another width, as `read_csv_columns` marks them: cut or padded to the header,
    the surplus cells as JSON."""
    import pyarrow as pa

    out: list[list[str | None]] = [[] for _ in range(width)]
    numbers, problems, extras = [], [], []
    for no, text in rows:
        cells = text.split(",")
        k = len(cells)
        numbers.append(no)
        problems.append("encoding" if REPLACEMENT in text else f"columns:{k}/{width}")
        extras.append(json.dumps(cells[width:], ensure_ascii=False) if k > width else None)
        padded: list[str | None] = [*cells[:width], *([None] * (width - k))]
        for i in range(width):
            out[i].append(padded[i])
    arrays = [
        pa.array(numbers, pa.int64()),
        pa.array(problems, pa.string()),
        pa.array(extras, pa.string()),
        *(pa.array(col, pa.string()) for col in out),
    ]
    names = ["row_no", "problem", "extra", *(f"c{i}" for i in range(width))]
    return pa.Table.from_arrays(arrays, names=names)
