"""The vectorised standardiser stores exactly what the row-by-row rules store, row for row."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.helpers import demo_city

from gridgov.demo.population import generate_population
from gridgov.ingest import reader as reader_module
from gridgov.ingest.columnar import FrameStandardiser
from gridgov.ingest.mapping import Dataset, shipped_mappings
from gridgov.ingest.pipeline import staged_schema
from gridgov.ingest.reader import (
    ColumnChunk,
    arrow_csv_tables,
    columns_of,
    detect_encoding,
    file_format,
    read_csv_columns,
    read_file,
)
from gridgov.resolve.identifiers import citizen_id_check_char

MAPPINGS = shipped_mappings()


def frame_of(header: list[str], chunk: ColumnChunk) -> pl.DataFrame:
    schema = staged_schema(len(header))
    arrays = [
        pa.array(chunk.row_no, pa.int64()),
        pa.array(chunk.problem, pa.string()),
        pa.array(chunk.extra, pa.string()),
        *(pa.array(col, pa.string()) for col in chunk.columns),
    ]
    out = pl.from_arrow(pa.Table.from_arrays(arrays, schema=schema))
    assert isinstance(out, pl.DataFrame)
    return out


def assert_same(dataset: Dataset, header: list[str], frame: pl.DataFrame) -> tuple[int, int]:
    """Both paths on one chunk; returns (rows, rows that took the slow path)."""
    fs = FrameStandardiser(dataset, header, MAPPINGS.codes)
    loaded, rejected = fs.standardise(frame)
    outcomes = [fs.rows(r) for r in fs.raw_rows(frame)]
    good = [o for o in outcomes if o.ok]
    assert loaded["row_no"].to_list() == [o.row_no for o in good]
    assert loaded["record_key"].to_list() == [o.record_key for o in good]
    assert loaded["values"].to_list() == [o.values_json for o in good]
    assert loaded["content_hash"].to_list() == [o.hash for o in good]
    assert loaded["flags"].to_list() == [json.dumps(o.flags, ensure_ascii=False) for o in good]
    assert loaded["as_of"].to_list() == [o.as_of for o in good]
    grids = [o.values.get("grid_code") if dataset.kind == "check" else None for o in good]
    assert loaded["grid_code"].to_list() == grids
    bad = [o for o in outcomes if not o.ok]
    assert [(o.row_no, o.reasons, o.raw) for o in rejected] == [
        (o.row_no, o.reasons, o.raw) for o in bad
    ]
    return frame.height, len(fs.split(frame).slow)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("columnar")
    generate_population(out, scale=0.0005, seed=7, city=demo_city())
    return out


def test_every_generated_file_row_for_row(files: Path) -> None:
    """The synthetic city's noisy files (typos, legacy IDs, bad dates and codes, broken rows,
    GBK, XLSX, JSON Lines): identical values, hashes, flags and reasons on both paths."""
    total = slow = 0
    seen = set()
    for source, paths in MAPPINGS.files_in(files).items():
        for path in paths:
            dataset = MAPPINGS.dataset_for(source, path.name)
            fmt = file_format(path)
            encoding = "" if fmt == "xlsx" else detect_encoding(path)
            if fmt == "csv":
                header, chunks = read_csv_columns(path, encoding=encoding, size=5_000)
            else:
                raw = list(read_file(path, encoding=encoding, size=5_000))
                header = raw[0].header
                chunks = iter([columns_of(c.rows, len(header)) for c in raw])
            for chunk in chunks:
                n, s = assert_same(dataset, header, frame_of(header, chunk))
                total, slow = total + n, slow + s
            seen.add(dataset.kind)
    assert seen == {"person", "org", "room", "tenancy", "tag", "address", "check"}
    assert total > 5_000
    assert slow < total * 0.05  # the point of it: nearly every row takes the vectorised path


def _id(county: str, y: int, m: int, d: int, seq: int) -> str:
    body = f"{county}{y:04d}{m:02d}{d:02d}{seq:03d}"
    return body + citizen_id_check_char(body)


ids = st.one_of(
    st.builds(
        _id,
        st.sampled_from(["330203", "330204", "110105", "330000", "810000", "999999"]),
        st.integers(1880, 2030),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 999),
    ),
    st.builds(
        lambda s: s[:6] + s[8:17],
        st.builds(
            _id,
            st.just("330203"),
            st.integers(1900, 1999),
            st.integers(1, 12),
            st.integers(1, 31),
            st.integers(0, 999),
        ),
    ),  # a legacy 15-digit number
    st.text(alphabet="0123456789Xx ", min_size=0, max_size=19),
)
texts = st.text(
    alphabet=st.sampled_from(
        list('宁波海曙区中山路号號幢栋单元室一二三十第 　\t１２ABab0123-·.•"\\\x01')
    ),
    max_size=24,
)
dates = st.one_of(
    st.builds(
        lambda y, m, d, sep: f"{y:04d}{sep}{m:02d}{sep}{d:02d}",
        st.integers(0, 2100),
        st.integers(0, 13),
        st.integers(0, 32),
        st.sampled_from(["", "-", "/", "."]),
    ),
    st.text(alphabet="0123456789-/ :年月日", max_size=19),
)
cells = st.one_of(st.none(), st.just(""), texts)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            ids, texts, st.sampled_from(["男", "女", "1", "未知", " 男 ", None]), dates, dates,
            texts, texts, st.one_of(st.none(), st.from_regex(r"1[0-9]{10}", fullmatch=True), texts),
            st.one_of(st.none(), st.just("HK1"), texts),
        ),
        min_size=1,
        max_size=40,
    )
)  # fmt: skip
@example(rows=[("", "", "男", "", "00010101", "", "", None, None)])  # a year-1 record date
def test_random_person_rows(rows: list[tuple[str | None, ...]]) -> None:
    dataset = MAPPINGS.dataset_for("GA", "ga_hukou.csv")
    header = [c.name for c in dataset.columns]
    # Map the generated values onto the dataset's columns by field.
    by_field = {
        "citizen_id": 0, "name": 1, "sex": 2, "birth_date": 3, "as_of": 4,
        "registered_address": 5, "relation_to_head": 6, "household_no": 7, "record_no": 8,
    }  # fmt: skip
    columns = [
        [r[by_field[c.field]] if c.field in by_field else r[6] for r in rows]
        for c in dataset.columns
    ]
    chunk = ColumnChunk(
        row_no=list(range(2, len(rows) + 2)),
        problem=[None] * len(rows),
        extra=[None] * len(rows),
        columns=columns,
    )
    assert_same(dataset, header, frame_of(header, chunk))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            cells,
            st.one_of(st.none(), st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{1,8})?", fullmatch=True), texts),
            st.sampled_from(["2023-01-05 08:00:00", "2023-01-05", "2023年01月05日", "2023/1/5", None]),
        ),
        min_size=1,
        max_size=30,
    )
)  # fmt: skip
def test_random_numbers_and_times(rows: list[tuple[str | None, ...]]) -> None:
    for source, file_name, number_field in (("ZR", "zr_addresses.csv", "lon"),
                                            ("WG", "wg_checks.jsonl", None)):  # fmt: skip
        dataset = MAPPINGS.dataset_for(source, file_name)
        header = [c.name for c in dataset.columns]
        columns = []
        for i, c in enumerate(dataset.columns):
            if c.field == number_field:
                columns.append([r[1] for r in rows])
            elif c.field == "as_of":
                columns.append([r[2] for r in rows])
            elif c.field == "record_no":
                columns.append([f"K{j}" for j in range(len(rows))])
            else:
                columns.append([r[0] if i % 2 else r[1] for r in rows])
        chunk = ColumnChunk(
            row_no=list(range(2, len(rows) + 2)),
            problem=[None] * len(rows),
            extra=[None] * len(rows),
            columns=columns,
        )
        assert_same(dataset, header, frame_of(header, chunk))


def _all_chunks(chunks: object) -> ColumnChunk:
    merged = ColumnChunk([], [], [], [])
    for c in chunks:  # type: ignore[attr-defined]
        merged.row_no += c.row_no
        merged.problem += c.problem
        merged.extra += c.extra
        merged.columns = [
            list(a) + list(b)
            for a, b in zip(merged.columns or [[]] * len(c.columns), c.columns, strict=True)
        ]
    return merged


def test_csv_by_columns_reads_what_the_row_reader_reads(files: Path, tmp_path: Path) -> None:
    """Row numbers, blank lines, short and long rows, undecodable bytes: as `read_file`."""
    odd = tmp_path / "odd.csv"
    odd.write_bytes(
        'a,b,c\n1,2,3\n\n4,5\n6,7,8,9,10\n"x\ny",\ufffd,z\n11,12,13\n,,\n'.encode()
        + b"\xff\xfe,1,2\n"
    )
    paths = [odd, *sorted(files.glob("*.csv"))]
    for path in paths:
        encoding = detect_encoding(path)
        header, chunks = read_csv_columns(path, encoding=encoding, size=3)
        by_rows = list(read_file(path, encoding=encoding, size=7))
        expected = columns_of([r for c in by_rows for r in c.rows], len(header))
        got = _all_chunks(chunks)
        assert header == by_rows[0].header
        assert got.row_no == expected.row_no, path.name
        assert got.problem == expected.problem, path.name
        assert got.extra == expected.extra, path.name
        assert [list(c) for c in got.columns] == [list(c) for c in expected.columns], path.name
    # The odd file's rows, as the reader numbers and marks them.
    header, chunks = read_csv_columns(odd, encoding=detect_encoding(odd), size=100)
    got = _all_chunks(chunks)
    assert got.row_no == [2, 4, 5, 6, 7, 8, 9]  # records, not physical lines (as read_file)
    assert got.problem == [None, "columns:2/3", "columns:5/3", "encoding", None, None, "encoding"]
    assert got.extra[2] == '["9", "10"]'


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=2, max_size=2),
    st.text(alphabet="0123456789A", min_size=6, max_size=6),
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=8, max_size=8),
    st.booleans(),
    st.booleans(),
    st.sampled_from("0123456789ABXY I"),
)
def test_credit_codes_as_the_full_check(
    head: str, admin: str, org: str, org_right: bool, right: bool, wrong: str
) -> None:
    from gridgov.ingest.columnar import _credit_code_valid
    from gridgov.resolve.identifiers import (
        check_credit_code,
        credit_code_check_char,
        org_code_check_char,
    )

    body = head + admin + org + (org_code_check_char(org) if org_right else wrong)
    try:
        text = body + (credit_code_check_char(body) if right else wrong)
    except ValueError:  # a character outside the credit-code set
        text = body + wrong
    full = check_credit_code(text)
    fast = pl.select(_credit_code_valid(pl.lit(text)).fill_null(False)).item()
    assert fast == (full.valid and full.normalized == text)


@settings(max_examples=400, deadline=None)
@given(ids)
def test_citizen_ids_as_the_full_check(text: str) -> None:
    from gridgov.ingest.columnar import _citizen_ids
    from gridgov.ingest.standardise import fast_valid_citizen_id
    from gridgov.resolve.identifiers import check_citizen_id

    good, check = _citizen_ids(pl.Series([text, None], dtype=pl.String()))
    full = check_citizen_id(text)
    if len(text) == 15 and text.isdigit():
        expected = full.valid
        if expected:
            assert full.normalized == text[:6] + "19" + text[6:] + check[0]
    else:
        expected = fast_valid_citizen_id(text)
    assert good.to_list() == [expected, False]


def _arrow_chunk(path: Path) -> ColumnChunk:
    """All of `arrow_csv_tables`' tables of a file as one chunk of Python lists."""
    got = arrow_csv_tables(path, encoding=detect_encoding(path))
    assert got is not None, path.name
    _header, tables = got
    table = pa.concat_tables(list(tables))
    names = table.column_names
    assert names[:3] == ["row_no", "problem", "extra"]
    return ColumnChunk(
        table["row_no"].to_pylist(),
        table["problem"].to_pylist(),
        table["extra"].to_pylist(),
        [table[n].to_pylist() for n in names[3:]],
    )


PLAIN = (
    "a,b,c\n1,2,3\n4,5\n6,7,8,9,10\n\ufffd,x,y\n11,12,13\n,,\n \n7,\ufffd,8,9\n"
    "14,15,16\r\n17,18,19\r20,21,22\n23\n\n\r\n\n"
)


@pytest.mark.parametrize("block", [64, 1 << 20])
def test_plain_csv_by_arrow_reads_what_the_python_reader_reads(
    files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Arrow's reader on quote-free files: the same rows, row numbers, problems and surplus
    cells as `read_csv_columns`, in any encoding, whatever the batch size (64 bytes: the rows of
    another width fall on batch edges; a line must fit in a block)."""
    monkeypatch.setattr(reader_module, "ARROW_BLOCK", block)
    crafted = []
    for enc in ("utf-8", "utf-8-sig", "gb18030"):
        path = tmp_path / f"plain_{enc}.csv"
        path.write_bytes(PLAIN.encode(enc))
        crafted.append(path)
    gbk = tmp_path / "plain_gbk.csv"
    gbk.write_bytes(PLAIN.replace("\ufffd", "坏").replace("a,b,c", "姓名,性别,住址").encode("gbk"))
    crafted.append(gbk)
    generated = [p for p in sorted(files.glob("*.csv")) if b'"' not in p.read_bytes()]
    assert generated  # the synthetic departments' CSV files have no quotes
    if block < 1024:
        generated = []  # their headers are longer than a block
    for path in [*crafted, *generated]:
        encoding = detect_encoding(path)
        _header, chunks = read_csv_columns(path, encoding=encoding, size=3)
        expected = _all_chunks(chunks)
        got = _arrow_chunk(path)
        assert got.row_no == expected.row_no, path.name
        assert got.problem == expected.problem, path.name
        assert got.extra == expected.extra, path.name
        assert got.columns == [list(c) for c in expected.columns], path.name
    got = _arrow_chunk(crafted[0])
    assert got.row_no == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert got.problem == [None, "columns:2/3", "columns:5/3", "encoding", None, None,
                           "columns:1/3", "encoding", None, None, None, "columns:1/3"]  # fmt: skip
    assert got.extra[2] == '["9", "10"]'
    assert got.columns[2][1] is None  # a short row padded, as the Python reader pads it


@pytest.mark.parametrize(
    "content",
    [
        'a,b,c\n"1,2",3,4\n',  # a quoted comma
        "a,b,c\n1,2,3\n\n4,5,6\n",  # a blank line inside
        "a,b,c\n1,2,3\r\n\r\n4,5,6\n",
        "a,b,c\n1,2,3\r\r4,5,6\n",
        "\na,b,c\n1,2,3\n",  # no header on line 1
        "a\n1\n\n2\n",  # one column: an empty cell is a blank line to Arrow
    ],
)
def test_other_csv_files_are_left_to_the_python_reader(tmp_path: Path, content: str) -> None:
    path = tmp_path / "other.csv"
    path.write_bytes(content.encode())
    try:
        encoding = detect_encoding(path)
        assert arrow_csv_tables(path, encoding=encoding) is None
    except reader_module.ReadError:
        pass  # the Python reader refuses it too (no header)


def test_undecodable_bytes_are_left_to_the_python_reader(tmp_path: Path) -> None:
    path = tmp_path / "damaged.csv"
    path.write_bytes(b"a,b\n1,2\n" + b"\xff\xfe\x80,3\n" + "张,三\n".encode("gbk"))
    encoding = detect_encoding(path)
    assert encoding.endswith("-replace")
    assert arrow_csv_tables(path, encoding=encoding) is None
