"""The matcher on frames: the same sides as from `Person` lists, the same links when the golden
side is cut down to the persons sharing a blocking key (with the city's population given)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from tests.unit.test_matching import GOLDEN

from gridgov.resolve.matching import (
    SIDE_COLUMNS,
    Person,
    _table,
    fast_pinyin,
    match,
    match_tables,
    pinyin,
    side_frame,
)

RECORDS = [
    Person("r1", "张玮", "1949-12-31", "1", None, "13800000001"),
    Person("r2", "张伟", "1949-12-31", "1", "11010519491231002X"),
    Person(
        "r5",
        "张强",
        "1990-05-01",
        "1",
        None,
        None,
        "中山西路|88号|3幢|2单元|502室",
        "中山西路|88号",
    ),
    Person("r6", "", None, "9", "", ""),
]


def frame(people: list[Person]) -> pl.DataFrame:
    return pl.DataFrame(
        [tuple(getattr(p, c) for c in SIDE_COLUMNS) for p in people],
        schema=dict.fromkeys(SIDE_COLUMNS, pl.String()),
        orient="row",
    )


def test_side_frame_equals_the_person_table() -> None:
    side = side_frame(frame(RECORDS))
    assert side.to_dicts() == pl.from_arrow(_table(RECORDS)).to_dicts()  # type: ignore[union-attr]
    r6 = side.row(3, named=True)
    assert r6["name"] is None and r6["py"] is None and r6["sex"] is None and r6["cid"] is None


def test_cut_golden_side_gives_the_same_links() -> None:
    whole = match(GOLDEN, RECORDS)
    # g4 (李娜) shares no blocking key with any record: leaving her out changes nothing.
    cut = match_tables(
        side_frame(frame(GOLDEN[:3])),
        side_frame(frame(RECORDS)),
        population=len(GOLDEN) + len(RECORDS),
    )
    assert cut.to_golden == whole.to_golden
    assert sorted(cut.new_clusters) == sorted(whole.new_clusters)
    assert {k: v[0] for k, v in whole.to_golden.items()} == {"r1": "g1", "r2": "g1", "r5": "g2"}


def test_fast_pinyin_equals_pinyin() -> None:
    # Plain names, names holding a dictionary word (长江, 重庆), polyphonic surnames, other
    # scripts and punctuation (minority names), empty.
    for name in (
        "张伟",
        "张玮",
        "曾长江",
        "单重庆",
        "欧阳娜娜",
        "阿卜杜·热合曼",
        "李A",
        "",
        "乐乐",
    ):
        assert fast_pinyin(name) == pinyin(name), name


def test_sides_as_parquet_files_give_the_same_links(tmp_path: Path) -> None:
    """The persons step hands the matcher its sides as Parquet files (DuckDB reads them within
    its memory bound): the same links as the frames, also with the golden side in two files
    and with no golden side at all."""
    golden, records = side_frame(frame(GOLDEN)), side_frame(frame(RECORDS))
    (tmp_path / "golden").mkdir()
    golden.slice(0, 2).write_parquet(tmp_path / "golden" / "a.parquet")
    golden.slice(2).write_parquet(tmp_path / "golden" / "b.parquet")
    records.write_parquet(tmp_path / "records.parquet")
    population = len(GOLDEN) + len(RECORDS)
    for with_golden in (True, False):
        frames = match_tables(golden if with_golden else None, records, population=population)
        files = match_tables(
            str(tmp_path / "golden" / "*.parquet") if with_golden else None,
            str(tmp_path / "records.parquet"),
            population=population,
            memory_limit="256MB",
            spill_dir=tmp_path / "spill",
        )
        assert files.to_golden == frames.to_golden
        assert sorted(files.new_clusters) == sorted(frames.new_clusters)
        assert files.pairs == frames.pairs
    assert set(frames.to_golden) == set()  # no golden side: records only cluster together
    assert frames.new_clusters
