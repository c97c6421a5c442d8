"""Probabilistic person matching: homophones, ID typos, twins, namesakes, unnamed children."""

from __future__ import annotations

from gridgov.resolve.matching import Person, match, pinyin

ROOM = "中山西路|88号|3幢|2单元|501室"
TWIN_ROOM = "中山西路|88号|3幢|2单元|502室"
DOOR = "中山西路|88号"
GOLDEN = [
    Person("g1", "张伟", "1949-12-31", "1", "11010519491231001X", "13800000001", ROOM, DOOR),
    Person("g2", "张强", "1990-05-01", "1", "330203199005010011", None, TWIN_ROOM, DOOR),
    Person("g3", "张刚", "1990-05-01", "1", "330203199005010038", None, TWIN_ROOM, DOOR),
    Person("g4", "李娜", "1985-03-03", "2", "330203198503030024", "13900000002", None, None),
]


def test_pinyin_of_homophones_is_equal() -> None:
    assert pinyin("张伟") == pinyin("张玮") == "zhangwei"
    assert pinyin("") == ""


def test_records_join_the_right_golden_person() -> None:
    records = [
        Person("r1", "张玮", "1949-12-31", "1", None, "13800000001"),  # homophone, same phone
        Person("r2", "张伟", "1949-12-31", "1", "11010519491231002X"),  # ID with a wrong digit
        Person("r5", "张强", "1990-05-01", "1", None, None, TWIN_ROOM, DOOR),  # a twin, by name
        Person("r6", "李娜", "1985-07-07", "2"),  # a namesake born months later
        Person("r7", "王芳", "1949-12-31", "1", "11010519491231002X"),  # someone else's ID typo
    ]
    found = match(GOLDEN, records)
    assert {k: v[0] for k, v in found.to_golden.items()} == {"r1": "g1", "r2": "g1", "r5": "g2"}
    assert all(p > 0.99 for _, p in found.to_golden.values())
    assert sorted(found.new_clusters) == [["r6"], ["r7"]]


def test_records_without_golden_group_but_twins_stay_apart() -> None:
    records = [
        Person("c1", "张小明", "2015-06-01", "1", None, None, ROOM, DOOR),
        Person("c2", "张小明", "2015-06-01", "1", None, None, ROOM, DOOR),  # the same child
        Person("t1", "王小红", "2016-02-02", "2", None, None, TWIN_ROOM, DOOR),
        Person("t2", "王小兰", "2016-02-02", "2", None, None, TWIN_ROOM, DOOR),  # her twin
    ]
    found = match([], records)
    assert found.to_golden == {}
    assert sorted(found.new_clusters) == [["c1", "c2"], ["t1"], ["t2"]]


def test_nothing_to_match() -> None:
    assert match(GOLDEN, []).new_clusters == []
