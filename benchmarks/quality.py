"""Pairwise quality of the golden persons against the generator's ground truth (shared by the
ingest and resolve benchmarks)."""

from __future__ import annotations

from pathlib import Path


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
    frames = []
    with make_sessionmaker(engine)() as s:
        # Streamed in slices into compact frames (at S = 1 there are 13 million person records).
        result = s.execute(
            select(
                IngestBatch.file_name, SourceRecord.row_no, RecordLink.entity_id, RecordLink.method
            )
            .join(SourceRecord, SourceRecord.batch_id == IngestBatch.id)
            .join(RecordLink, RecordLink.source_record_id == SourceRecord.id)
            .where(RecordLink.entity == "person", SourceRecord.kind.in_(("person", "tag", "check")))
            .execution_options(yield_per=200_000)
        )
        for part in result.partitions():
            frames.append(
                pl.DataFrame(
                    [tuple(r) for r in part],
                    schema={"file": pl.Categorical, "row_no": pl.Int64, "golden": pl.Int64,
                            "method": pl.Categorical},
                    orient="row",
                )
            )  # fmt: skip
    engine.dispose()
    if not frames:
        return {}
    pred = pl.concat(frames).with_columns(pl.col("file", "method").cast(pl.String))
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


def print_quality(figures: dict[str, float | int]) -> None:
    if not figures:
        print("quality: no person records linked")
        return
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
