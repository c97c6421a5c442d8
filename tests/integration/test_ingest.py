"""Importing department files: row accounting, encodings, formats, idempotence, resume, reports."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from tests.conftest import BACKENDS, NOW

from gridgov.db.engine import make_engine, make_sessionmaker
from gridgov.db.migrate import upgrade
from gridgov.ingest.mapping import MappingError, shipped_mappings
from gridgov.ingest.models import DONE, IngestBatch, QuarantinedRow, SourceRecord
from gridgov.ingest.pipeline import ImportJob

HUKOU_HEADER = [
    "记录编号",
    "公民身份号码",
    "姓名",
    "性别",
    "出生日期",
    "民族",
    "户籍地址",
    "户号",
    "与户主关系",
    "变动日期",
]
# The public GB 11643 test vector and numbers built from it (check characters computed).
GOOD_ID = "11010519491231002X"
BAD_ID = "110105194912310021"  # wrong check character: loaded, but flagged

HUKOU_ROWS: list[list[str]] = [
    [
        "GA0001",
        GOOD_ID,
        "张 伟",
        "女",
        "19491231",
        "汉族",
        "浙江省宁波市海曙区中山西路８８号",
        "H01",
        "户主",
        "2020-01-02",
    ],
    [
        "GA0002",
        BAD_ID,
        "李娜",
        "女",
        "1949-12-31",
        "汉",
        "宁波市鄞州区天童南路1号3幢2单元501室",
        "H02",
        "户主",
        "20200103",
    ],
    [
        "GA0003",
        GOOD_ID,
        "",
        "男",
        "19491231",
        "汉族",
        "宁波市江北区人民路2号",
        "H03",
        "户主",
        "2020-01-04",
    ],
    [
        "GA0004",
        GOOD_ID,
        "王五",
        "男",
        "1949/12/31",
        "汉族",
        "宁波市江北区人民路3号",
        "H04",
        "户主",
        "2020-01-05",
    ],
    [
        "GA0005",
        GOOD_ID,
        "赵六",
        "M",
        "19491231",
        "汉族",
        "宁波市江北区人民路4号",
        "H05",
        "户主",
        "2020-01-06",
    ],
    ["GA0006", GOOD_ID, "钱七", "男", "19491231"],
    [
        "GA0007",
        GOOD_ID,
        "孙八",
        "男",
        "19491231",
        "汉族",
        "宁波市北仑区新碶街道1号",
        "H07",
        "子",
        "2020-01-08",
    ],
]
# Expected (file rows: header = 1, a blank line at 5): rows 2, 3, 9 load; 4 (no name), 6 (date),
# 7 (sex "M"), 8 (too few columns) are quarantined.
EXPECT_LOADED, EXPECT_QUARANTINED = 3, 4


def write_csv(
    path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i, row in enumerate(rows):
            w.writerow(row)
            if i == 2:
                fh.write("\r\n")  # a blank line is not a record
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest, empty_db_url) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    eng = make_engine(empty_db_url(request.param))
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Imports commit for real (they are jobs); each test starts from empty import tables."""
    made = make_sessionmaker(engine)
    yield made
    with made() as s:
        for model in (SourceRecord, QuarantinedRow, IngestBatch):
            s.query(model).delete()
        s.commit()


def job(factory: sessionmaker[Session], path: Path, source: str, work: Path, **kw) -> ImportJob:  # type: ignore[no-untyped-def]
    return ImportJob(
        factory,
        path,
        source=source,
        mappings=shipped_mappings(),
        work_dir=work,
        now=lambda: NOW,
        **kw,
    )


def counts(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as s:
        records = s.scalar(select(func.count()).select_from(SourceRecord)) or 0
        bad = s.scalar(select(func.count()).select_from(QuarantinedRow)) or 0
    return records, bad


def test_rows_are_loaded_or_quarantined_with_reasons_and_counts_add_up(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS)
    result = job(factory, path, "GA", tmp_path / "work").run()
    assert result.status == DONE
    assert (result.read, result.loaded, result.quarantined) == (
        7,
        EXPECT_LOADED,
        EXPECT_QUARANTINED,
    )
    assert result.loaded + result.quarantined == result.read
    assert counts(factory) == (EXPECT_LOADED, EXPECT_QUARANTINED)
    with factory() as s:
        bad = {q.row_no: q for q in s.scalars(select(QuarantinedRow))}
        recs = {r.record_key: r for r in s.scalars(select(SourceRecord))}
    # The file's own row numbers as a spreadsheet shows them: header = 1, and the blank line
    # after row 4 is row 5 (not a record), so the rows after it are 6, 7, 8.
    assert sorted(bad) == [4, 6, 7, 8]
    assert bad[4].reasons[0]["field"] == "name" and bad[4].reasons[0]["code"] == "required"
    assert bad[6].reasons[0]["code"] == "date" and "1949/12/31" in bad[6].reasons[0]["msg"]
    assert bad[7].reasons[0]["code"] == "code" and bad[7].reasons[0]["column"] == "性别"
    assert bad[8].reasons[0]["code"] == "columns"
    assert bad[7].raw["姓名"] == "赵六"  # kept as received
    # Standardised values, and the invalid ID kept as sent with a flag.
    first = recs["GA0001"].values
    assert first["name"] == "张伟" and first["sex"] == "2" and first["birth_date"] == "1949-12-31"
    assert first["registered_address"].endswith("88号")
    assert recs["GA0002"].values["citizen_id"] == BAD_ID
    assert any(f.startswith("citizen_id:") for f in recs["GA0002"].flags)
    assert recs["GA0002"].values["ethnicity"] == "01"
    report = Path(result.report_path)
    lines = list(csv.reader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert [row[0] for row in lines[3:]] == ["4", "6", "7", "8"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_every_encoding_reads_the_same_values(factory, tmp_path, encoding) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS, encoding)
    result = job(factory, path, "GA", tmp_path / "work").run()
    # GB18030 encodes GBK's characters with GBK's bytes: such a file is reported as GBK.
    assert result.encoding == {"gb18030": "gbk"}.get(encoding, encoding)
    assert (result.loaded, result.quarantined) == (EXPECT_LOADED, EXPECT_QUARANTINED)
    with factory() as s:
        names = sorted(s.scalars(select(SourceRecord.values["name"].as_string())))
    assert names == ["孙八", "张伟", "李娜"]


def test_gb18030_only_characters(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = [list(HUKOU_ROWS[0])]
    rows[0][2] = "王䶮"  # U+4DAE: in GB18030, not in GBK
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, rows, "gb18030")
    result = job(factory, path, "GA", tmp_path / "work").run()
    assert (result.encoding, result.loaded) == ("gb18030", 1)
    with factory() as s:
        assert s.scalars(select(SourceRecord.values["name"].as_string())).one() == "王䶮"


def test_undecodable_bytes_quarantine_the_row_not_the_file(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS[:2])
    data = (
        path.read_bytes()
        + b"GA0009,11010519491231002X,\xff\xfe\x80,1,19491231,01,x,H,s,20200101\r\n"
    )
    path.write_bytes(data)
    result = job(factory, path, "GA", tmp_path / "work").run()
    assert (result.read, result.loaded, result.quarantined) == (3, 2, 1)
    with factory() as s:
        q = s.scalars(select(QuarantinedRow)).one()
    assert q.reasons[0]["code"] == "encoding"


def test_reimporting_the_same_file_changes_nothing(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS)
    first = job(factory, path, "GA", tmp_path / "work").run()
    before = counts(factory)
    again = job(factory, path, "GA", tmp_path / "work").run()
    assert again.already_imported and again.batch_id == first.batch_id
    assert counts(factory) == before
    # The same rows in another file (another encoding): a new batch, no new records.
    other = write_csv(tmp_path / "ga_hukou_resend.csv", HUKOU_HEADER, HUKOU_ROWS, "gbk")
    resent = job(factory, other, "GA", tmp_path / "work").run()
    assert resent.batch_id != first.batch_id
    assert (resent.loaded, resent.unchanged) == (EXPECT_LOADED, EXPECT_LOADED)
    assert counts(factory)[0] == before[0]


def test_an_import_killed_halfway_resumes_without_duplicates_or_gaps(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = [
        [
            f"GA{i:04d}",
            GOOD_ID,
            f"居民{i}",
            "男",
            "19491231",
            "汉族",
            f"宁波市江北区人民路{i}号",
            f"H{i}",
            "户主",
            "2020-01-02",
        ]
        for i in range(1, 41)
    ]
    rows[17][3] = "M"  # one bad row in the middle
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, rows)

    class Killed(Exception):
        pass

    def die_after_two(done: int) -> None:
        if done >= 14:
            raise Killed

    with pytest.raises(Killed):
        job(factory, path, "GA", tmp_path / "work", chunk=7, after_chunk=die_after_two).run()
    partial = counts(factory)
    assert 0 < sum(partial) < 40
    result = job(factory, path, "GA", tmp_path / "work", chunk=7).run()
    assert (result.read, result.loaded, result.quarantined) == (40, 39, 1)
    assert counts(factory) == (39, 1)
    with factory() as s:
        keys = s.scalars(select(SourceRecord.record_key)).all()
        batches = s.scalars(select(IngestBatch)).all()
    assert len(keys) == len(set(keys)) == 39
    assert len(batches) == 1 and batches[0].rows_done == 40


def test_worker_processes_give_the_same_result(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gridgov.ingest.pipeline import make_pool

    rows = [list(r) for _ in range(3) for r in HUKOU_ROWS]
    for i, r in enumerate(rows):
        r[0] = f"GA{i:04d}"
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, rows)
    pool = make_pool(2)
    assert pool is not None
    try:
        result = job(factory, path, "GA", tmp_path / "work", chunk=4, pool=pool).run()
    finally:
        pool.shutdown()
    assert (result.read, result.loaded, result.quarantined) == (21, 9, 12)
    with factory() as s:
        keys = s.scalars(select(SourceRecord.record_key).order_by(SourceRecord.row_no)).all()
        batch = s.scalars(select(IngestBatch)).one()
    assert len(keys) == 9 and batch.rows_done == 21


def test_xlsx_and_json_lines(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import xlsxwriter

    xlsx = tmp_path / "mz_assistance.xlsx"
    wb = xlsxwriter.Workbook(str(xlsx))
    ws = wb.add_worksheet()
    header = [
        "对象编号",
        "身份证号码",
        "姓名",
        "救助类型",
        "居住地址",
        "联系电话",
        "认定日期",
        "终止日期",
    ]
    ws.write_row(0, 0, header)
    ws.write_row(
        1, 0, ["MZ1", GOOD_ID, "张伟", "低保", "宁波市海曙区1号", "13805740001", "2021-03-01", ""]
    )
    ws.write_row(
        2, 0, ["MZ2", GOOD_ID, "张伟", "救济", "宁波市海曙区1号", "13805740001", "2021-03-01", ""]
    )
    # A value beyond the last header cell (a shifted row), and formatting that makes read-only
    # sheets report empty cells after the header.
    shifted_row = ["MZ3", GOOD_ID, "张伟", "低保", "宁波市海曙区1号", "13805740001", "2021-03-01"]
    ws.write_row(3, 0, [*shifted_row, "", "多余"])
    ws.write_blank(0, 12, None, wb.add_format({"bold": True}))
    wb.close()
    result = job(factory, xlsx, "MZ", tmp_path / "work").run()
    assert (result.file_format, result.read, result.loaded, result.quarantined) == ("xlsx", 3, 1, 2)
    with factory() as s:
        rec = s.scalars(select(SourceRecord).where(SourceRecord.source == "MZ")).one()
        shifted = s.scalars(select(QuarantinedRow).where(QuarantinedRow.row_no == 4)).one()
    assert rec.values["tag_class"] == "service" and rec.values["subtype"] == "low_income"
    assert shifted.reasons[0]["code"] == "columns"

    jsonl = tmp_path / "wg_checks.jsonl"
    doc = {
        "核查编号": "WG1",
        "网格编码": "330203001001001",
        "身份证号": GOOD_ID,
        "姓名": "张伟",
        "实际居住地址": "宁波市海曙区1号",
        "联系电话": "+86 138 0574 0001",
        "居住状态": "在住",
        "房屋用途": "自住",
        "核查时间": "2026-11-01 10:00:00",
        "核查人": "gw_1",
    }
    jsonl.write_text(json.dumps(doc, ensure_ascii=False) + "\n{not json\n", encoding="utf-8")
    result = job(factory, jsonl, "WG", tmp_path / "work").run()
    assert (result.file_format, result.read, result.loaded, result.quarantined) == (
        "jsonl",
        2,
        1,
        1,
    )
    with factory() as s:
        rec = s.scalars(select(SourceRecord).where(SourceRecord.source == "WG")).one()
        q = s.scalars(select(QuarantinedRow)).all()
    assert rec.values["phone"] == "13805740001" and rec.grid_code == "330203001001001"
    assert rec.as_of is not None
    assert {r.row_no for r in q} >= {2}


def test_files_must_belong_to_the_source(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_csv(tmp_path / "unknown_export.csv", HUKOU_HEADER, HUKOU_ROWS)
    with pytest.raises(MappingError, match="ga_hukou"):
        job(factory, path, "GA", tmp_path / "work")
    with pytest.raises(MappingError, match="未知的数据来源部门"):
        job(factory, path, "XX", tmp_path / "work")


def test_files_imported_at_once_each_count_their_own(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gridgov.ingest.pipeline import import_files

    jobs = []
    for n in range(4):
        rows = [list(r) for _ in range(5) for r in HUKOU_ROWS]
        for i, r in enumerate(rows):
            r[0] = f"F{n}R{i:04d}"
        path = write_csv(tmp_path / f"ga_hukou_part{n:03d}.csv", HUKOU_HEADER, rows)
        jobs.append(job(factory, path, "GA", tmp_path / "work", chunk=3))
    results = import_files(jobs, 3)
    assert [r.file_name for r in results] == [f"ga_hukou_part{n:03d}.csv" for n in range(4)]
    assert {(r.read, r.loaded, r.quarantined, r.status) for r in results} == {(35, 15, 20, "done")}
    assert counts(factory) == (60, 80)
    assert len({r.batch_id for r in results}) == 4


def test_staging_holds_no_lock_while_it_reads(factory, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A file being staged must not keep another file's import from writing (on SQLite the
    write lock is per database): the second import finishes while the first still reads."""
    import threading

    from gridgov.ingest import pipeline

    other_done = threading.Event()
    reading = threading.Event()
    real = pipeline.read_csv_columns

    def slow(path, **kw):  # type: ignore[no-untyped-def]
        header, chunks = real(path, **kw)
        if path.name != "ga_hukou_part001.csv":
            return header, chunks

        def wait_then() -> object:
            reading.set()
            assert other_done.wait(60), "the other import was blocked by this one's staging"
            yield from chunks

        return header, wait_then()

    monkeypatch.setattr(pipeline, "read_csv_columns", slow)
    first = write_csv(tmp_path / "ga_hukou_part001.csv", HUKOU_HEADER, HUKOU_ROWS)
    rows = [list(r) for r in HUKOU_ROWS]
    for i, r in enumerate(rows):
        r[0] = f"B{i}"
    second = write_csv(tmp_path / "ga_hukou_part002.csv", HUKOU_HEADER, rows)
    results: list[object] = []
    t = threading.Thread(
        target=lambda: results.append(job(factory, first, "GA", tmp_path / "w").run())
    )
    t.start()
    assert reading.wait(60)
    done = job(factory, second, "GA", tmp_path / "w").run()
    other_done.set()
    t.join(60)
    assert done.status == "done" and done.loaded == EXPECT_LOADED
    assert results and results[0].status == "done"  # type: ignore[attr-defined]
    assert counts(factory) == (2 * EXPECT_LOADED, 2 * EXPECT_QUARANTINED)


def test_rows_written_in_slices_count_once(factory, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """copy_frame sends a chunk in slices: every row stored once, new rows counted exactly."""
    from gridgov.db import bulk

    monkeypatch.setattr(bulk, "COPY_SLICE", 2)
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS)
    first = job(factory, path, "GA", tmp_path / "work").run()
    assert (first.loaded, first.unchanged, first.quarantined) == (
        EXPECT_LOADED,
        0,
        EXPECT_QUARANTINED,
    )
    again = write_csv(tmp_path / "ga_hukou_copy.csv", HUKOU_HEADER, [*HUKOU_ROWS, HUKOU_ROWS[0]])
    second = job(factory, again, "GA", tmp_path / "work").run()
    assert (second.loaded, second.unchanged) == (EXPECT_LOADED + 1, EXPECT_LOADED + 1)
    assert counts(factory)[0] == EXPECT_LOADED


def test_a_file_partly_seen_before_stores_each_new_row_once(factory, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Chunks are copied straight in until one collides with a stored row (PostgreSQL): that
    chunk is rolled back and written through the collision check, and so is the rest; the new
    rows before and after it are all stored, each once, the seen ones counted unchanged."""
    rows = [
        [f"GA{i:04d}", GOOD_ID, f"居民{i}", "男", "19491231", "汉族", f"宁波市江北区人民路{i}号",
         f"H{i}", "户主", "2020-01-02"]
        for i in range(1, 13)
    ]  # fmt: skip
    seen = write_csv(tmp_path / "ga_hukou_seen.csv", HUKOU_HEADER, rows[4:8])
    assert job(factory, seen, "GA", tmp_path / "work").run().loaded == 4
    from gridgov.db import bulk

    direct: list[int | None] = []
    copy_direct = bulk._copy_direct

    def spy(*args, **kw):  # type: ignore[no-untyped-def]
        direct.append(copy_direct(*args, **kw))
        return direct[-1]

    monkeypatch.setattr(bulk, "_copy_direct", spy)
    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, rows)
    result = job(factory, path, "GA", tmp_path / "work", chunk=3).run()
    assert (result.read, result.loaded, result.unchanged, result.quarantined) == (12, 12, 4, 0)
    # PostgreSQL: the first chunk went straight in, the second collided (rows 5, 6), the rest
    # were checked; SQLite always checks.
    with factory() as s:
        is_pg = s.connection().dialect.name == "postgresql"
    assert direct == ([3, None] if is_pg else [])
    with factory() as s:
        keys = s.scalars(select(SourceRecord.record_key)).all()
    assert sorted(keys) == [f"GA{i:04d}" for i in range(1, 13)]


def test_a_finished_import_leaves_the_planner_statistics_current(factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: the batch's tables are analyzed when it is done (a city-sized table the
    planner believes empty is read by a sort on disk instead of by its key); SQLite: nothing."""
    from sqlalchemy import text

    path = write_csv(tmp_path / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS)
    with factory() as s:
        dialect = s.get_bind().dialect.name
    assert job(factory, path, "GA", tmp_path / "work").run().status == DONE
    with factory() as s:
        if dialect == "postgresql":
            tuples = s.scalar(
                text("SELECT reltuples FROM pg_class WHERE relname = 'source_records'")
            )
            assert tuples == EXPECT_LOADED
        else:
            assert counts(factory) == (EXPECT_LOADED, EXPECT_QUARANTINED)
