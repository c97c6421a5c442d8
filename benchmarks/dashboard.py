"""Benchmark the dashboard data request at S = 1 on PostgreSQL (or SQLite).

What is measured: p50/p95 latency of `GET /api/v1/analytics/dashboard/{code}` (token lookup,
jurisdiction check, the rollup queries, JSON) through the real app in-process (FastAPI
TestClient), for the city and for one town, over a 30-day and a 365-day period.

What is filled, and how (stated plainly: this is not the full data-center import): a fresh
database `gridgov_bench_<random>` (dropped at the end) gets Ningbo's real division tree
(10 districts, 162 towns, 3,042 villages) and 12,000 grid rows (3 or more per village, no polygons);
then a vectorised generator (NumPy + Polars) draws a year of events at Ningbo's rate (--events,
default 650,000: grid, local day with a weekday effect, category from the 33+1 catalog with skewed
weights, channel, status by age, outcome flags), turns them into the per-event counter frame the
rollup rebuild uses (analytics.rollups.service.counter_frame's columns) and groups it with the
rebuild's own `rollup_frames`, so the rollup tables have exactly the rows a year of real events
would leave; base numbers per grid are drawn at Ningbo size (≈ 5.0 M persons, 650 K
organizations, 3.2 M houses, 5.6 M addresses) and rolled up with `base_frame`. Everything is
written with PostgreSQL COPY (db.bulk.copy_frame). No events table rows are needed: the dashboard
reads only the rollups.

    python benchmarks/dashboard.py                 # PostgreSQL, 650,000 events, 40 requests each
    python benchmarks/dashboard.py --db sqlite --events 100000 --requests 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from benchdb import make_database

PASSWORD = "Bench@2026pw"  # noqa: S105 (a throw-away benchmark account)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def fill(url: str, n_events: int, end: date, seed: int) -> dict[str, str]:
    from sqlalchemy import insert, select

    from gridgov.accounts.service import create_user
    from gridgov.analytics.rollups import service as rollups
    from gridgov.analytics.rollups.models import BaseUnit, EventGridDay, EventUnitDay
    from gridgov.db.bulk import copy_frame, refresh_statistics
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.db.migrate import upgrade
    from gridgov.events.catalog import cached_catalog
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import GRID, VILLAGE, load_divisions
    from gridgov.geo.models import Region

    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    with session_scope(make_sessionmaker(engine)) as session:
        geo.load_division_tree(session, load_divisions(), now=now)
        villages = list(
            session.scalars(
                select(Region.code).where(Region.level == VILLAGE).order_by(Region.code)
            )
        )
        # 12,000 grids: 3 per village plus the rest spread at random (at most a few more each).
        per_village = 3 + rng.multinomial(
            12_000 - 3 * len(villages), [1 / len(villages)] * len(villages)
        )
        rows = [
            {"code": f"{v}{k:03d}", "name": f"第{k}网格", "level": GRID, "parent_code": v,
             "is_urban": False, "updated_at": now}
            for v, n in zip(villages, per_village, strict=True)
            for k in range(1, n + 1)
        ]  # fmt: skip
        for i in range(0, len(rows), 5000):
            session.execute(insert(Region), rows[i : i + 5000])
        grids = np.array([r["code"] for r in rows])
        town = villages[len(villages) // 2][:9] + "000"
        create_user(session, username="bench_city", password=PASSWORD,
                    region_code=villages[0][:4] + "00000000", roles=["city_staff"], now=now)  # fmt: skip
        create_user(session, username="bench_town", password=PASSWORD, region_code=town,
                    roles=["town_staff"], now=now)  # fmt: skip
    print(
        f"tree: {len(villages):,} villages, {len(grids):,} grids ({time.perf_counter() - t0:.1f} s)"
    )

    # ---- a year of events, vectorised
    t0 = time.perf_counter()
    n = n_events
    days = 365
    grid_w = rng.gamma(1.5, 1.0, len(grids))
    grid_idx = rng.choice(len(grids), n, p=grid_w / grid_w.sum())
    day_w = np.array(
        [(0.6 if (end - timedelta(days=d)).weekday() >= 5 else 1.0) for d in range(days)]
    )
    ago = rng.choice(days, n, p=day_w / day_w.sum())
    day = np.datetime64(end, "D") - ago.astype("timedelta64[D]")
    codes = list(cached_catalog(None).categories)
    cat_w = 1.0 / np.arange(1, len(codes) + 1) ** 0.9
    category = np.array(codes)[rng.choice(len(codes), n, p=cat_w / cat_w.sum())]
    channels = np.array(["grid", "hotline", "staff", "department", "public"])
    channel = channels[rng.choice(5, n, p=[0.6, 0.2, 0.08, 0.05, 0.07])]
    old = ago > 14
    u = rng.random(n)
    status = np.where(
        old,
        np.where(u < 0.93, "closed", np.where(u < 0.97, "refused", "handling")),
        np.where(u < 0.5, "closed", np.where(u < 0.55, "refused",
                 np.where(u < 0.75, "handling", np.where(u < 0.9, "dispatched", "reported")))),
    )  # fmt: skip
    closed = status == "closed"
    grid_ch = channel == "grid"
    self_closed = closed & grid_ch & (rng.random(n) < 0.35)
    accepted = (status != "reported") & (status != "refused")
    dispatched = accepted & (status != "accepted")
    follow = closed & (rng.random(n) < 0.6)
    sat = follow & (rng.random(n) < 0.93)
    handled = closed & ~self_closed
    per_event = pl.DataFrame(
        {
            "grid_code": grids[grid_idx],
            "day": day,
            "category_code": category,
            "channel": channel,
            "status": status,
            "reported": np.ones(n, np.int64),
            "grid_reported": grid_ch.astype(np.int64),
            "due": accepted.astype(np.int64) | closed.astype(np.int64),
            "closed": closed.astype(np.int64),
            "closed_on_time": (closed & (rng.random(n) < 0.95)).astype(np.int64),
            "dispatched": dispatched.astype(np.int64),
            "dispatched_on_time": (dispatched & (rng.random(n) < 0.97)).astype(np.int64),
            "self_closed": self_closed.astype(np.int64),
            "closed_at_grid": (closed & grid_ch & (rng.random(n) < 0.7)).astype(np.int64),
            "overdue_open": (~closed & (status != "refused") & (rng.random(n) < 0.1)).astype(
                np.int64
            ),
            "supervised": (rng.random(n) < 0.04).astype(np.int64),
            "follow_ups": follow.astype(np.int64),
            "satisfied": sat.astype(np.int64),
            "handled": handled.astype(np.int64),
            "handling_seconds": np.where(handled, rng.gamma(2.0, 6 * 3600, n), 0).astype(np.int64),
        }
    )
    grid_rows, unit_rows = rollups.rollup_frames(per_event)
    print(
        f"events: {n:,} drawn → {grid_rows.height:,} grid-day rows, {unit_rows.height:,} unit-day rows "
        f"({time.perf_counter() - t0:.1f} s, NumPy + Polars)"
    )

    # ---- base numbers at Ningbo size
    g = len(grids)
    w = rng.gamma(2.0, 1.0, g)
    w = w / w.sum()

    def spread(total: int) -> np.ndarray:
        return rng.multinomial(total, w).astype(np.int64)

    per_grid = pl.DataFrame(
        {
            "grid_code": grids,
            "persons": spread(5_050_000),
            "key_backbone": spread(180_000),
            "key_service": spread(260_000),
            "key_control": spread(45_000),
            "organizations": spread(650_000),
            "houses": spread(3_180_000),
            "addresses": spread(5_610_000),
            "grids": np.ones(g, np.int64),
            "grid_workers": rng.integers(1, 3, g).astype(np.int64),
        }
    )
    base = rollups.base_frame(per_grid).with_columns(
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("refreshed_at")
    )
    t0 = time.perf_counter()
    with session_scope(make_sessionmaker(engine)) as session:
        for model, frame in (
            (EventGridDay, grid_rows),
            (EventUnitDay, unit_rows),
            (BaseUnit, base),
        ):
            table = model.__table__
            copy_frame(session, table, frame, conflict=[c.name for c in table.primary_key])  # type: ignore[attr-defined]
        refresh_statistics(session, "rollup_event_grids", "rollup_event_units", "rollup_base_units")
    print(f"written with copy_frame ({time.perf_counter() - t0:.1f} s)")
    engine.dispose()
    return {"city": villages[0][:4] + "00000000", "town": town}


def measure(url: str, codes: dict[str, str], end: date, requests: int) -> None:
    from fastapi.testclient import TestClient

    from gridgov.app import create_app
    from gridgov.config import Settings
    from gridgov.core import clock

    clock.freeze(datetime.combine(end, datetime.min.time(), UTC) + timedelta(hours=6))
    app = create_app(Settings(database_url=url, sweep_seconds=0))
    with TestClient(app) as client:
        print(f"\n{'request':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  (n = {requests})")
        for who, code in (("city", codes["city"]), ("town", codes["town"])):
            r = client.post(
                "/api/v1/auth/token", data={"username": f"bench_{who}", "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            for days in (30, 365):
                params = {
                    "start": (end - timedelta(days=days - 1)).isoformat(),
                    "end": end.isoformat(),
                }
                path = f"/api/v1/analytics/dashboard/{code}"
                for _ in range(3):
                    r = client.get(path, params=params, headers=headers)
                    assert r.status_code == 200, r.text[:300]
                times = []
                for _ in range(requests):
                    t = time.perf_counter()
                    r = client.get(path, params=params, headers=headers)
                    times.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200
                body = r.json()
                label = f"{who} {code}, {days} days"
                print(
                    f"{label:<34} {statistics.median(times):8.1f} {_pct(times, 0.95):8.1f} "
                    f"{max(times):8.1f}  reported {body['total']['current']['reported']:,}, "
                    f"{len(body['children'])} children"
                )
    clock.freeze(None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["pg", "sqlite"], default="pg")
    ap.add_argument("--events", type=int, default=650_000)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    end = date(2026, 11, 28)
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = make_database(args.db, Path(tmp))
        try:
            print(f"database: {args.db}")
            codes = fill(url, args.events, end, args.seed)
            measure(url, codes, end, args.requests)
        finally:
            drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
