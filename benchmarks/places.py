"""Benchmark the address library and the placement of rooms and people on an imported city.

    python benchmarks/places.py prepare --scale 0.02 --db sqlite --keep /tmp/gg_places
    python benchmarks/places.py run --keep /tmp/gg_places --db sqlite
    git show dcbba31~1:src/gridgov/registry/places.py > /tmp/places_old.py
    python benchmarks/places.py run --keep /tmp/gg_places --db sqlite --module /tmp/places_old.py

`prepare` generates a synthetic city, imports every department file and resolves persons and
organizations (the steps before placement), then keeps the database: a SQLite file in the folder
given, or a PostgreSQL database whose name is written there. `run` copies that database (file copy;
`CREATE DATABASE … TEMPLATE`) and times `build_address_library` and `place_rooms_and_people` on the
copy, printing their statistics and this process's peak resident memory (run each version in its
own process: the figure is the maximum over the process's life).

Engines: Polars frames from the driver (PostgreSQL COPY, SQLite cursor), the Python address
parser once per distinct building-level head, COPY / executemany writes, UPDATE … FROM a
temporary table for persons.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchdb import PG_ADMIN
from ingest import generate, ingest_all, prepare


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def do_prepare(scale: float, db: str, keep: Path, seed: int) -> None:
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.registry.golden import resolve_organizations, resolve_persons

    keep.mkdir(parents=True, exist_ok=True)
    data = keep / "data"
    if not data.exists():
        print(f"generated scale {scale:g} in {generate(data, scale, seed):.1f} s", flush=True)
    if db == "sqlite":
        url = f"sqlite:///{keep / 'base.db'}"
    else:
        name = f"gridgov_places_{uuid.uuid4().hex[:8]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        (keep / "pg_name").write_text(name)
        url = _pg_url(name)
    prepare(url, seed)
    ing = ingest_all(url, data, keep / "work", 2)
    print(f"imported {ing['read']:,} rows in {ing['seconds']:.1f} s", flush=True)
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as s:
        resolve_persons(s, now=clock.now())
        resolve_organizations(s, now=clock.now())
    engine.dispose()
    print("persons and organizations resolved", flush=True)


def _module(path: Path | None) -> Any:
    """registry/places.py, or another version of it (e.g. `git show OLD:src/gridgov/registry/places.py`)."""
    if path is None:
        from gridgov.registry import places

        return places
    spec = importlib.util.spec_from_file_location("places_other", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["places_other"] = module
    spec.loader.exec_module(module)
    return module


def do_run(db: str, keep: Path, module: Path | None) -> None:
    from sqlalchemy import func, select

    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.ingest.models import SourceRecord

    places = _module(module)

    if db == "sqlite":
        shutil.copyfile(keep / "base.db", keep / "run.db")
        url, drop = f"sqlite:///{keep / 'run.db'}", None
    else:
        base = (keep / "pg_name").read_text().strip()
        name = f"{base}_run"
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
        _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{base}"')
        url, drop = _pg_url(name), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            records = s.scalar(select(func.count()).select_from(SourceRecord))
            print(f"{db}: {records:,} source records; peak before {peak_mib():,.0f} MiB")
            for name, step in (
                ("address library", places.build_address_library),
                ("rooms and residents", places.place_rooms_and_people),
            ):
                t = time.perf_counter()
                stats = step(s, now=clock.now())
                secs = time.perf_counter() - t
                shown = {k: v for k, v in vars(stats).items() if v not in (0, {}, None)}
                print(f"  {name}: {secs:.1f} s {shown}; peak {peak_mib():,.0f} MiB", flush=True)
    finally:
        engine.dispose()
        if drop is not None:
            _pg_admin(drop)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("action", choices=("prepare", "run"))
    ap.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--scale", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=2023)
    ap.add_argument("--keep", type=Path, required=True, help="folder for the kept database")
    ap.add_argument("--module", type=Path, help="time this version of registry/places.py instead")
    args = ap.parse_args(argv)
    if args.action == "prepare":
        do_prepare(args.scale, args.db, args.keep, args.seed)
    else:
        do_run(args.db, args.keep, args.module)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
