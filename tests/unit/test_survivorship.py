"""Survivorship decisions, one rule at a time (一数一源)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridgov.registry.survivorship import (
    AUTHORITY,
    AUTHORITY_CONFLICT,
    FIELD,
    FIELD_VS_DEPARTMENT,
    LATEST,
    Candidate,
    Rule,
    SurvivorshipError,
    decide,
    parse_survivorship,
    shipped_survivorship,
)


def at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


def cand(
    value: object, source: str, day: int | None, rid: int = 0, *, valid: bool = True
) -> Candidate:
    return Candidate(value, source, at(day) if day else None, rid or day or 0, valid=valid)


AUTH = Rule(AUTHORITY, (("GA",), ("RS",), ("WJ",)))


def test_authority_takes_the_owning_department_even_when_older() -> None:
    d = decide(AUTH, [cand("张伟", "GA", 1), cand("张玮", "RS", 20), cand("张卫", "WJ", 25)])
    assert d.value == "张伟" and d.chosen is not None and d.chosen.source == "GA"
    assert d.conflict is None


def test_authority_falls_through_ranks_and_skips_invalid_values() -> None:
    d = decide(AUTH, [cand("X", "GA", 5, valid=False), cand("", "GA", 6), cand("B", "RS", 2)])
    assert d.value == "B" and d.chosen is not None and d.chosen.source == "RS"


def test_authority_uses_the_latest_value_of_the_owning_department() -> None:
    d = decide(AUTH, [cand("旧地址", "GA", 1, 1), cand("新地址", "GA", 9, 2)])
    assert d.value == "新地址"


def test_equal_authorities_that_disagree_open_a_conflict() -> None:
    rule = Rule(AUTHORITY, (("SJ", "MZ"), ("YJ",)))
    d = decide(rule, [cand("甲公司", "SJ", 3), cand("甲协会", "MZ", 4), cand("丙", "YJ", 9)])
    assert d.conflict is not None and d.conflict.kind == AUTHORITY_CONFLICT
    assert {c.source for c in d.conflict.candidates} == {"SJ", "MZ"}
    assert d.value == "甲协会"  # the later of the two, until a grid worker settles it
    agree = decide(rule, [cand("甲公司", "SJ", 3), cand("甲公司 ", "MZ", 4)])
    assert agree.conflict is None


def test_no_authority_value_falls_back_to_the_latest() -> None:
    d = decide(Rule(AUTHORITY, (("GA",),)), [cand("a", "RS", 2), cand("b", "WJ", 7)])
    assert d.value == "b"


FIELD_RULE = Rule(FIELD, (("WG",), ("GA",), ("RS",)))


def test_field_fact_from_the_latest_grid_worker_check() -> None:
    d = decide(
        FIELD_RULE, [cand("实际A", "WG", 10), cand("实际B", "WG", 12), cand("户籍C", "GA", 5)]
    )
    assert d.value == "实际B" and d.conflict is None


def test_newer_department_value_contradicting_the_check_opens_a_task() -> None:
    d = decide(FIELD_RULE, [cand("1380", "WG", 10), cand("1390", "RS", 15)])
    assert d.value == "1380"  # the field check stands until a worker looks again
    assert d.conflict is not None and d.conflict.kind == FIELD_VS_DEPARTMENT
    assert [c.source for c in d.conflict.candidates] == ["WG", "RS"]
    # Older or equal department values do not.
    assert decide(FIELD_RULE, [cand("1380", "WG", 10), cand("1390", "RS", 5)]).conflict is None
    assert decide(FIELD_RULE, [cand("1380", "WG", 10), cand("1380", "RS", 15)]).conflict is None


def test_field_fact_without_a_check_is_the_most_recent_value() -> None:
    d = decide(FIELD_RULE, [cand("A", "GA", 3), cand("B", "RS", 8)])
    assert d.value == "B" and d.conflict is None


def test_latest_breaks_date_ties_by_source_rank() -> None:
    rule = Rule(LATEST, (("SJ",), ("YJ",)))
    d = decide(rule, [cand("yj", "YJ", 5, 2), cand("sj", "SJ", 5, 1)])
    assert d.value == "sj"
    assert decide(rule, []).value is None


def test_shipped_table_and_bad_tables() -> None:
    table = shipped_survivorship()
    assert table.rule("person", "name").kind == AUTHORITY
    assert table.rule("person", "name").ranks[0] == ("GA",)
    assert table.rule("person", "phone").kind == FIELD
    assert table.rule("organization", "credit_code").ranks[0] == ("SJ", "MZ")
    assert table.rule("person", "unknown_field").kind == LATEST
    with pytest.raises(SurvivorshipError, match="rule"):
        parse_survivorship({"person": {"name": {"rule": "vote"}}})
    with pytest.raises(SurvivorshipError, match="权威部门"):
        parse_survivorship({"person": {"name": {"rule": "authority"}}})
    with pytest.raises(SurvivorshipError, match="未知的实体"):
        parse_survivorship({"people": {}})
