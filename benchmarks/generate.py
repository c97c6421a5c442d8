"""Benchmark `gridgov generate`: wall time, rows/s and time per dataset for a given scale.

Builds the grid geometry (timed apart: it does not depend on the scale), then generates every
department file and the ground truth into a temporary folder (or --out), and prints, per step, the
seconds, the rows written and rows/s, then the totals and the peak memory (RSS). Generation is
single-process numpy/Polars/pyarrow; XLSX rows go through xlsxwriter one by one.

    python benchmarks/generate.py                 # scale 0.1 (500,000 persons, ~2.4M rows)
    python benchmarks/generate.py --scale 1       # Ningbo: 5M persons, ~23.6M rows
    python benchmarks/generate.py --scale 0.01 --out /tmp/city --keep
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from gridgov.demo.build import generate_geometry
from gridgov.demo.population import generate_population
from gridgov.geo.divisions import load_divisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="keep the output folder")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="gridgov_generate_"))
    if out.exists() and any(out.iterdir()):
        parser.error(f"{out} is not empty")
    try:
        started = time.perf_counter()
        city = generate_geometry(load_divisions(), seed=args.seed)
        geometry = time.perf_counter() - started
        started = time.perf_counter()
        manifest = generate_population(out, scale=args.scale, seed=args.seed, city=city)
        total = time.perf_counter() - started
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)

    rows = {d.qualified: d.rows for d in manifest.datasets}
    print(f"gridgov generate --scale {args.scale:g} --seed {args.seed}")
    print(f"{'step':<22}{'seconds':>9}{'rows':>13}{'rows/s':>12}  files")
    print(f"{'grid geometry':<22}{geometry:>9.2f}")
    for step, seconds in manifest.timings.items():
        n = rows.get(step, 0)
        files = next((d.files for d in manifest.datasets if d.qualified == step), {})
        rate = f"{n / seconds:>12,.0f}" if n and seconds > 0 else f"{'':>12}"
        shown = ", ".join(f"{k} ({v:,})" for k, v in files.items())
        print(
            f"{step:<22}{seconds:>9.2f}{n or '':>13,}{rate}  {shown}"
            if n
            else f"{step:<22}{seconds:>9.2f}"
        )
    all_rows = manifest.total_rows
    print(
        f"\ntotal {total:.1f} s without geometry ({total + geometry:.1f} s with it): "
        f"{all_rows:,} rows ({manifest.department_records:,} department records + "
        f"{all_rows - manifest.department_records:,} standard addresses), "
        f"{all_rows / total:,.0f} rows/s, {size / 1e9:.2f} GB on disk"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
    print(f"peak memory {peak:.1f} GB; entities {manifest.entities}")


if __name__ == "__main__":
    main()
