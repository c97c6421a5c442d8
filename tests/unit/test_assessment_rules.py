"""Pure assessment rules: rate → score, the no-data rule, the weighted total, ranking, method text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridgov.analytics.assessment import rules
from gridgov.analytics.assessment.config import IndicatorSpec, load_config, parse_config
from gridgov.analytics.assessment.rules import Ratio, Row, assess, rank, rate, score_of


def test_shipped_config_has_the_domain_weights() -> None:
    config = load_config()
    assert {g: config.group_weight(g) for g in config.groups} == {
        "events": 40, "visits": 30, "satisfaction": 20, "patrol": 10,
    }  # fmt: skip
    assert config.total_weight == 100 and config.min_cases == 1 and config.check_task_days == 7


def test_rate_and_score_mappings() -> None:
    assert rate(Ratio(1, 4), min_cases=1) == 0.25
    assert rate(Ratio(0, 0), min_cases=1) is None
    assert rate(Ratio(1, 2), min_cases=3) is None  # too few cases: no data
    linear = IndicatorSpec("satisfaction", "e", 20)
    target = IndicatorSpec("self_closure", "e", 10, "target", 0.8)
    assert score_of(0.25, linear) == 25.0
    assert score_of(0.4, target) == 50.0
    assert score_of(0.9, target) == 100.0  # above the target: full marks, no more
    assert score_of(None, linear) is None


def test_no_data_is_left_out_and_the_rest_rescaled() -> None:
    config = parse_config(
        {"groups": {"e": "事件"}, "indicator": [
            {"key": "on_time_closure", "group": "e", "weight": 30},
            {"key": "satisfaction", "group": "e", "weight": 10},
            {"key": "patrol_attendance", "group": "e", "weight": 60},
        ]},
        source="t",
    )  # fmt: skip
    row = assess("grid", "g", "格", "", {"on_time_closure": Ratio(1, 2),
                                          "satisfaction": Ratio(0, 0)}, config)  # fmt: skip
    # Satisfaction and patrol have no data: the total is on_time alone, 50, over weight 30.
    assert row.total == 50.0 and row.weight_with_data == 30
    empty = assess("grid", "h", "格", "", {}, config)
    assert empty.total is None and empty.weight_with_data == 0
    # Departments: only on-time closure and satisfaction apply, whatever the counts say.
    dept = assess("department", "d", "部门", "", {"patrol_attendance": Ratio(1, 1),
                                                   "satisfaction": Ratio(1, 1)}, config)  # fmt: skip
    assert dept.total == 100.0 and dept.weight_with_data == 10
    assert dept.indicator("patrol_attendance").value is None  # type: ignore[union-attr]


def _row(code: str, total: float | None) -> Row:
    return Row("grid", code, code, "", [], total, 0.0)


def test_ranking_shares_ranks_and_puts_no_data_last() -> None:
    ranked = rank([_row("a", 50.0), _row("b", None), _row("c", 70.004), _row("d", 70.0),
                   _row("e", 10.0)])  # fmt: skip
    assert [(r.code, r.rank) for r in ranked] == [
        ("c", 1), ("d", 1), ("a", 3), ("e", 4), ("b", None),
    ]  # fmt: skip


@pytest.mark.parametrize("key", list(rules.INDICATORS))
def test_every_indicator_has_its_method_in_chinese(key: str) -> None:
    config = parse_config(
        {"groups": {"g": "组"}, "indicator": [{"key": key, "group": "g", "weight": 5}]}, source="t"
    )
    (line,) = rules.method_lines(config)
    assert line["formula"] and "/" in line["formula"] and line["mapping"].startswith("得分")
    text = " ".join(rules.method_text(config))
    assert "无数据" in text and "权重合计 5" in text


_SPECS = [
    ("on_time_closure", "linear", 1.0),
    ("self_closure", "target", 0.8),
    ("satisfaction", "linear", 1.0),
    ("patrol_attendance", "target", 0.5),
]


@given(
    weights=st.lists(st.integers(0, 50), min_size=4, max_size=4).filter(any),
    counts=st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30)).map(lambda t: (min(t), max(t))),
        min_size=4,
        max_size=4,
    ),
    factor=st.integers(2, 7),
)
def test_total_is_a_weighted_mean_on_the_0_to_100_scale(weights, counts, factor) -> None:  # type: ignore[no-untyped-def]
    def config(scale: int):  # type: ignore[no-untyped-def]
        return parse_config(
            {
                "groups": {"g": "组"},
                "indicator": [
                    {"key": k, "group": "g", "weight": w * scale, "score": kind, "target": t}
                    for (k, kind, t), w in zip(_SPECS, weights, strict=True)
                ],
            },
            source="t",
        )

    ratios = {k: Ratio(n, d) for (k, _, _), (n, d) in zip(_SPECS, counts, strict=True)}
    row = assess("grid", "g", "格", "", ratios, config(1))
    scores = [s.score for s in row.indicators if s.score is not None and s.weight > 0]
    if not scores:
        assert row.total is None
        return
    assert row.total is not None
    assert min(scores) - 1e-9 <= row.total <= max(scores) + 1e-9
    assert 0 <= row.total <= 100
    # Only the proportions of the weights matter.
    scaled = assess("grid", "g", "格", "", ratios, config(factor))
    assert scaled.total == pytest.approx(row.total)
