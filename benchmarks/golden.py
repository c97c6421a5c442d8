"""Golden persons and organizations alone: time and peak memory of `resolve_persons` and
`resolve_organizations` on an imported city, without paying for the import every run.

    python benchmarks/golden.py prepare --scale 0.05 --out /tmp/gg [--pg]  # generate, import, library
    python benchmarks/golden.py run --db /tmp/gg/city.db --data /tmp/gg/data [--src DIR]
    python benchmarks/golden.py run --pg gridgov_golden_0.05 --data /tmp/gg/data

`prepare` writes a SQLite database (or, with `--pg`, a PostgreSQL database named after the scale)
with the city's source records and address library; `run` resolves a copy of it in a fresh process (so the peak resident set is resolution's own), then
prints each step's time, the peak after it, and the pairwise quality against the ground truth.
`--src` puts another checkout's `src` first on the path (to time an older version on the same
data). Engines: Polars (frames, survivorship), Splink on DuckDB (matching), COPY / executemany
into temporary tables then UPDATE … FROM (writes).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pg_url(name: str) -> str:
    from benchdb import PG_ADMIN

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _pg_admin(sql: str) -> None:
    from benchdb import PG_ADMIN
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def prepare(scale: float, out: Path, seed: int, pg: bool = False) -> None:
    from ingest import generate, ingest_all
    from ingest import prepare as prepare_db

    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if not (data / "manifest.json").exists():
        print(f"generated scale {scale:g} in {generate(data, scale, seed):.1f} s")
    url = f"sqlite:///{out / 'city.db'}"
    if pg:
        name = f"gridgov_golden_{scale:g}".replace(".", "_")
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{name}"')
        url = _pg_url(name)
        print(f"database: {name}")
    prepare_db(url, seed)
    ing = ingest_all(url, data, out / "work")
    print(f"import: {ing['read']:,} rows in {ing['seconds']:.1f} s")
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.registry.places import build_address_library

    engine = make_engine(url)
    t = time.perf_counter()
    with session_scope(make_sessionmaker(engine)) as s:
        build_address_library(s, now=clock.now())
    print(f"address library: {time.perf_counter() - t:.1f} s")
    engine.dispose()


def run(db: Path | None, pg: str | None, data: Path | None, work: Path) -> None:
    copy = work / "golden_run.db"
    if pg:
        _pg_admin('DROP DATABASE IF EXISTS "gridgov_golden_run" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "gridgov_golden_run" TEMPLATE "{pg}"')
        url = _pg_url("gridgov_golden_run")
    else:
        assert db is not None
        shutil.copyfile(db, copy)
        url = f"sqlite:///{copy}"
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.registry import golden

    print(f"golden module: {golden.__file__}")
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as s:
        for name, step in (
            ("persons", golden.resolve_persons),
            ("organizations", golden.resolve_organizations),
        ):
            t = time.perf_counter()
            stats = step(s, now=clock.now())
            shown = {k: v for k, v in vars(stats).items() if v not in (0, {}, None)}
            print(
                f"resolve · {name}: {time.perf_counter() - t:.1f} s, peak {peak_mib():,.0f} MiB "
                f"{shown}"
            )
    engine.dispose()
    if data is not None and (data / "truth" / "records.parquet").exists():
        from quality import evaluate, print_quality

        print_quality(evaluate(url, data))
    if pg:
        _pg_admin('DROP DATABASE IF EXISTS "gridgov_golden_run" WITH (FORCE)')
    else:
        copy.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--scale", type=float, default=0.05)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument("--pg", action="store_true", help="into PostgreSQL (GRIDGOV_BENCH_PG)")
    r = sub.add_parser("run")
    r.add_argument("--db", type=Path, help="a SQLite database made by prepare")
    r.add_argument("--pg", help="a PostgreSQL database made by prepare --pg")
    r.add_argument("--data", type=Path)
    r.add_argument("--work", type=Path, help="where the copy goes (default: beside --db)")
    r.add_argument("--src", type=Path, help="import gridgov from this src directory")
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        prepare(args.scale, args.out, args.seed, args.pg)
    else:
        if args.src:
            sys.path.insert(0, str(args.src))
        run(args.db, args.pg, args.data, args.work or (args.db.parent if args.db else Path(".")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
