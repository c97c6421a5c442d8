"""Survivorship over whole tables at once (Polars): the fast path of `survivorship.decide`.

Input: one row per candidate value — entity key, field, value, source, as-of, record id, valid.
Output: one row per (entity key, field) with the chosen value and its candidate, and a list of
conflicts. `decide()` is the specification; tests check that both agree on random inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from gridgov.registry.survivorship import (
    AUTHORITY,
    AUTHORITY_CONFLICT,
    FIELD,
    FIELD_VS_DEPARTMENT,
    GRID_WORKER_SOURCE,
    Survivorship,
)

CANDIDATE_SCHEMA = pl.Schema(
    {
        "key": pl.Int64(),
        "field": pl.String(),
        "value": pl.String(),
        "source": pl.String(),
        "as_of": pl.Datetime("us", "UTC"),
        "record_id": pl.Int64(),
        "valid": pl.Boolean(),
    }
)
NO_RANK = 1_000


@dataclass
class FrameDecisions:
    chosen: pl.DataFrame  # key, field, value, source, as_of, record_id
    conflicts: pl.DataFrame  # key, field, kind, candidates (list of struct)


def _rules_frame(table: Survivorship, entity: str, fields: list[str]) -> pl.DataFrame:
    rows: list[dict[str, object]] = []
    for f in fields:
        rule = table.rule(entity, f)
        rows.append({"field": f, "rule": rule.kind, "source": None, "rank": None})
        for i, rank in enumerate(rule.ranks):
            for source in rank:
                rows.append({"field": f, "rule": rule.kind, "source": source, "rank": i})
    return pl.DataFrame(
        rows, schema={"field": pl.String, "rule": pl.String, "source": pl.String, "rank": pl.Int64}
    )


def decide_frame(candidates: pl.DataFrame, table: Survivorship, entity: str) -> FrameDecisions:
    fields = candidates["field"].unique().to_list()
    rules = _rules_frame(table, entity, fields)
    kinds = rules.select("field", "rule").unique()
    ranks = rules.drop_nulls("source").select("field", "source", "rank")
    c = (
        candidates.filter(pl.col("valid") & pl.col("value").is_not_null() & (pl.col("value") != ""))
        .join(kinds, on="field", how="left")
        .join(ranks, on=["field", "source"], how="left")
        .with_columns(
            pl.col("rule").fill_null("latest"),
            pl.col("rank").fill_null(NO_RANK),
            # Nulls sort as the oldest, as in decide().
            pl.col("as_of").fill_null(pl.datetime(1, 1, 1, time_zone="UTC")).alias("_when"),
            pl.col("value").str.strip_chars().alias("_norm"),
        )
    )
    # The most recent first; equal dates to the better rank, then the newer record.
    latest_order = [pl.col("_when"), -pl.col("rank"), pl.col("record_id")]

    def latest(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
        return frame.sort(latest_order, descending=True).group_by(by, maintain_order=True).first()

    out_cols = ["key", "field", "value", "source", "as_of", "record_id"]
    # --- authority: the best rank holding a value; each source's latest value at that rank.
    auth = c.filter(pl.col("rule") == AUTHORITY)
    top = auth.group_by("key", "field").agg(pl.col("rank").min().alias("_top"))
    auth_top = auth.join(top, on=["key", "field"]).filter(pl.col("rank") == pl.col("_top"))
    per_source = latest(auth_top, ["key", "field", "source"])
    auth_chosen = latest(per_source, ["key", "field"]).select(out_cols)
    auth_conflicts = (
        per_source.filter(pl.col("rank") < NO_RANK)  # unlisted sources never conflict
        .group_by("key", "field")
        .agg(pl.col("_norm").n_unique().alias("_n"), pl.struct(out_cols[2:]).alias("candidates"))
        .filter(pl.col("_n") > 1)
        .select("key", "field", pl.lit(AUTHORITY_CONFLICT).alias("kind"), "candidates")
    )
    # When no listed source holds a value, every candidate has NO_RANK: the latest overall wins.
    # --- field: the latest grid-worker check; newer, different department values conflict.
    fld = c.filter(pl.col("rule") == FIELD)
    checks = latest(fld.filter(pl.col("source") == GRID_WORKER_SOURCE), ["key", "field"])
    no_check = fld.join(checks.select("key", "field"), on=["key", "field"], how="anti")
    field_chosen = pl.concat(
        [checks.select(out_cols), latest(no_check, ["key", "field"]).select(out_cols)]
    )
    newer = (
        fld.filter(pl.col("source") != GRID_WORKER_SOURCE, pl.col("as_of").is_not_null())
        .join(
            checks.select(
                "key", "field", pl.col("as_of").alias("_check_at"), pl.col("_norm").alias("_check")
            ),
            on=["key", "field"],
        )
        .filter(
            (pl.col("_check_at").is_null() | (pl.col("as_of") > pl.col("_check_at")))
            & (pl.col("_norm") != pl.col("_check"))
        )
    )
    newest = latest(newer, ["key", "field"])
    field_conflicts = (
        checks.join(newest.select("key", "field"), on=["key", "field"])
        .select("key", "field", pl.struct(out_cols[2:]).alias("_a"))
        .join(
            newest.select("key", "field", pl.struct(out_cols[2:]).alias("_b")), on=["key", "field"]
        )
        .select(
            "key",
            "field",
            pl.lit(FIELD_VS_DEPARTMENT).alias("kind"),
            pl.concat_list("_a", "_b").alias("candidates"),
        )
    )
    # --- latest
    other = c.filter(~pl.col("rule").is_in([AUTHORITY, FIELD]))
    latest_chosen = latest(other, ["key", "field"]).select(out_cols)
    chosen = pl.concat([auth_chosen, field_chosen, latest_chosen]).sort("key", "field")
    conflicts = pl.concat([auth_conflicts, field_conflicts]).sort("key", "field")
    return FrameDecisions(chosen, conflicts)
