"""Benchmark the assessment: time to compute every level for the city and for one town.

Runs against an existing database (for example the demo city built by `gridgov demo`, with its 90
days of event history and its synthetic population) and prints, for the default period (last
month) and for the last 90 days, the rows per level and p50/p95 of `service.compute` over --runs
runs (all levels at once, as the XLSX export does; the page and the API compute the same).

    GRIDGOV_DATABASE_URL=sqlite:///var/gridgov.db python benchmarks/assessment.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from sqlalchemy import select

from gridgov.analytics.assessment import service
from gridgov.analytics.assessment.config import load_config
from gridgov.config import Settings
from gridgov.core import clock
from gridgov.db.engine import make_engine, make_sessionmaker
from gridgov.events.service import context_from_settings
from gridgov.geo.models import Region


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default GRIDGOV_DATABASE_URL)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = Settings() if args.db is None else Settings(database_url=args.db)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    ctx = context_from_settings(settings)
    config = load_config(settings.assessment_file)
    now = clock.now()
    today = now.astimezone(clock.DISPLAY_TZ).date()
    periods = {
        "last month": service.last_month(now),
        "last 90 days": service.Period(today - timedelta(days=89), today),
    }
    print(f"database: {engine.dialect.name}")
    with factory() as session:
        city = session.scalars(select(Region).where(Region.level == 1)).first()
        town = session.scalars(
            select(Region).where(Region.level == 3).order_by(Region.code)
        ).first()
        assert city is not None and town is not None, "no regions: build the demo first"
        for label, period in periods.items():
            for root in (city, town):
                times = []
                result = None
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    result = service.compute(
                        session, region=root, period=period, config=config, ctx=ctx, now=now
                    )
                    times.append(time.perf_counter() - t0)
                    session.rollback()
                assert result is not None
                rows = ", ".join(f"{lv} {len(r):,}" for lv, r in result.levels.items())
                p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
                print(
                    f"{label:>12} · {root.name} ({root.code}): p50 {statistics.median(times):.2f} s,"
                    f" p95 {p95:.2f} s over {args.runs} runs; rows: {rows}"
                )
    engine.dispose()


if __name__ == "__main__":
    main()
