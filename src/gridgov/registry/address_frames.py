"""Addresses parsed by the frame: each distinct building-level head parsed once, unit and room by Polars.

Millions of addresses share a few hundred thousand heads ("…中山西路88号天一家园3幢") and differ
only in the tail "2单元501室". `parse_texts` splits every distinct normalised text into that head
and tail with one regular expression, parses each distinct head with the Python parser, and
composes the components. The composition equals `parse(text)` whenever the parser, reading the
whole text, would place the tail exactly as written: the head ends with a door or building marker
(号 幢 栋 座) or a name that is no road, so nothing in the head reads past it; and the head has no
unit, floor or room of its own, so the tail's tokens become the unit and the room. Every other text
(no tail, or a head that fails these conditions) is parsed whole. Texts are normalised by Polars
when they are already in normal form (`normal_form_patterns`), by `normalize_text` otherwise.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import multiprocessing.util as mp_util
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import polars as pl
from sqlalchemy.orm import Session

from gridgov.resolve.address import (
    ParsedAddress,
    default_gazetteer,
    normal_form_patterns,
    normalize_text,
    parse_address,
    parse_normal_address,
)

_PLAIN, _CHANGED = normal_form_patterns()
# Head, then an optional "N单元"/"N单" and an optional "N室"/"N户" (the parser's unit and room
# tokens).
_TAIL = r"^(.*?)(?:([0-9]+)(?:单元|单))?(?:([0-9]+[A-Z]?)[室户])?$"
# A head ending so could be read differently with the tail after it: a number or letter continues
# into the tail's digits, "N楼" looks at the next token, a road name is matched up to a digit.
_HEAD_END_UNSAFE = r"(?:[0-9A-Z\-]|[0-9A-Z][楼层单室户]|[路街巷弄道])$"
# A text ending in a plain door number ("…观海街33号"): parsed as the same text with "1号".
_DOOR_TAIL = r"^(.*[^0-9A-Z\-])([0-9]+)号$"
_DOOR_TEMPLATE = "1号"

PARSED_SCHEMA = {
    "ok": pl.Boolean(),
    "village_code": pl.String(),
    "place": pl.String(),
    "road": pl.String(),
    "door": pl.String(),
    "compound": pl.String(),
    "building": pl.String(),
    "unit": pl.String(),
    "room": pl.String(),
    "normalized": pl.String(),
}


@lru_cache(maxsize=200_000)
def parse(text: str) -> ParsedAddress:
    return parse_address(text, gazetteer=default_gazetteer())


def place_of(p: ParsedAddress) -> str:
    """The first part of `ParsedAddress.key()` (village code, or scope/name)."""
    return p.key().split("|", 1)[0]


def _is_plain(texts: pl.Series) -> pl.Series:
    """Whether each text is already in normal form, by the vectorisable patterns."""
    return texts.str.contains(_PLAIN) & ~texts.str.contains(_CHANGED)


def normalized(texts: pl.Series) -> pl.Series:
    """`normalize_text` of every text: by Polars for texts already in normal form, else in Python
    once per distinct text."""
    frame = pl.DataFrame({"text": texts.cast(pl.String).fill_null("")})
    plain = pl.col("text").str.contains(_PLAIN) & ~pl.col("text").str.contains(_CHANGED)
    odd = frame.filter(~plain).get_column("text").unique()
    if odd.is_empty():
        return frame.get_column("text").alias("norm")
    fixed = pl.DataFrame(
        {"text": odd, "fixed": [normalize_text(t) for t in odd.to_list()]},
        schema={"text": pl.String(), "fixed": pl.String()},
    )
    out = frame.join(fixed, on="text", how="left", maintain_order="left")
    return out.select(pl.coalesce("fixed", "text").alias("norm")).get_column("norm")


# Fewer texts than this are parsed in the calling process (a worker's round trip costs more).
PARALLEL_MIN = 20_000
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
# Stands for "no workers in this process" once a pool broke (or could not start).
_NO_POOL = cast(ProcessPoolExecutor, object())


def _parse_pool() -> tuple[ProcessPoolExecutor | None, int]:
    """The worker processes that parse beside this one (`GRIDGOV_PARSE_WORKERS`; made when first
    needed, kept for the process's life): none when set to 0."""
    global _pool, _pool_size
    if _pool is _NO_POOL:
        return None, 0
    if _pool is None:
        from gridgov.config import Settings

        size = Settings().parse_workers
        if size < 0:  # -1: one per CPU but this one
            size = max(0, (os.cpu_count() or 1) - 1)
        if size == 0:
            return None, 0
        _pool = ProcessPoolExecutor(max_workers=size, mp_context=mp.get_context("spawn"))
        _pool_size = size
        # Shut down before the process exits: a process started by multiprocessing (a resolution
        # step) runs no atexit hooks and waits for its children at exit; these finalizers run
        # before that wait, in any process, by priority: above the pool's own queues' (10), which
        # would otherwise close first and leave the workers waiting for their stop signal.
        mp_util.Finalize(_pool, _pool.shutdown, kwargs={"cancel_futures": True}, exitpriority=100)
    return _pool, _pool_size


def _parsed_rows(heads: pl.Series, *, whole: bool, door: bool = False) -> pl.DataFrame:
    """The parse of each text given (distinct), one row each, with `ok`: whether it may be used
    as a head (or door template).

    The parser is Python: for many texts, runs of them go to worker processes while this one
    parses the first run, so both cores of a two-core machine parse (the database waits
    meanwhile). The rows are the same and in the same order either way."""
    texts = heads.cast(pl.String).to_list()
    pool, size = _parse_pool() if len(texts) >= PARALLEL_MIN else (None, 0)
    if pool is None:
        return _parse_run(texts, whole, door)
    step = -(-len(texts) // (size + 1))
    runs = [texts[i : i + step] for i in range(0, len(texts), step)]
    try:
        futures = [pool.submit(_parse_run, run, whole, door) for run in runs[1:]]
    except (BrokenProcessPool, RuntimeError):  # workers cannot start here: parse in this one
        _drop_pool()
        return _parse_run(texts, whole, door)
    try:
        first = _parse_run(runs[0], whole, door)
        rest = []
        for run, future in zip(runs[1:], futures, strict=True):
            try:
                rest.append(future.result())
            except BrokenProcessPool:  # a worker died (killed, out of memory): parse it here
                _drop_pool()
                rest.append(_parse_run(run, whole, door))
        return pl.concat([first, *rest], how="vertical")
    finally:
        for f in futures:
            f.cancel()


def _drop_pool() -> None:
    """Forget a broken pool and parse in this process from now on."""
    global _pool, _pool_size
    if _pool is not None and _pool is not _NO_POOL:
        _pool.shutdown(wait=False, cancel_futures=True)
    _pool, _pool_size = _NO_POOL, 0


def _parse_run(texts: list[str], whole: bool, door: bool) -> pl.DataFrame:
    """`_parsed_rows` of one run of texts, in this process (module level: it runs in workers)."""
    gazetteer = default_gazetteer()
    heads = pl.Series(texts, dtype=pl.String())
    normal = _is_plain(heads).to_list()
    rows = []
    for h, is_normal in zip(texts, normal, strict=True):
        # Each text is parsed once, so no cache; a text in normal form is not normalised again.
        if is_normal:
            p = parse_normal_address(h, gazetteer=gazetteer)
        else:
            p = parse_address(h, gazetteer=gazetteer)
        if door:  # a template "…1号": the door is its last part
            ok = p.door == _DOOR_TEMPLATE and not (
                p.compound or p.building or p.unit or p.floor or p.room
            )
        else:
            ok = whole or (
                p.unit is None
                and p.floor is None
                and p.room is None
                and bool(p.road or p.door or p.compound or p.building)
            )
        rows.append(
            (ok, p.village_code, place_of(p), p.road, p.door, p.compound, p.building,
             p.unit, p.room, p.normalized)
        )  # fmt: skip
    return pl.DataFrame(rows, schema=PARSED_SCHEMA, orient="row")


def parse_texts(texts: pl.Series) -> pl.DataFrame:
    """One row per distinct input text: `text`, and from its parse `village_code`, `place` (the
    key's first part), `road`, `door`, `compound`, `building`, `unit`, `room`, `normalized`
    (`ParsedAddress.normalized`) and `key` (`ParsedAddress.key()`); strings, nulls for absent parts.
    """
    distinct = texts.cast(pl.String).fill_null("").unique(maintain_order=True).rename("text")
    frame = pl.DataFrame({"text": distinct}).with_columns(normalized(distinct))
    parts = pl.col("norm").str.extract_groups(_TAIL)
    frame = frame.with_columns(
        parts.struct.field("1").alias("head"),
        parts.struct.field("2").alias("t_unit"),
        parts.struct.field("3").alias("t_room"),
    )
    has_tail = pl.col("t_unit").is_not_null() | pl.col("t_room").is_not_null()
    safe = has_tail & (pl.col("head") != "") & ~pl.col("head").str.contains(_HEAD_END_UNSAFE)
    frame = frame.with_columns(safe.alias("split"))
    heads = frame.filter("split").get_column("head").unique()
    parsed_heads = _parsed_rows(heads, whole=False).with_columns(heads)
    frame = frame.join(parsed_heads, on="head", how="left", maintain_order="left")
    # A head that fails the conditions: its texts are parsed whole, with the texts without a tail.
    frame = frame.with_columns((pl.col("split") & pl.col("ok").fill_null(False)).alias("split"))
    composed = frame.filter("split").select(
        "text",
        "village_code",
        "place",
        "road",
        "door",
        "compound",
        "building",
        (pl.col("t_unit") + "单元").alias("unit"),
        (pl.col("t_room") + "室").alias("room"),
        pl.concat_str(
            "normalized", pl.col("t_unit") + "单元", pl.col("t_room") + "室", ignore_nulls=True
        ).alias("normalized"),
    )
    # Plain door numbers at the end: one parse per text with the number replaced.
    doors = pl.col("norm").str.extract_groups(_DOOR_TAIL)
    frame = frame.with_columns(
        pl.when(~pl.col("split")).then(doors.struct.field("1") + _DOOR_TEMPLATE).alias("template"),
        pl.when(~pl.col("split")).then(doors.struct.field("2") + "号").alias("t_door"),
    )
    templates = frame.get_column("template").drop_nulls().unique()
    parsed_templates = _parsed_rows(templates, whole=False, door=True).with_columns(templates)
    frame = frame.join(
        parsed_templates.select(pl.all().name.prefix("d_")).rename({"d_template": "template"}),
        on="template",
        how="left",
        maintain_order="left",
    ).with_columns(pl.col("d_ok").fill_null(False))
    by_door = frame.filter("d_ok").select(
        "text",
        pl.col("d_village_code").alias("village_code"),
        pl.col("d_place").alias("place"),
        pl.col("d_road").alias("road"),
        pl.col("t_door").alias("door"),
        *(pl.lit(None, pl.String()).alias(c) for c in ("compound", "building", "unit", "room")),
        pl.concat_str(pl.col("d_normalized").str.strip_suffix(_DOOR_TEMPLATE), "t_door").alias(
            "normalized"
        ),
    )
    frame = frame.filter(~pl.col("d_ok"))
    whole = frame.filter(~pl.col("split")).get_column("norm").unique()
    parsed_whole = _parsed_rows(whole, whole=True).with_columns(whole)
    rest = (
        frame.filter(~pl.col("split"))
        .select("text", "norm")
        .join(parsed_whole, on="norm", how="left", maintain_order="left")
        .select("text", *(c for c in PARSED_SCHEMA if c != "ok"))
    )
    out = pl.concat([composed, by_door, rest], how="vertical")
    return out.with_columns(
        pl.concat_str(
            pl.col("place"),
            *(pl.col(c).fill_null("") for c in ("road", "door", "building", "unit", "room")),
            separator="|",
        ).alias("key")
    )


# ------------------------------------------------------------------------------ reading


def query_frame(session: Session, sql: str, schema: dict[str, Any]) -> pl.DataFrame:
    """The rows of a fixed SQL query as a frame, straight from the driver (PostgreSQL COPY)."""
    conn = session.connection()
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101 (an open DBAPI connection)
    if conn.dialect.name == "postgresql":
        buf = io.BytesIO()
        with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
            for data in copy:
                buf.write(data)
        buf.seek(0)
        if not buf.getbuffer().nbytes:
            return pl.DataFrame(schema=schema)
        return pl.read_csv(buf, has_header=False, new_columns=list(schema), schema=schema)
    cur = raw.cursor()
    try:
        cur.execute(sql)
        frames = []
        while rows := cur.fetchmany(200_000):
            frames.append(pl.DataFrame(rows, schema=schema, orient="row"))
    finally:
        cur.close()
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="vertical")


def in_chunks(frame: pl.DataFrame, size: int = 100_000) -> Sequence[pl.DataFrame]:
    return [frame.slice(i, size) for i in range(0, frame.height, size)]


def text_keys(texts: pl.Expr) -> list[pl.Expr]:
    """A text's two 64-bit hashes (`_h1`, `_h2`): frames of millions of addresses join on these
    instead of holding the texts."""
    return [texts.hash(seed=7).alias("_h1"), texts.hash(seed=11).alias("_h2")]


def road_door_key() -> pl.Expr:
    """`addr` over `parse_texts` columns: road|door|building|unit|room when the parse found a
    road and a door number, else null (the person matcher's address block and comparison)."""
    return (
        pl.when((pl.col("road").fill_null("") != "") & (pl.col("door").fill_null("") != ""))
        .then(
            pl.concat_str(
                *(pl.col(c).fill_null("") for c in ("road", "door", "building", "unit", "room")),
                separator="|",
            )
        )
        .alias("addr")
    )


def parsed_addr(texts: pl.Series, kept: Path | None = None) -> pl.DataFrame:
    """`text`, `addr` (`road_door_key`) of each distinct text: read from the parses `kept` (a
    folder `_match_ids` wrote) where there, parsed here for the rest."""
    distinct = texts.cast(pl.String).drop_nulls().unique().rename("text").to_frame()
    distinct = distinct.with_columns(text_keys(pl.col("text")))
    known = pl.DataFrame(schema={"text": pl.String(), "addr": pl.String()})
    if kept is not None and any(kept.glob("*.parquet")):
        hit = (
            pl.scan_parquet(kept / "*.parquet")
            .join(distinct.lazy(), on=["_h1", "_h2"], how="inner")
            .unique(["_h1", "_h2"])
            .collect()
        )
        known = hit.select("text", "addr")
        distinct = distinct.join(hit.select("_h1", "_h2"), on=["_h1", "_h2"], how="anti")
    if distinct.is_empty():
        return known
    fresh = parse_texts(distinct.get_column("text")).select("text", road_door_key())
    return pl.concat([known, fresh], how="vertical_relaxed")
