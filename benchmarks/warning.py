"""Evaluate the early-warning detector against EARS C2 on simulated daily counts (one core).

Background: three years of daily counts for every grid of the demo city (12,008 grids from
gridgov's generated geometry; `--units N` uses the first N), negative binomial with a unit level
(lognormal across grids, median `--median` events a day), weekday effect (weekends × 0.6), yearly
season (±30 %, peak in late July), a trend (+8 % a year) and day-level over-dispersion (NB size 4).
Outbreaks: in the last two years, `--outbreaks` per size at random grids and start days; an
outbreak adds Poisson(k × sd₇) events spread at random over 7 days, where sd₇ is the standard
deviation of the grid's 7-day background count at the start, for k = 2, 4, 8 (Noufaily et al.
2013 size outbreaks in multiples of the baseline's spread).

Both methods judge every grid-day of the last two years. Figures: detection rate (an outbreak is
detected if any of its 7 days alarms), false alarms per 1,000 normal grid-days (days outside
outbreaks), median delay (days from the start to the first alarm, among detected), positive
predictive value (alarms on outbreak days / all alarms), at each method's default threshold and
when each is tuned on this benchmark to one false alarm per 1,000 normal grid-days: the alarm
score (model: −log P(Y ≥ y) with y ≥ min_count; EARS: the C2 z-statistic, with the sd floor that
gives C2 its best tuned detection out of 0.1, 0.2, 0.5, 1.0) is thresholded at the smallest value
that keeps false alarms at or under 1 per 1,000.

    .venv/bin/python benchmarks/warning.py [--units N] [--seed S]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from gridgov.analytics.warnings.detect import DetectorConfig, detect, ears

START = date(2023, 12, 1)  # three years to 2026-11-29
DAYS = 3 * 365
JUDGE_FROM = 365
SIZES = (2, 4, 8)
OUTBREAK_DAYS = 7
NB_SIZE = 4.0


def demo_grid_count() -> int:
    from gridgov.demo.build import generate_geometry
    from gridgov.geo.divisions import load_divisions

    city = generate_geometry(load_divisions())
    return sum(1 for r in city.regions if r.level == 5)


@dataclass
class World:
    counts: NDArray[np.int64]
    outbreak: NDArray[np.bool_]  # unit × day inside an outbreak
    outbreaks: list[tuple[int, int, int, int]]  # (unit, start day, size k, extra events)


def simulate(units: int, *, seed: int, median: float, per_size: int) -> World:
    rng = np.random.default_rng(seed)
    t = np.arange(DAYS)
    weekday = (t + START.weekday()) % 7
    doy = np.array([(START.toordinal() + i) for i in t]) - date(2023, 1, 1).toordinal()
    season = 0.3 * np.cos(2 * np.pi * (doy - 205) / 365.25)
    week = np.where(weekday >= 5, np.log(0.6), 0.0)
    trend = np.log(1.08) * t / 365.25
    level = median * np.exp(rng.normal(0.0, 1.0, units))
    mu = level[:, None] * np.exp(season + week + trend)[None, :]
    # NB(mean μ, size r) as Poisson(Gamma(r, μ / r)).
    lam = rng.gamma(NB_SIZE, mu / NB_SIZE)
    counts = rng.poisson(lam).astype(np.int64)
    outbreak = np.zeros_like(counts, dtype=bool)
    events: list[tuple[int, int, int, int]] = []
    for k in SIZES:
        for _ in range(per_size):
            u = int(rng.integers(units))
            s = int(rng.integers(JUDGE_FROM, DAYS - OUTBREAK_DAYS))
            if outbreak[u, s : s + OUTBREAK_DAYS].any():
                continue
            m = mu[u, s]
            sd7 = np.sqrt(OUTBREAK_DAYS * (m + m * m / NB_SIZE))
            extra = int(rng.poisson(k * sd7))
            days = rng.integers(s, s + OUTBREAK_DAYS, size=extra)
            np.add.at(counts[u], days, 1)
            outbreak[u, s : s + OUTBREAK_DAYS] = True
            events.append((u, s, k, extra))
    return World(counts, outbreak, events)


@dataclass
class Figures:
    detection: float
    by_size: dict[int, float]
    fa_per_1000: float
    median_delay: float
    ppv: float


def figures(alarm: NDArray[np.bool_], world: World) -> Figures:
    ob = world.outbreak[:, JUDGE_FROM:]
    normal = ~ob
    fa = float((alarm & normal).sum()) / max(int(normal.sum()), 1) * 1000
    hits = int((alarm & ob).sum())
    ppv = hits / max(int(alarm.sum()), 1)
    detected: dict[int, list[bool]] = {k: [] for k in SIZES}
    delays: list[int] = []
    for u, s, k, _ in world.outbreaks:
        row = alarm[u, s - JUDGE_FROM : s - JUDGE_FROM + OUTBREAK_DAYS]
        hit = bool(row.any())
        detected[k].append(hit)
        if hit:
            delays.append(int(np.argmax(row)))
    every = [h for v in detected.values() for h in v]
    return Figures(
        detection=float(np.mean(every)),
        by_size={k: float(np.mean(v)) for k, v in detected.items()},
        fa_per_1000=fa,
        median_delay=float(np.median(delays)) if delays else float("nan"),
        ppv=ppv,
    )


def tuned(score: NDArray[np.float64], world: World, rate: float = 1.0) -> NDArray[np.bool_]:
    """Alarm where score > v, v the smallest score value with ≤ `rate` FA per 1,000 normal days."""
    normal = ~world.outbreak[:, JUDGE_FROM:]
    s = np.sort(score[normal])[::-1]
    allowed = int(np.floor(rate / 1000 * s.size))
    # Alarms are score > v: v must be ≥ the (allowed+1)-th largest normal score.
    v = s[allowed] if allowed < s.size else -np.inf
    return score > v


def show(name: str, f: Figures) -> None:
    sizes = "  ".join(f"k={k}: {f.by_size[k]:.1%}" for k in SIZES)
    print(
        f"  {name:<34} detection {f.detection:6.1%}  ({sizes})  FA/1000 {f.fa_per_1000:6.2f}  "
        f"median delay {f.median_delay:.0f} d  PPV {f.ppv:6.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=0, help="grids (default: the demo city's)")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--median", type=float, default=0.15, help="median events/grid/day")
    parser.add_argument("--outbreaks", type=int, default=500, help="outbreaks per size")
    args = parser.parse_args()
    t0 = time.perf_counter()
    units = args.units or demo_grid_count()
    world = simulate(units, seed=args.seed, median=args.median, per_size=args.outbreaks)
    judged = units * (DAYS - JUDGE_FROM)
    print(
        f"{units:,} grids × {DAYS} days (judged: last {DAYS - JUDGE_FROM} days, "
        f"{judged:,} grid-days); {len(world.outbreaks)} outbreaks of 7 days, k = {SIZES}; "
        f"{world.counts.sum():,} background+outbreak events; seed {args.seed}"
    )
    cfg = DetectorConfig()
    t1 = time.perf_counter()
    det = detect(world.counts, start=START, judge_from=JUDGE_FROM, config=cfg, with_threshold=False)
    t_model = time.perf_counter() - t1
    t1 = time.perf_counter()
    e = ears(world.counts, judge_from=JUDGE_FROM)
    t_ears = time.perf_counter() - t1
    judged_y = world.counts[:, JUDGE_FROM:]
    print(
        f"detector: {t_model:.1f} s ({judged / t_model / 1e6:.1f} M grid-days/s); "
        f"EARS: {t_ears:.1f} s"
    )
    print(f"\nAt the default thresholds (model: alpha = {cfg.alpha}, window {cfg.window} d, "
          f"min_count {cfg.min_count}; EARS: C1, C2 > 3, C3 > 2):")  # fmt: skip
    show("model-based (NB, pooled shape)", figures(det.alarm, world))
    for m in ("C1", "C2", "C3"):
        show(f"EARS {m}", figures(e.alarms(m), world))

    print("\nTuned to 1 false alarm per 1,000 normal grid-days:")
    score = np.where(judged_y >= cfg.min_count, -np.log(np.maximum(det.p_value, 1e-300)), 0.0)
    model_t = figures(tuned(score, world), world)
    show("model-based", model_t)
    best: tuple[float, float, Figures] | None = None
    for floor in (0.1, 0.2, 0.5, 1.0):
        c2 = ears(world.counts, judge_from=JUDGE_FROM, sd_floor=floor).c2
        f = figures(tuned(c2, world), world)
        if best is None or f.detection > best[1]:
            best = (floor, f.detection, f)
    assert best is not None
    show(f"EARS C2 (sd floor {best[0]})", best[2])
    ratio = model_t.detection / max(best[2].detection, 1e-9)
    print(f"\nmodel-based / EARS C2 detection at 1 FA per 1,000 grid-days: {ratio:.2f}×")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
