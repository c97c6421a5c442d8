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


def pairs(sizes: list[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def evaluate(url: str, data: Path) -> dict[str, float | int]:
    import polars as pl
    from sqlalchemy import select

    from gridgov.db.engine import make_engine, make_sessionmaker
    from gridgov.ingest.models import IngestBatch, SourceRecord
    from gridgov.registry.models import RecordLink

    truth = pl.read_parquet(data / "truth" / "records.parquet").select(
        "file", "row_no", "person_id"
    )
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        rows = s.execute(
            select(
                IngestBatch.file_name, SourceRecord.row_no, RecordLink.entity_id, RecordLink.method
            )
            .join(SourceRecord, SourceRecord.batch_id == IngestBatch.id)
            .join(RecordLink, RecordLink.source_record_id == SourceRecord.id)
            .where(RecordLink.entity == "person", SourceRecord.kind.in_(("person", "tag", "check")))
        ).all()
    engine.dispose()
    pred = pl.DataFrame(
        {
            "file": [r[0] for r in rows],
            "row_no": [r[1] for r in rows],
            "golden": [r[2] for r in rows],
            "method": [r[3] for r in rows],
        },
        schema={"file": pl.String, "row_no": pl.Int64, "golden": pl.Int64, "method": pl.String},
    )
    both = pred.join(truth, on=["file", "row_no"], how="inner").drop_nulls("person_id")
    tp = pairs(both.group_by("golden", "person_id").len()["len"].to_list())
    predicted = pairs(both.group_by("golden").len()["len"].to_list())
    actual = pairs(both.group_by("person_id").len()["len"].to_list())
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    merged = (
        both.group_by("golden")
        .agg(pl.col("person_id").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    split = (
        both.group_by("person_id")
        .agg(pl.col("golden").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    return {
        "records": both.height,
        "golden": both["golden"].n_unique(),
        "true persons": both["person_id"].n_unique(),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "wrongly merged clusters": merged.height,
        "split persons": split.height,
        "by id": both.filter(pl.col("method") == "id").height,
        "by matcher": both.filter(pl.col("method") != "id").height,
    }


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
    print(
        f"persons: {figures['records']:,} person records → {figures['golden']:,} golden persons "
        f"({figures['true persons']:,} true); linked by ID {figures['by id']:,}, by the matcher "
        f"{figures['by matcher']:,}"
    )
    print(
        f"pairwise precision {figures['precision']:.4f}, recall {figures['recall']:.4f}, "
        f"F1 {figures['f1']:.4f}; wrongly merged clusters {figures['wrongly merged clusters']:,}; "
        f"split persons {figures['split persons']:,}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
