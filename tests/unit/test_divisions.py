"""Division code lists: the shipped list, generic loading, and errors that name row and field."""

from __future__ import annotations

import csv
import io

import pytest

from gridgov.geo.divisions import (
    DivisionError,
    level_of_code,
    load_divisions,
    parse_divisions,
    scope_prefix,
)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


GOOD = """code,name,level,parent_code
330100000000,杭州市,1,330000000000
330102000000,上城区,2,330100000000
330102001000,清波街道,3,330102000000
330102001001,劳动路社区,4,330102001000
"""


def test_shipped_ningbo_list() -> None:
    divs = load_divisions()
    by_level = {lv: [d for d in divs if d.level == lv] for lv in (1, 2, 3, 4)}
    assert [len(by_level[lv]) for lv in (1, 2, 3, 4)] == [1, 10, 162, 3042]
    assert by_level[1][0].name == "宁波市"
    assert sum(d.is_urban for d in by_level[4]) == 861


def test_another_city_loads_the_same_way(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hz.csv"
    path.write_text(GOOD, encoding="utf-8-sig")
    divs = load_divisions(path)
    assert [d.code for d in divs] == [
        "330100000000",
        "330102000000",
        "330102001000",
        "330102001001",
    ]
    assert divs[0].parent_code == "330000000000"


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (GOOD.replace("330102001001,劳动路社区,4", "330102001001,劳动路社区,x"), "第 5 行 level"),
        (GOOD.replace("劳动路社区", ""), "第 5 行 name"),
        (GOOD.replace("330102001001,", "33010200100,"), "第 5 行 code"),
        (GOOD.replace(",330102001000\n", ",330102009000\n"), "第 5 行 parent_code"),
        (GOOD + "330102001001,重复社区,4,330102001000\n", "与第 5 行重复"),
        (GOOD.replace("330102001001,劳动路社区,4", "330102001001,劳动路社区,3"), "第 5 行"),
    ],
)
def test_errors_name_row_and_field(bad: str, expected: str) -> None:
    with pytest.raises(DivisionError, match=expected):
        parse_divisions(_rows(bad), source="hz.csv")


def test_codes_and_prefixes() -> None:
    assert level_of_code("330200000000") == 1
    assert level_of_code("330203000000") == 2
    assert level_of_code("330203001000") == 3
    assert level_of_code("330203001001") == 4
    assert level_of_code("330203001001002") == 5
    assert scope_prefix("330203001000", 3) == "330203001"
    with pytest.raises(DivisionError):
        level_of_code("12345")
