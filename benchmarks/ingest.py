"""Benchmark the base data center end to end: department files → source records → golden records.

For each database (a temporary SQLite file; a fresh PostgreSQL database, dropped at the end):
migrate, load the division tree and the generated city's grids, then import every department file
of the synthetic city (`gridgov generate`) with the real import job, and build the golden records
(`gridgov resolve`: address library, persons by ID and by the probabilistic matcher,
organizations, rooms and residents placed). Prints rows/s per stage and end to end, counts, and
peak memory: the largest of the import's (this process's maximum resident set, which includes
the generator when it runs here) and each resolution step's (`gridgov resolve` runs each step in
a process of its own; with the function it was in at its peak).

    python benchmarks/ingest.py --scale 0.01                 # generate, then both databases
    python benchmarks/ingest.py --data DIR --db pg           # files made by `gridgov generate`

Engines used: the import reads with Python's csv module (transposed to columns) / openpyxl,
stages to Parquet (pyarrow), standardises a chunk at a time in Polars and numpy (rows needing the
Python rules go row by row), hashes with DuckDB, and writes with COPY of Polars CSV + INSERT …
ON CONFLICT DO NOTHING (PostgreSQL) or one executemany (SQLite); two files at a time by default.
Resolution uses Polars (survivorship) and Splink on DuckDB (matching).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchdb import make_database


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(out: Path, scale: float, seed: int) -> float:
    from gridgov.demo.population import generate_population

    t = time.perf_counter()
    generate_population(out, scale=scale, seed=seed)
    return time.perf_counter() - t


def prepare(url: str, seed: int) -> None:
    """Schema, division tree and the generated grids (the same city the generator used)."""
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
    from gridgov.db.migrate import upgrade
    from gridgov.demo.build import generate_geometry, store_generated
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import load_divisions

    engine = make_engine(url)
    upgrade(engine)
    divisions = load_divisions()
    with session_scope(make_sessionmaker(engine)) as s:
        geo.load_division_tree(s, divisions, now=clock.now())
        store_generated(s, generate_geometry(divisions, seed=seed), now=clock.now())
    engine.dispose()


SERVER_SETTINGS = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "synchronous_commit")


def server_settings(url: str) -> dict[str, str]:
    """The PostgreSQL settings that bear on bulk writes, printed with the figures."""
    if not url.startswith("postgresql"):
        return {}
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: str(conn.execute(text(f"SHOW {name}")).scalar()) for name in SERVER_SETTINGS
            }
    finally:
        engine.dispose()


def ingest_all(url: str, data: Path, work: Path, jobs: int = 2) -> dict[str, Any]:
    from gridgov.core import clock
    from gridgov.db.engine import make_engine, make_sessionmaker
    from gridgov.ingest.mapping import shipped_mappings
    from gridgov.ingest.pipeline import ImportJob, import_files

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    mappings = shipped_mappings()
    totals: dict[str, Any] = {"files": 0, "read": 0, "loaded": 0, "quarantined": 0, "unchanged": 0}
    per_source: dict[str, list[int]] = {}
    # Largest files first, so the two at a time finish together.
    files = sorted(
        ((source, f) for source, fs in mappings.files_in(data).items() for f in fs),
        key=lambda sf: -sf[1].stat().st_size,
    )
    jobs_list = [
        ImportJob(factory, f, source=source, mappings=mappings, work_dir=work, now=clock.now)
        for source, f in files
    ]
    t0 = time.perf_counter()
    for (source, f), r in zip(files, import_files(jobs_list, jobs), strict=True):
        if r.error:
            raise SystemExit(f"{f.name}: {r.error}")
        totals["files"] += 1
        totals["read"] += r.read
        totals["loaded"] += r.loaded
        totals["quarantined"] += r.quarantined
        totals["unchanged"] += r.unchanged
        per_source.setdefault(source, [0, 0])[0] += r.read
        per_source[source][1] += 1
    totals["seconds"] = time.perf_counter() - t0
    totals["per_source"] = per_source
    totals["jobs"] = jobs
    engine.dispose()
    return totals


def resolve_all(url: str, isolated: bool = True) -> dict[str, Any]:
    """The steps of `gridgov resolve`, as it runs them: each in a process of its own (its peak
    memory is that process's), one transaction each."""
    from gridgov.core import clock
    from gridgov.registry.steps import StepResult, run_steps

    out: dict[str, Any] = {}

    def after(_i: int, r: StepResult) -> None:
        out[r.name] = (r.seconds, vars(r.stats), r.peak_mib, r.peak_where)
        print(f"  {r.name}: {r.seconds:.1f} s, peak {r.peak_mib:,.0f} MiB", flush=True)
        if r.peak_where:
            print(f"    at the peak: {' < '.join(r.peak_where)}", flush=True)

    run_steps(url, clock.now(), isolated=isolated, measure=True, after=after)
    return out


def run(
    kind: str, data: Path, seed: int, jobs: int, keep: Path | None = None, isolated: bool = True
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gridgov_ingest_") as tmp_dir:
        tmp = keep or Path(tmp_dir)
        url, cleanup = make_database(kind, tmp)
        if keep is not None:  # leave the database (and the SQLite file) for later experiments
            print(f"keeping the database: {url}", flush=True)
            cleanup = _nothing
        try:
            t = time.perf_counter()
            prepare(url, seed)
            setup = time.perf_counter() - t
            ing = ingest_all(url, data, tmp / "work", jobs)
            ing["peak"] = peak_mib()
            res = resolve_all(url, isolated)
            # Before the quality check below, which is not part of the pipeline: the import's
            # peak (this process) or a step's (its own process), whichever is larger.
            peak = max(peak_mib(), *(v[2] for v in res.values()))
            quality = {}
            if (data / "truth" / "records.parquet").exists():
                from quality import evaluate

                quality = evaluate(url, data)
            return {"url": url, "setup": setup, "ingest": ing, "resolve": res, "peak": peak,
                    "quality": quality, "server": server_settings(url)}  # fmt: skip
        finally:
            cleanup()


def _nothing() -> None:
    pass


def report(kind: str, r: dict[str, Any]) -> None:
    ing, res = r["ingest"], r["resolve"]
    name = "SQLite" if kind == "sqlite" else "PostgreSQL"
    print(f"\n== {name} ==")
    if r["server"]:
        print("server: " + ", ".join(f"{k} {v}" for k, v in r["server"].items()))
    print(f"setup (migrate, division tree, generated grids): {r['setup']:.1f} s")
    print(
        f"import: {ing['files']} files, {ing['read']:,} rows read = {ing['loaded']:,} loaded "
        f"({ing['unchanged']:,} unchanged) + {ing['quarantined']:,} quarantined, in "
        f"{ing['seconds']:.1f} s: {ing['read'] / ing['seconds']:,.0f} rows/s"
    )
    print(f"  ({ing['jobs']} files at a time; peak memory {ing['peak']:,.0f} MiB)")
    for source, (rows, files) in sorted(ing["per_source"].items()):
        print(f"  {source}: {rows:,} rows in {files} files")
    resolve_s = sum(v[0] for v in res.values())
    for step, (secs, stats, step_peak, _where) in res.items():
        shown = {k: v for k, v in stats.items() if v not in (0, {}, None)}
        print(f"  resolve · {step}: {secs:.1f} s, peak {step_peak:,.0f} MiB {shown}")
    total = ing["seconds"] + resolve_s
    print(
        f"end to end (read → validate → standardise → store → match → place): {ing['read']:,} "
        f"records in {total:.1f} s: {ing['read'] / total:,.0f} records/s; peak memory "
        f"{r['peak']:,.0f} MiB"
    )
    if r["quality"]:
        from quality import print_quality

        print_quality(r["quality"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    ap.add_argument("--scale", type=float, default=0.01, help="generate this scale (1 = Ningbo)")
    ap.add_argument("--data", type=Path, help="use files already made by `gridgov generate`")
    ap.add_argument("--seed", type=int, default=2023)
    ap.add_argument("--jobs", type=int, default=2, help="files imported at once (threads)")
    ap.add_argument("--keep", type=Path, help="keep the database (SQLite file in this folder)")
    ap.add_argument(
        "--in-process", action="store_true", help="resolution steps in this process (not isolated)"
    )
    args = ap.parse_args(argv)
    print(f"gridgov ingest benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="gridgov_data_") as data_dir:
        data = args.data or Path(data_dir)
        if args.data is None:
            secs = generate(data, args.scale, args.seed)
            print(f"generated scale {args.scale:g} into {data} in {secs:.1f} s")
        for kind in ["sqlite", "pg"] if args.db == "both" else [args.db]:
            report(kind, run(kind, data, args.seed, args.jobs, args.keep, not args.in_process))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
