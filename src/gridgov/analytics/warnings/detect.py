"""Detectors of rises in daily counts: the shipped model-based one and EARS C1–C3 (benchmark only).

Pure numpy/scipy: a matrix of daily counts in (units × days), decisions out; no database.

The model-based detector (Noufaily et al. 2013, "An improved algorithm for outbreak detection in
multiple surveillance systems", adapted to sparse daily counts by pooling):

- **Shape.** The day-to-day shape s_t (log-linear trend + weekday + yearly harmonics) is fitted
  once per block of days by a quasi-Poisson GLM (IRLS) on the *pooled* series (the category's
  city-wide daily total, or any series the caller passes), over the years before the block less a
  guard band. Daily grid-level series are too sparse to fit a GLM each; the pooled one is not.
- **Level.** Each unit has its own level λ_u: mean counts per unit of shape over its own baseline
  window (the `baseline_days` before the guard band), shrunk towards the pooled mean by a gamma
  prior fitted across units (empirical Bayes). Expected count μ_ut = λ̂_u · s_t.
- **Threshold.** The predictive distribution of a day's count is negative binomial: day-level
  over-dispersion (size θ, one moment estimate pooled over units) compounded with the gamma
  uncertainty of the unit's level. A day alarms when its upper-tail probability
  P(Y ≥ y) < alpha (the Noufaily threshold is this quantile) and y ≥ `min_count`; a
  `window`-day sum is tested the same way so that a rise spread over several days is seen too
  (Bonferroni over the two tests).
- The guard band keeps a rise that has just begun out of the baseline it is judged against.

Vectorised: one GLM per block and pool (a few milliseconds), then array arithmetic over every
unit and day; no per-unit fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    alpha: float = 0.001  # upper-tail probability below which a day alarms
    guard_days: int = 14  # recent days kept out of the baseline
    baseline_days: int = 364  # the unit's own level: this many days before the guard band
    profile_days: int = 728  # the pooled shape: fitted on this many days before the guard band
    refit_every: int = 28  # days between refits of the shape when many days are judged
    harmonics: int = 1  # yearly sine/cosine pairs (used when the fit spans a year)
    min_count: int = 2  # a day with fewer events never alarms
    window: int = 7  # also test the sum of this many days (1 = single days only)
    max_dispersion: float = 5.0  # cap on 1/θ


@dataclass(frozen=True, slots=True)
class Detection:
    """Per unit and judged day: expected count, threshold, tail probability, alarm flag."""

    expected: FloatArray  # μ for the day
    threshold: NDArray[np.int64]  # smallest single-day count that alarms
    p_value: FloatArray  # min over the single-day and window tests, Bonferroni-corrected
    window_count: NDArray[np.int64]  # events in the window ending on the day
    window_expected: FloatArray
    alarm: NDArray[np.bool_]


# ------------------------------------------------------------------------------- the GLM


def design(days: NDArray[np.int64], weekday: NDArray[np.int64], *, harmonics: int,
           trend: bool, weekly: bool) -> FloatArray:  # fmt: skip
    """Columns: intercept, trend (years), six weekday dummies, yearly harmonics."""
    cols: list[FloatArray] = [np.ones(len(days))]
    if trend:
        cols.append(days / 365.25)
    if weekly:
        for w in range(1, 7):
            cols.append((weekday == w).astype(float))
    for k in range(1, harmonics + 1):
        angle = 2 * np.pi * k * days / 365.25
        cols.extend([np.sin(angle), np.cos(angle)])
    return np.column_stack(cols)


def fit_poisson(x: FloatArray, y: FloatArray, *, iterations: int = 30) -> FloatArray:
    """Poisson (quasi-Poisson: same coefficients) log-link GLM by iteratively reweighted least
    squares."""
    beta = np.zeros(x.shape[1])
    beta[0] = np.log(max(float(y.mean()), 1e-9))
    for _ in range(iterations):
        eta = np.clip(x @ beta, -30, 30)
        mu = np.exp(eta)
        z = eta + (y - mu) / mu
        sw = np.sqrt(mu)
        new, *_ = np.linalg.lstsq(x * sw[:, None], z * sw, rcond=None)
        if np.max(np.abs(new - beta)) < 1e-8:
            return np.asarray(new, dtype=np.float64)
        beta = np.asarray(new, dtype=np.float64)
    return beta


def shape(pooled: FloatArray, start: date, fit_lo: int, fit_hi: int, upto: int,
          config: DetectorConfig) -> FloatArray:  # fmt: skip
    """The fitted shape s_t for days 0..upto-1, from the pooled series over [fit_lo, fit_hi).

    Terms are used only when the fit window can carry them: yearly harmonics from a year of
    data, weekdays from eight weeks and 100 events, a trend from eight weeks.
    """
    n = fit_hi - fit_lo
    total = float(pooled[fit_lo:fit_hi].sum())
    days = np.arange(upto, dtype=np.int64)
    weekday = (days + start.weekday()) % 7
    if n <= 0 or total <= 0:
        return np.ones(upto)
    weekly = n >= 56 and total >= 100
    trend = n >= 56 and total >= 100
    harmonics = config.harmonics if n >= 365 and total >= 200 else 0
    x = design(days, weekday, harmonics=harmonics, trend=trend, weekly=weekly)
    beta = fit_poisson(x[fit_lo:fit_hi], pooled[fit_lo:fit_hi])
    eta = x @ beta
    # Level-free: the unit levels carry the scale; keep the numbers near 1.
    eta = eta - eta[fit_lo:fit_hi].mean()
    return np.asarray(np.exp(np.clip(eta, -20, 20)), dtype=np.float64)


# ---------------------------------------------------------------------- the predictive


def nb_upper_tail(y: NDArray[np.int64], mean: FloatArray, size: FloatArray) -> FloatArray:
    """P(Y ≥ y) for Y ~ NB(mean, size) (variance mean + mean²/size); 1 for y ≤ 0."""
    y = np.asarray(y)
    mean = np.maximum(mean, 1e-12)
    out = np.ones(np.broadcast(y, mean, size).shape)
    pos = np.broadcast_to(y > 0, out.shape)
    yy = np.broadcast_to(y, out.shape)[pos].astype(float)
    m = np.broadcast_to(mean, out.shape)[pos]
    r = np.broadcast_to(size, out.shape)[pos]
    out[pos] = betainc(yy, r, m / (r + m))
    return out


def nb_threshold(alpha: float, mean: FloatArray, size: FloatArray, *, cap: int = 10_000
                 ) -> NDArray[np.int64]:  # fmt: skip
    """Smallest count y with P(Y ≥ y) < alpha (vectorised bisection over integers)."""
    lo = np.zeros(mean.shape, dtype=np.int64)  # P(Y ≥ lo) ≥ alpha holds for lo = 0
    hi = np.full(mean.shape, 1, dtype=np.int64)
    # Grow hi until the tail drops below alpha.
    for _ in range(20):
        bad = nb_upper_tail(hi, mean, size) >= alpha
        if not bad.any():
            break
        hi = np.where(bad, np.minimum(hi * 2, cap), hi)
    while True:
        gap = hi - lo > 1
        if not gap.any():
            return hi
        mid = (lo + hi) // 2
        below = nb_upper_tail(mid, mean, size) < alpha
        hi = np.where(gap & below, mid, hi)
        lo = np.where(gap & ~below, mid, lo)


def _window_sum(a: NDArray[np.float64] | NDArray[np.int64], w: int) -> NDArray[np.float64]:
    """Sum over the w days ending at each day (fewer at the start), along the last axis."""
    c = np.cumsum(a, axis=-1, dtype=np.float64)
    out = c.copy()
    out[..., w:] = c[..., w:] - c[..., :-w]
    return out


def detect(
    counts: NDArray[np.int64],
    *,
    start: date,
    judge_from: int,
    config: DetectorConfig | None = None,
    pooled: FloatArray | None = None,
    with_threshold: bool = True,
) -> Detection:
    """Judge days judge_from..T-1 of `counts` (units × T days, day 0 = `start`).

    `pooled` is the series the shape is fitted on (default: the sum over units).
    """
    cfg = config or DetectorConfig()
    y = np.asarray(counts, dtype=np.int64)
    if y.ndim != 2:
        raise ValueError("counts must be units × days")
    n_units, n_days = y.shape
    if not 0 <= judge_from < n_days:
        raise ValueError("judge_from must lie inside the series")
    pool = y.sum(axis=0).astype(float) if pooled is None else np.asarray(pooled, dtype=float)
    cum = np.concatenate([np.zeros((n_units, 1)), np.cumsum(y, axis=1, dtype=np.float64)], axis=1)
    ysum_w = _window_sum(y, cfg.window)
    n_judged = n_days - judge_from
    expected = np.empty((n_units, n_judged))
    size = np.empty((n_units, n_judged))
    w_expected = np.empty((n_units, n_judged))
    w_size = np.empty((n_units, n_judged))
    for b0 in range(judge_from, n_days, cfg.refit_every):
        b1 = min(n_days, b0 + cfg.refit_every)
        fit_hi = max(0, b0 - cfg.guard_days)
        fit_lo = max(0, fit_hi - cfg.profile_days)
        s = shape(pool, start, fit_lo, fit_hi, b1, cfg)
        cs = np.concatenate([[0.0], np.cumsum(s)])
        # The unit's level from its own baseline (ending guard_days before each judged day).
        t = np.arange(b0, b1)
        hi = np.maximum(t - cfg.guard_days, 0)
        lo = np.maximum(hi - cfg.baseline_days, 0)
        S = cum[:, hi] - cum[:, lo]  # units × block
        E = np.maximum(cs[hi] - cs[lo], 1e-9)  # block
        a0, b0_ = _gamma_prior(S[:, 0], float(E[0]))
        alpha_post = a0 + S
        level = alpha_post / (b0_ + E)
        inv_theta = _dispersion(y, s, level[:, 0], lo[0], hi[0], cfg.max_dispersion)
        mu = level * s[t]
        # Day-level NB compounded with the gamma uncertainty of the level:
        # Var = μ + μ²(1/θ + 1/α + 1/(θα)).
        extra = inv_theta + 1 / alpha_post + inv_theta / alpha_post
        j = slice(b0 - judge_from, b1 - judge_from)
        expected[:, j] = mu
        size[:, j] = 1 / extra
        # The window: Var = Σμ + (Σμ_i²)/θ + (Σμ)²(1/α + 1/(θα)) (shared level, independent days).
        w_lo = np.maximum(t - cfg.window + 1, 0)
        sw = cs[t + 1] - cs[w_lo]
        sw2 = _window_sum(s**2, cfg.window)[t]
        mw = level * sw
        var_extra = level**2 * (sw2 * inv_theta + sw**2 * (1 / alpha_post + inv_theta / alpha_post))
        w_expected[:, j] = mw
        w_size[:, j] = np.where(var_extra > 0, mw**2 / np.maximum(var_extra, 1e-300), 1e12)
    judged = y[:, judge_from:]
    p1 = nb_upper_tail(judged, expected, size)
    wc = ysum_w[:, judge_from:].astype(np.int64)
    if cfg.window > 1:
        pw = nb_upper_tail(wc, w_expected, w_size)
        p = np.minimum(1.0, 2 * np.minimum(p1, pw))
    else:
        p = p1
    alarm = (p < cfg.alpha) & (judged >= cfg.min_count)
    if with_threshold:
        single = cfg.alpha / (2 if cfg.window > 1 else 1)
        threshold = np.maximum(nb_threshold(single, expected, size), cfg.min_count)
    else:
        threshold = np.zeros(expected.shape, dtype=np.int64)
    return Detection(expected, threshold, p, wc, w_expected, alarm)


def _gamma_prior(sums: FloatArray, exposure: float) -> tuple[float, float]:
    """Gamma(a, b) prior of unit levels by the method of moments across units."""
    rates = sums / exposure
    m = max(float(rates.mean()), 1e-9)
    v = float(rates.var()) - m / exposure  # less the Poisson part
    v = max(v, (0.1 * m) ** 2)
    a = float(np.clip(m * m / v, 0.5, 100.0))
    return a, a / m


def _dispersion(y: NDArray[np.int64], s: FloatArray, level: FloatArray, lo: int, hi: int,
                cap: float) -> float:  # fmt: skip
    """1/θ pooled over units: Σ[(y − μ)² − μ] / Σμ² over the baseline window (≥ 0)."""
    if hi <= lo:
        return 0.0
    mu = level[:, None] * s[None, lo:hi]
    obs = y[:, lo:hi]
    den = float((mu**2).sum())
    if den <= 0:
        return 0.0
    return float(np.clip((((obs - mu) ** 2) - mu).sum() / den, 0.0, cap))


# ------------------------------------------------------------------------ EARS (baseline)


@dataclass(frozen=True, slots=True)
class Ears:
    """EARS C1, C2, C3 statistics (units × judged days) and their alarms at the usual cut-offs."""

    c1: FloatArray
    c2: FloatArray
    c3: FloatArray

    def alarms(self, method: str) -> NDArray[np.bool_]:
        if method == "C1":
            return self.c1 > 3
        if method == "C2":
            return self.c2 > 3
        if method == "C3":
            return self.c3 > 2
        raise ValueError(method)


def ears(counts: NDArray[np.int64], *, judge_from: int, sd_floor: float = 0.2) -> Ears:
    """CDC's EARS: C1 = (y − mean)/sd over days t−7..t−1, C2 the same over t−9..t−3, C3 = the sum
    of max(0, C2 − 1) over t, t−1, t−2. sd is floored at `sd_floor` (all-zero baselines)."""
    y = np.asarray(counts, dtype=np.float64)
    if judge_from < 11:
        raise ValueError("EARS needs 11 days before the first judged day")
    cum = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y, axis=1)], axis=1)
    cum2 = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y * y, axis=1)], axis=1)

    def z(lag: int, t: NDArray[np.int64]) -> FloatArray:
        hi, lo = t - lag + 1, t - lag - 6  # 7 days ending lag days before t
        s1 = cum[:, hi] - cum[:, lo]
        s2 = cum2[:, hi] - cum2[:, lo]
        mean = s1 / 7
        sd = np.sqrt(np.maximum(s2 - 7 * mean**2, 0) / 6)
        return np.asarray((y[:, t] - mean) / np.maximum(sd, sd_floor), dtype=np.float64)

    t = np.arange(judge_from, y.shape[1])
    c1 = z(1, t)
    c2_all = z(3, np.arange(judge_from - 2, y.shape[1]))
    c2 = c2_all[:, 2:]
    part = np.maximum(c2_all - 1, 0)
    c3 = part[:, 2:] + part[:, 1:-1] + part[:, :-2]
    return Ears(c1, c2, c3)


def day_index(start: date, day: date) -> int:
    return (day - start).days


def day_of(start: date, index: int) -> date:
    return start + timedelta(days=index)
