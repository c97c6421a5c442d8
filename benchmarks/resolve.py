"""Entity resolution quality against the generator's ground truth.

Imports the synthetic city's files and builds the golden persons (as `benchmarks/ingest.py`), then
compares the clusters of person records (records of kinds person, tag and field check, linked to
one golden person) with the true person of every record (`truth/records.parquet`):

- pairwise precision, recall and F1 over pairs of loaded records (the same golden person vs the
  same true person);
- wrongly merged clusters: golden persons whose records belong to more than one true person;
- split persons: true persons whose records went to more than one golden person;
- the time of each step.

    python benchmarks/resolve.py --scale 0.01 [--db sqlite|pg]
    python benchmarks/resolve.py --data DIR
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ingest import generate, ingest_all, make_database, prepare, resolve_all
from quality import evaluate, print_quality


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--seed", type=int, default=2023)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gridgov_resolve_") as tmp_dir:
        tmp = Path(tmp_dir)
        data = args.data or tmp / "data"
        if args.data is None:
            print(
                f"generated scale {args.scale:g} in {generate(data, args.scale, args.seed):.1f} s"
            )
        url, cleanup = make_database(args.db, tmp)
        try:
            prepare(url, args.seed)
            t = time.perf_counter()
            ing = ingest_all(url, data, tmp / "work")
            print(f"import: {ing['read']:,} rows in {ing['seconds']:.1f} s")
            res = resolve_all(url)
            for step, (secs, _) in res.items():
                print(f"resolve · {step}: {secs:.1f} s")
            print(f"import + resolve: {time.perf_counter() - t:.1f} s")
            figures = evaluate(url, data)
        finally:
            cleanup()
    print_quality(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
