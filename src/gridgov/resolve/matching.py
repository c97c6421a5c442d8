"""Probabilistic person matching (Fellegi–Sunter, Splink on DuckDB) for records without a valid ID.

Records that carry a valid ID number are linked by it (`registry.golden`); the rest — health
records of children, hand-typed IDs with a wrong digit, a name written with a homophone — are
compared here with the golden persons and with each other. The model's m and u probabilities are
set from domain knowledge in one table (`LEVELS`), not trained, so a run is deterministic and
explainable on a village and on a city alike:

- names compare exactly, then by pinyin (同音字: 张伟 / 张玮), then by Jaro–Winkler on pinyin;
- birth dates exactly, then the same month, then the same year;
- an ID number within two edits of the other's is strong evidence for a match (a typo); two
  different ID numbers are strong evidence against (twins share birth date, surname and address);
- phone and the address's road, door, building, unit and room add evidence when present.

Fields are not independent for twins (same birth date, surname and room), so a pair whose names
differ by more than sound is accepted only when the phone or an ID number agrees as well.
Clusters never merge two golden persons: a record pulled towards two of them joins the better.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

THRESHOLD = 0.99
# The u probabilities describe a city: the prior odds of a random pair are those of a city too,
# however few records a run compares (a village's re-run must not believe namesakes more).
POPULATION_FLOOR = 100_000
GOLDEN, MENTION = "golden", "mention"


def pinyin(name: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(name)) if name else ""


def _level(sql: str, label: str, m: float, u: float) -> dict[str, Any]:
    return {"sql_condition": sql, "label_for_charts": label, "m_probability": m, "u_probability": u}


def _null(col: str) -> dict[str, Any]:
    return {
        "sql_condition": f'"{col}_l" IS NULL OR "{col}_r" IS NULL',
        "label_for_charts": "null",
        "is_null_level": True,
    }


# (column, [levels]): m = P(level | same person), u = P(level | different people).
LEVELS: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "name",
        [
            _null("name"),
            _level('"name_l" = "name_r"', "exact", 0.80, 0.0005),
            _level('"py_l" = "py_r"', "same pinyin", 0.10, 0.0015),
            _level('jaro_winkler_similarity("py_l", "py_r") >= 0.9', "pinyin ≥ 0.9", 0.095, 0.01),
            # Twins share surname, birth date and address: a different name must weigh heavily.
            _level("ELSE", "different", 0.005, 0.988),
        ],
    ),
    (
        "dob",
        [
            _null("dob"),
            _level('"dob_l" = "dob_r"', "exact", 0.90, 0.00004),
            _level('substr("dob_l", 1, 7) = substr("dob_r", 1, 7)', "same month", 0.04, 0.001),
            _level('substr("dob_l", 1, 4) = substr("dob_r", 1, 4)', "same year", 0.03, 0.013),
            _level("ELSE", "different", 0.03, 0.986),
        ],
    ),
    (
        "sex",
        [
            _null("sex"),
            _level('"sex_l" = "sex_r"', "same", 0.98, 0.5),
            _level("ELSE", "different", 0.02, 0.5),
        ],
    ),
    (
        "cid",
        [
            _null("cid"),
            _level('levenshtein("cid_l", "cid_r") <= 2', "≤ 2 edits", 0.90, 1e-7),
            _level("ELSE", "different", 0.01, 0.9999999),
        ],
    ),
    (
        "phone",
        [
            _null("phone"),
            _level('"phone_l" = "phone_r"', "same", 0.70, 1e-6),
            _level("ELSE", "different", 0.30, 0.999999),
        ],
    ),
    (
        "addr",
        [
            _null("addr"),
            _level('"addr_l" = "addr_r"', "same room", 0.60, 0.0002),
            _level('"door_l" = "door_r"', "same door", 0.20, 0.002),
            _level("ELSE", "different", 0.20, 0.9978),
        ],
    ),
]
COLUMNS = (
    "unique_id",
    "name",
    "py",
    "surname",
    "given",
    "dob",
    "byear",
    "sex",
    "cid",
    "phone",
    "addr",
    "door",
)


@dataclass(frozen=True)
class Person:
    """One side of a comparison: a golden person or a source record."""

    uid: str
    name: str
    dob: str | None = None
    sex: str | None = None
    cid: str | None = None  # any ID number text: valid on golden persons, as typed on records
    phone: str | None = None
    addr: str | None = None  # road|door|building|unit|room of the parsed address
    door: str | None = None  # road|door


def _table(people: Sequence[Person]) -> pa.Table:
    frame = pl.DataFrame(
        {
            "uid": [p.uid for p in people],
            "name": [p.name for p in people],
            "dob": [p.dob for p in people],
            "sex": [p.sex for p in people],
            "cid": [p.cid for p in people],
            "phone": [p.phone for p in people],
            "addr": [p.addr for p in people],
            "door": [p.door for p in people],
        },
        schema=dict.fromkeys(SIDE_COLUMNS, pl.String()),
    )
    return side_frame(frame).to_arrow()


# The columns of a side given to `side_frame`, as in `Person`.
SIDE_COLUMNS = ("uid", "name", "dob", "sex", "cid", "phone", "addr", "door")


@lru_cache(maxsize=1)
def _phrases() -> frozenset[str]:
    from pypinyin.constants import PHRASES_DICT

    return frozenset(PHRASES_DICT)


@lru_cache(maxsize=50_000)
def _char_pinyin(char: str) -> str:
    return pinyin(char)


def fast_pinyin(text: str) -> str:
    """`pinyin(text)`, by the characters' own readings when no two or more of them form a word
    of pypinyin's phrase dictionary (then its segmentation reads them one by one too); otherwise
    by `pinyin`. About fifteen times faster on names, which are seldom words."""
    phrases = _phrases()
    n = len(text)
    for i in range(n - 1):
        for j in range(i + 2, n + 1):
            if text[i:j] in phrases:
                return pinyin(text)
    return "".join(_char_pinyin(c) for c in text)


def pinyins(texts: pl.Series) -> pl.Series:
    """`pinyin` of each text, computed once per distinct text (empty for null)."""
    distinct = texts.fill_null("").unique()
    table = pl.DataFrame(
        {"_t": distinct, "_py": [fast_pinyin(t) for t in distinct.to_list()]},
        schema={"_t": pl.String(), "_py": pl.String()},
    )
    out = pl.DataFrame({"_t": texts.fill_null("")}).join(
        table, on="_t", how="left", maintain_order="left"
    )
    return out.get_column("_py").alias(texts.name)


def _empty(col: str) -> pl.Expr:
    """The column with empty strings as nulls."""
    return pl.when(pl.col(col) != "").then(pl.col(col))


def side_frame(people: pl.DataFrame) -> pl.DataFrame:
    """A side for `match_frames` from a frame of `SIDE_COLUMNS` (strings, as `Person`): the
    comparison columns (`COLUMNS`) with pinyin (whole, surname, given name) and birth year derived, once per distinct
    name."""
    name = pl.col("name").fill_null("")
    frame = people.select(
        pl.col("uid").cast(pl.String).alias("unique_id"),
        name.alias("name"),
        pl.col("dob"),
        pl.col("sex"),
        pl.col("cid"),
        pl.col("phone"),
        pl.col("addr"),
        pl.col("door"),
    )
    py = pinyins(frame.get_column("name"))
    surname = pinyins(frame.get_column("name").str.slice(0, 1))
    given = pinyins(frame.get_column("name").str.slice(1))
    return frame.with_columns(
        py.alias("py"), surname.alias("surname"), given.alias("given")
    ).select(
        _empty("unique_id").alias("unique_id"),
        _empty("name").alias("name"),
        _empty("py").alias("py"),
        _empty("surname").alias("surname"),
        _empty("given").alias("given"),
        _empty("dob").alias("dob"),
        _empty("dob").str.slice(0, 4).alias("byear"),
        pl.when(pl.col("sex").is_in(["1", "2"])).then(pl.col("sex")).alias("sex"),
        *(_empty(c).alias(c) for c in ("cid", "phone", "addr", "door")),
    )


@dataclass
class Matches:
    to_golden: dict[str, tuple[str, float]]  # record uid → (golden uid, probability)
    new_clusters: list[list[str]]  # records that match no golden person, grouped (singletons too)
    pairs: int


def match(
    golden: Sequence[Person], records: Sequence[Person], *, threshold: float = THRESHOLD
) -> Matches:
    if not records:
        return Matches({}, [], 0)
    return match_tables(
        pl.from_arrow(_table(golden)) if golden else None,  # type: ignore[arg-type]
        pl.from_arrow(_table(records)),  # type: ignore[arg-type]
        threshold=threshold,
    )


def _blocks(*cols: str) -> str:
    """An equality blocking rule that leaves out pairs of two golden persons: they are distinct
    by their ID numbers and `_cluster` drops such pairs, so comparing them is wasted work (at city
    scale, most of it: millions of golden persons share birth dates)."""
    same = " AND ".join(f'l."{c}" = r."{c}"' for c in cols)
    return f"{same} AND NOT (l.source_dataset = '{GOLDEN}' AND r.source_dataset = '{GOLDEN}')"


# A side of a comparison: a frame of `COLUMNS` (`side_frame`), or Parquet files of one (a file,
# or a glob such as "dir/*.parquet"), which DuckDB reads itself: then nothing of the side is held
# in Python while the matcher runs.
Side = pl.DataFrame | str


def _height(side: Side) -> int:
    if isinstance(side, pl.DataFrame):
        return side.height
    return int(pl.scan_parquet(side).select(pl.len()).collect().item())


def match_tables(
    golden: Side | None,
    records: Side,
    *,
    threshold: float = THRESHOLD,
    population: int | None = None,
    memory_limit: str | None = None,
    spill_dir: Path | None = None,
) -> Matches:
    """`match` for sides already made by `side_frame` (columns `COLUMNS`). `population`: the
    number of golden persons and records the sides were taken from, when the golden side was cut
    down to the persons that share a blocking key with a record (the prior odds stay the city's).
    `memory_limit` (DuckDB's form, "1GB") bounds DuckDB's memory; beyond it, it spills to
    `spill_dir`. Sides given as Parquet are read by DuckDB, within that bound.
    """
    record_count = _height(records)
    if record_count == 0:
        return Matches({}, [], 0)
    from splink import Linker, SettingsCreator
    from splink.backends.duckdb import DuckDBAPI

    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.WARNING)
    comparisons = [
        {"output_column_name": col, "comparison_levels": levels} for col, levels in LEVELS
    ]
    golden_count = 0 if golden is None else _height(golden)
    if golden is None or golden_count == 0:
        golden = pl.DataFrame(
            [{c: None for c in COLUMNS} | {"unique_id": "__none__"}],
            schema=dict.fromkeys(COLUMNS, pl.String()),
        )
    sizes = golden_count + record_count
    total = population if population is not None else sizes
    # SQL strings are blocking rules to Splink as block_on's are (its stubs list only the latter).
    # Birth date alone is not a block: a city has ~180 persons per date, and Splink's self-join
    # evaluates every pair of them (golden–golden pairs are dropped only after the join), about
    # a billion pairs at city scale. With the surname's or the given name's sound it keeps a
    # typo in either part of the name.
    blocking: list[Any] = [
        _blocks("dob", "surname"),
        _blocks("dob", "given"),
        _blocks("phone"),
        _blocks("py", "byear"),
        _blocks("addr", "surname"),
        _blocks("cid"),
    ]
    settings = SettingsCreator(
        link_type="link_and_dedupe",
        unique_id_column_name="unique_id",
        comparisons=comparisons,  # type: ignore[arg-type]
        blocking_rules_to_generate_predictions=blocking,
        probability_two_random_records_match=1.0 / max(total, POPULATION_FLOOR),
        retain_intermediate_calculation_columns=False,
    )
    import duckdb

    con = duckdb.connect()
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute("SET preserve_insertion_order = false")
    if spill_dir is not None:
        con.execute(f"SET temp_directory = '{spill_dir}'")
    db = DuckDBAPI(connection=con)
    # The dataset column given, so the blocking rules may name it.
    tables = [_register(con, db, golden, GOLDEN), _register(con, db, records, MENTION)]
    linker = Linker(tables, settings, log_level=logging.WARNING)
    try:
        predicted: Any = linker.inference.predict(threshold_match_probability=threshold)
        # Only the columns used below, and never a golden–golden pair (`_cluster` drops them):
        # the prediction table itself stays in DuckDB.
        pred = con.sql(
            "SELECT source_dataset_l, unique_id_l, source_dataset_r, unique_id_r, "  # noqa: S608
            "match_probability, gamma_name, gamma_cid, gamma_phone "
            f"FROM {predicted.physical_name} WHERE NOT (source_dataset_l = '{GOLDEN}' "
            f"AND source_dataset_r = '{GOLDEN}')"
        ).pl()
    finally:
        con.close()  # DuckDB's memory goes back before the caller goes on
    kept = pred.filter(_corroborated()).with_columns(
        pl.col("unique_id_l").cast(pl.String), pl.col("unique_id_r").cast(pl.String)
    )
    del pred
    uids = (
        records.get_column("unique_id")
        if isinstance(records, pl.DataFrame)
        else pl.read_parquet(records, columns=["unique_id"]).get_column("unique_id")
    )
    return _cluster(kept.to_dicts(), uids.to_list())


def _register(con: Any, db: Any, side: Side, name: str) -> Any:
    """A side as Splink's input table `name`, with its dataset column: a frame through Arrow,
    Parquet as a view DuckDB reads from the files."""
    if isinstance(side, pl.DataFrame):
        return db.register(
            side.select(*COLUMNS, pl.lit(name).alias("source_dataset")).to_arrow(),
            table_name=name,
        )
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    path = side.replace("'", "''")
    con.execute(
        f"CREATE VIEW {name}_files AS SELECT {columns}, '{name}' AS source_dataset "  # noqa: S608
        f"FROM read_parquet('{path}')"
    )
    return db.register(f"{name}_files", table_name=name)


def _corroborated() -> pl.Expr:
    """Fellegi–Sunter treats fields as independent; twins break that (same birth date, surname
    and room). A pair whose names differ by more than sound therefore needs an identifier to
    agree too: the phone, or an ID number within two edits; and names that are not even similar
    are never the same person, whatever else agrees (a mistyped ID of someone else)."""
    name = pl.col("gamma_name")
    return (name != 0) & (
        (name >= 2) | (name == -1) | (pl.col("gamma_cid") == 1) | (pl.col("gamma_phone") == 1)
    )


def _cluster(rows: list[dict[str, Any]], uids: Sequence[str]) -> Matches:
    best: dict[str, tuple[str, float]] = {}
    record_edges: list[tuple[str, str]] = []
    for r in rows:
        ds_l, id_l = r["source_dataset_l"], str(r["unique_id_l"])
        ds_r, id_r = r["source_dataset_r"], str(r["unique_id_r"])
        p = float(r["match_probability"])
        if ds_l == GOLDEN and ds_r == GOLDEN:
            continue  # golden persons are distinct by their ID numbers
        if GOLDEN in (ds_l, ds_r):
            gold, rec = (id_l, id_r) if ds_l == GOLDEN else (id_r, id_l)
            if rec not in best or p > best[rec][1]:
                best[rec] = (gold, p)
        else:
            record_edges.append((id_l, id_r))
    # Records linked to each other follow their golden person; the rest form new persons.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for uid in uids:
        find(uid)
    for left, right in record_edges:
        parent[find(left)] = find(right)
    groups: dict[str, list[str]] = {}
    for uid in list(parent):
        groups.setdefault(find(uid), []).append(uid)
    to_golden = dict(best)
    new_clusters: list[list[str]] = []
    for members in groups.values():
        anchored = {best[m][0] for m in members if m in best}
        loose = sorted(m for m in members if m not in best)
        if len(anchored) == 1:
            target = max((best[m] for m in members if m in best), key=lambda t: t[1])
            for m in loose:
                to_golden[m] = target
        elif loose:
            # No golden person, or members pulled towards different ones: the unanchored
            # records stay together as a person of their own rather than guess between them.
            new_clusters.append(loose)
    return Matches(to_golden, new_clusters, len(rows))
