"""The early-warning detector, EARS, Gi* and the workflow rules (pure, no database)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from gridgov.analytics.warnings import rules
from gridgov.analytics.warnings.detect import (
    DetectorConfig,
    detect,
    ears,
    nb_threshold,
    nb_upper_tail,
    shape,
)
from gridgov.analytics.warnings.hotspots import (
    benjamini_hochberg,
    gi_star,
    gi_star_textbook,
    hot_spots,
    knn_neighbours,
)
from gridgov.core.errors import InvalidTransition, Rejected

START = date(2023, 1, 2)


@pytest.mark.parametrize("lam", [0.05, 0.5, 3.0])
def test_flat_poisson_alarms_at_most_at_the_nominal_rate(lam: float) -> None:
    # 300 units × 730 judged days = 219,000 unit-days of pure Poisson background. By construction
    # each day's two tests (single day, 7-day sum) have tail probability ≤ alpha/2 each under the
    # predictive distribution, so the alarm rate is ≤ alpha = 0.001 (219 alarms) up to estimation
    # error of the levels; discreteness makes it smaller still. The bound 1.2 × alpha leaves
    # room for that error and for the clustering of window alarms (about 4 sd of a Poisson count
    # of 219 is 59, i.e. 0.27 × alpha, so 1.2 × alpha is not a loose bound on the mean).
    rng = np.random.default_rng(7)
    y = rng.poisson(lam, (300, 1095))
    d = detect(y, start=START, judge_from=365, with_threshold=False)
    assert d.alarm.mean() <= 1.2 * 0.001
    # And it is not silent because it cannot see: expected counts track the true mean.
    assert abs(float(d.expected.mean()) - lam) < 0.1 * lam


def test_a_planted_step_alarms_and_its_neighbours_do_not() -> None:
    rng = np.random.default_rng(3)
    y = rng.poisson(1.0, (5, 800))
    y[0, -10:] += 4  # a step from 1 to 5 events a day over the last 10 days
    d = detect(y, start=START, judge_from=790)
    assert d.alarm[0].sum() >= 7  # the step is seen on most of its days
    assert d.alarm[0, 3:].all()  # from its fourth day on, every day
    assert not d.alarm[1:].any()
    # Here the 7-day sum gives the alarm (each day's 4–6 stays under the single-day threshold
    # of 7); a day at or above the threshold always alarms.
    assert (d.threshold[0] == 7).all() and (y[0, -10:] < 7).all()
    assert (d.window_count[0, 3:] > 2 * d.window_expected[0, 3:]).all()
    z = y.copy()
    z[1, -1] = 7
    assert detect(z, start=START, judge_from=799).alarm[1, 0]


def test_the_guard_band_keeps_a_rise_out_of_its_own_baseline() -> None:
    rng = np.random.default_rng(5)
    y = rng.poisson(2.0, (1, 600))
    y[0, -12:] += 6
    d = detect(y, start=START, judge_from=599)
    assert d.expected[0, 0] < 2.6  # the baseline ends 14 days back, before the rise
    assert d.alarm[0, 0]


def test_nb_threshold_is_the_smallest_count_with_tail_below_alpha() -> None:
    mean = np.array([0.01, 0.3, 1.0, 5.0, 40.0])
    size = np.array([1e6, 4.0, 2.0, 10.0, 3.0])
    thr = nb_threshold(0.001, mean, size)
    assert (nb_upper_tail(thr, mean, size) < 0.001).all()
    assert (nb_upper_tail(thr - 1, mean, size) >= 0.001).all()
    # Poisson limit: P(Y ≥ 1 | mean 0.01) = 1 − e^−0.01.
    assert nb_upper_tail(np.array([1]), np.array([0.01]), np.array([1e9]))[0] == pytest.approx(
        1 - np.exp(-0.01), rel=1e-6
    )


def test_shape_recovers_a_weekday_effect() -> None:
    t = np.arange(730)
    weekday = (t + START.weekday()) % 7
    pooled = np.where(weekday >= 5, 60.0, 100.0)
    s = shape(pooled, START, 0, 700, 730, DetectorConfig())
    ratio = s[weekday >= 5].mean() / s[weekday < 5].mean()
    assert ratio == pytest.approx(0.6, rel=0.01)


def test_ears_statistics_by_hand() -> None:
    y = np.array([[1, 2, 3, 1, 2, 3, 1, 2, 3, 0, 0, 9, 0]])
    e = ears(y, judge_from=11)
    base1 = y[0, 4:11]  # C1: the 7 days before day 11
    z1 = (9 - base1.mean()) / base1.std(ddof=1)
    base2 = y[0, 2:9]  # C2: days 2..8 (two-day guard)
    z2 = (9 - base2.mean()) / base2.std(ddof=1)
    assert e.c1[0, 0] == pytest.approx(z1)
    assert e.c2[0, 0] == pytest.approx(z2)
    assert e.alarms("C2")[0, 0]


def test_gi_star_by_esda_matches_the_textbook_formula() -> None:
    rng = np.random.default_rng(2)
    lon, lat = rng.random(300) + 121, rng.random(300) + 29
    nb = knn_neighbours(lon, lat, 8)
    x = rng.poisson(1, 300).astype(float)
    x[[0, *nb[0]]] += 8
    np.testing.assert_allclose(gi_star(x, nb), gi_star_textbook(x, nb), atol=1e-9)
    hs = hot_spots(x, nb, fdr=0.05)
    assert hs.significant[0]
    quiet = hot_spots(rng.poisson(1, 300).astype(float), nb, fdr=0.05)
    assert not quiet.significant.any()


def test_benjamini_hochberg() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # Step-up: the largest k with p_(k) ≤ 0.05 k / 10 is k = 2.
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True] + [False] * 8


@pytest.mark.parametrize(
    ("status", "action", "note", "expected"),
    [
        ("open", "acknowledge", "", "acknowledged"),
        ("open", "close", "误报", "closed"),
        ("acknowledged", "follow_up", "已上门", "followed_up"),
        ("followed_up", "follow_up", "再次回访", "followed_up"),
        ("followed_up", "close", "已化解", "closed"),
    ],
)
def test_workflow_allows(status: str, action: str, note: str, expected: str) -> None:
    assert rules.transition(status, action, note, ref="1") == expected


def test_workflow_refuses() -> None:
    with pytest.raises(InvalidTransition):
        rules.transition("closed", "acknowledge", "", ref="1")
    with pytest.raises(InvalidTransition):
        rules.transition("open", "follow_up", "x", ref="1")
    with pytest.raises(Rejected) as exc:
        rules.transition("acknowledged", "close", "  ", ref="7")
    assert "7" in exc.value.msg and "note" in exc.value.msg
    with pytest.raises(Rejected):
        rules.transition("open", "delete", "", ref="1")


def test_config_ships_and_refuses_bad_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = rules.load_config()
    assert cfg.rise.levels == (5, 3)
    assert cfg.visit.every("control", "community_correction") == 7
    assert cfg.visit.every("service", "unknown_subtype") == 30
    assert cfg.visit.every("backbone", "party_member") is None
    bad = tmp_path / "w.toml"
    bad.write_text("[rise]\nalpha = -1\n", encoding="utf-8")
    with pytest.raises(Rejected) as exc:
        rules.load_config(bad)
    assert "[rise] alpha" in exc.value.msg


def test_address_and_party_keys() -> None:
    assert rules.address_key("澄浪路 １２號") == rules.address_key("澄浪路12号")
    assert rules.address_key("路") == ""
    assert rules.party_key("139-0000-0001", "王伟") == "tel:13900000001"
    assert rules.party_key("", "王伟") == "name:王伟"
    assert rules.party_key("", "王") == ""
    assert rules.common_code(["330203001001001", "330203001001002"]) == "330203001001"
    assert rules.common_code(["330203001001001", "330203002001002"]) == "330203000000"
