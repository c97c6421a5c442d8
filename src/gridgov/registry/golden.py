"""Golden records from source records: deterministic links by identifier, survivorship, tasks.

Records that carry a valid citizen ID number (persons) or unified social credit code
(organizations) are linked by it: one golden record per identifier, so ids stay stable across
re-runs. Each field's value is chosen by the survivorship table over every linked record
(`survive_frame`), with its provenance; conflicts open a check task for the leader of the
record's grid, at most one open task per record and field however often the conflict is seen.
Records without a valid identifier are matched probabilistically (`resolve.matching`).

Columnar and memory-bounded, for a city (13.5 million person records, 5 million persons): source
records are streamed as Polars frames (`registry.frames`), kept in compact columns and spilled to
Parquet in a temporary directory, partitioned by golden id; survivorship runs part by part, so the
working set is one part's candidates. Writes are bulk loads: COPY / executemany into the table or
a temporary table, then one INSERT … ON CONFLICT or UPDATE … FROM (`db.bulk`, `db.bulk_update`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridgov.db.bulk import copy_frame
from gridgov.db.bulk_update import deferred_indexes, update_from_frame, write_cache
from gridgov.ingest.mapping import shipped_mappings
from gridgov.registry.address_frames import query_frame
from gridgov.registry.frames import bad_fields, source_frames
from gridgov.registry.ids import reserve_ids as _reserve_ids
from gridgov.registry.integrity import check_references
from gridgov.registry.models import (
    CheckTask,
    KeyPersonTag,
    Organization,
    Person,
    PersonOrg,
    RecordLink,
)
from gridgov.registry.places import Placement
from gridgov.registry.survive_frame import CANDIDATE_SCHEMA, FrameDecisions, decide_frame
from gridgov.registry.survivorship import Survivorship, shipped_survivorship

# Source records per survivorship part: a part's candidates and their sorts stay under a GB
# (measured at S = 0.25: a part of 400 k records added about 1 GB at its peak, one of 200 k about
# 0.6 GB, in the same time overall).
PART_RECORDS = 200_000
CHUNK = 200_000
# DuckDB's share while the matcher runs (it spills beyond it).
MATCH_MEMORY = "1GB"
GOLDEN_SLICE = 500_000  # golden persons parsed and cut to the blocks at a time
PERSON_FIELDS = (
    "citizen_id",
    "name",
    "sex",
    "birth_date",
    "ethnicity",
    "phone",
    "registered_address",
    "actual_address",
    "residence_status",
)
ORG_FIELDS = (
    "credit_code",
    "name",
    "legal_rep_name",
    "legal_rep_id",
    "address",
    "status",
    "founded_on",
    "industry",
    "phone",
    "hazardous",
)
TAG_FIELDS = ("tag_class", "subtype", "risk_level", "valid_from", "valid_to")
# Identifier fields whose flag (set at import when the check failed) makes a value untrusted.
FLAGGED = ("citizen_id", "phone", "credit_code", "legal_rep_id", "tenant_id", "owner_id")
DATE_FIELDS = ("birth_date", "founded_on")
_UTC = pl.Datetime("us", "UTC")


@dataclass
class ResolveStats:
    records: int = 0
    linked: int = 0
    unlinked: int = 0  # no valid identifier: left for probabilistic matching
    created: int = 0
    updated: int = 0
    tasks_opened: int = 0
    tags: int = 0
    links: int = 0
    extra: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------------ spilling


@contextmanager
def _spill_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gridgov_golden_"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class _Spilled:
    """Source records in compact columns, one Parquet file per streamed chunk."""

    root: Path
    chunks: list[Path]
    count: int
    idents: pl.DataFrame  # record_id, ident: the records with a valid identifier


def _spill(
    session: Session,
    root: Path,
    kinds: Sequence[str],
    fields: Sequence[str],
    ident: str,
    ident_ok: pl.Expr,
) -> _Spilled:
    """Stream the records of `kinds` to Parquet; keep aside each valid identifier (`ident_ok`)."""
    (root / "records").mkdir()
    chunks, idents, count = [], [], 0
    # Closed on any error too: the reading thread holds the connection until then.
    with closing(source_frames(session, kinds, fields, chunk=CHUNK)) as frames:
        for i, frame in enumerate(frames):
            compact = frame.select(
                pl.col("id").alias("record_id"),
                pl.col("source").cast(pl.Categorical()),
                pl.col("dataset").cast(pl.Categorical()),
                pl.col("kind").cast(pl.Categorical()),
                "as_of",
                "loaded_at",
                pl.col("grid_code").cast(pl.Categorical()),
                bad_fields(pl.col("flags")).alias("bad"),
                *fields,
            )
            count += compact.height
            idents.append(
                compact.filter(
                    pl.col(ident).is_not_null()
                    & ~pl.col("bad").list.contains(ident).fill_null(False)
                    & ident_ok
                ).select("record_id", pl.col(ident).alias("ident"))
            )
            path = root / "records" / f"{i:05d}.parquet"
            compact.write_parquet(path)
            chunks.append(path)
    ident_frame = (
        pl.concat(idents)
        if idents
        else pl.DataFrame(schema={"record_id": pl.Int64(), "ident": pl.String()})
    )
    return _Spilled(root, chunks, count, ident_frame)


def _partition(spilled: _Spilled, key_of: pl.DataFrame) -> tuple[list[Path], Path]:
    """Records with a golden key into parts by key (each key's records in one part); the others
    into one folder. Returns the parts' folders and the unlinked folder."""
    parts = max(1, -(-spilled.count // PART_RECORDS))
    dirs = [spilled.root / f"part{k:04d}" for k in range(parts)]
    # Parts by contiguous ranges of golden id (not id modulo parts): new golden records are then
    # written part after part in ascending id order, each an append to the table and its id index.
    lo, hi = (
        key_of.select(
            pl.col("key").min().fill_null(0).alias("lo"),
            pl.col("key").max().fill_null(0).alias("hi"),
        ).row(0)
        if not key_of.is_empty()
        else (0, 0)
    )
    span = hi - lo + 1
    unlinked = spilled.root / "unlinked"
    for d in (*dirs, unlinked):
        d.mkdir()
    # Chunks hold ascending record ids: each meets only its own range of the (sorted) keys, not
    # all of them (at city scale 13 million, hashed again for each of some seventy chunks).
    key_of = key_of.sort("record_id")
    ids = key_of.get_column("record_id")
    for i, path in enumerate(spilled.chunks):
        records = pl.read_parquet(path)
        first, last = records.select(
            pl.col("record_id").min().alias("first"), pl.col("record_id").max().alias("last")
        ).row(0)
        start = int(ids.search_sorted(first, "left")) if first is not None else 0
        end = int(ids.search_sorted(last, "right")) if last is not None else 0
        records = records.join(key_of.slice(start, end - start), on="record_id", how="left")
        records.filter(pl.col("key").is_null()).drop("key").write_parquet(
            unlinked / f"{i:05d}.parquet"
        )
        linked = records.filter(pl.col("key").is_not_null())
        split = linked.with_columns(
            ((pl.col("key") - lo) * parts // span).alias("_part")
        ).partition_by("_part", as_dict=True, include_key=False)
        for (k,), part in split.items():
            part.write_parquet(dirs[int(k)] / f"{i:05d}.parquet")
        path.unlink()
    return dirs, unlinked


def _key_chunks(records: pl.DataFrame, size: int) -> list[pl.Series]:
    """The keys of `records` in ascending runs holding about `size` records each (a key's
    records never split; a key with more than `size` records is a run of its own)."""
    per_key = (
        records.group_by("key")
        .len()
        .sort("key")
        .with_columns(((pl.col("len").cum_sum() - pl.col("len")) // size).alias("_chunk"))
    )
    return [
        part.get_column("key")
        for part in per_key.partition_by("_chunk", maintain_order=True, include_key=False)
    ]


def _read_dir(path: Path) -> pl.DataFrame | None:
    files = sorted(path.glob("*.parquet"))
    if not files:
        return None
    return pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")


# ------------------------------------------------------------------------------ survivorship


def _candidates(records: pl.DataFrame, fields: Sequence[str]) -> pl.DataFrame:
    """One row per non-empty field value of each record (`CANDIDATE_SCHEMA`), by unpivot."""
    index = ["key", "record_id", "source", "as_of"]
    long = (
        records.select(*index, *fields)
        .unpivot(index=index, on=list(fields), variable_name="field", value_name="value")
        .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    )
    bad = (
        records.select("record_id", pl.col("bad").alias("field"))
        .explode("field")
        .drop_nulls()
        .unique()
        .with_columns(pl.lit(False).alias("valid"))
    )
    return (
        long.join(bad, on=["record_id", "field"], how="left")
        .with_columns(pl.col("valid").fill_null(True))
        .select(
            pl.col(c).cast(t) if c != "as_of" else pl.col(c).cast(_UTC)
            for c, t in CANDIDATE_SCHEMA.items()
        )
    )


def _iso(col: pl.Expr) -> pl.Expr:
    """`datetime.isoformat()` of UTC datetimes (microseconds only when there are some)."""
    return (
        pl.when(col.dt.microsecond() != 0)
        .then(col.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z"))
        .otherwise(col.dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    )


@dataclass
class _Decided:
    updates: pl.DataFrame  # one row per key: the table's columns to set
    tasks: pl.DataFrame  # key, field, kind, candidates (JSON text)


def confirmed_answers(session: Session, entity: str) -> pl.DataFrame:
    """The legal facts grid workers confirmed on resolved check tasks of `entity` ("person",
    "org"): key, field, the confirmed value and source, and the values the task offered
    (`values`); the latest answer per record and field."""
    rows = session.execute(
        select(CheckTask.entity_id, CheckTask.field, CheckTask.candidates, CheckTask.resolution)
        .where(CheckTask.entity == entity, CheckTask.status == "resolved")
        .order_by(CheckTask.resolved_at, CheckTask.id)
    ).all()
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for key, name, candidates, resolution in rows:
        chosen = (resolution or {}).get("candidate")
        if not chosen or chosen.get("value") in (None, ""):
            continue  # a field fact (a WG check, which survivorship reads) or a referral
        values = [str(c.get("value")).strip() for c in candidates or [] if c.get("value")]
        out[(key, name)] = {"key": key, "field": name, "c_value": str(chosen["value"]).strip(),
                            "c_source": chosen.get("source") or "", "c_values": values}  # fmt: skip
    schema = {"key": pl.Int64(), "field": pl.String(), "c_value": pl.String(),
              "c_source": pl.String(), "c_values": pl.List(pl.String())}  # fmt: skip
    return pl.DataFrame(list(out.values()), schema=schema)


def _keep_confirmed(decisions: FrameDecisions, confirmed: pl.DataFrame) -> FrameDecisions:
    """A conflict a grid worker settled stays settled while the departments offer nothing new:
    when every value now in conflict was among the task's candidates and the confirmed value is
    still one of them, the confirmed candidate is chosen and no task opens again. A value the
    task did not offer is new information: the conflict opens as before."""
    conflicts = decisions.conflicts
    if confirmed.is_empty() or conflicts.is_empty():
        return decisions
    offered = conflicts.join(confirmed, on=["key", "field"], how="inner").filter(
        pl.col("candidates")
        .list.eval(pl.element().struct.field("value").str.strip_chars())
        .list.set_difference(pl.col("c_values"))
        .list.len()
        == 0
    )
    pick = (
        offered.explode("candidates")
        .unnest("candidates")
        .filter(pl.col("value").str.strip_chars() == pl.col("c_value"))
        .sort(pl.col("source") == pl.col("c_source"), "record_id", descending=True)
        .group_by("key", "field", maintain_order=True)
        .first()
        .select(decisions.chosen.columns)
    )
    if pick.is_empty():
        return decisions
    settled = pick.select("key", "field")
    chosen = pl.concat(
        [decisions.chosen.join(settled, on=["key", "field"], how="anti"), pick],
        how="vertical_relaxed",
    ).sort("key", "field")
    return FrameDecisions(chosen, conflicts.join(settled, on=["key", "field"], how="anti"))


def _decide(
    records: pl.DataFrame,
    fields: Sequence[str],
    table: Survivorship,
    entity: str,
    now: datetime,
    *,
    grids_from_checks: bool,
    confirmed: pl.DataFrame | None = None,
) -> _Decided:
    """Survivorship for the keys of `records` (all of each key's records): the update of each
    golden record (chosen fields typed, provenance JSON, sources, updated_at[, grid_code]) and
    its conflicts; conflicts grid workers settled (`confirmed_answers`) stay settled."""
    decisions = decide_frame(_candidates(records, fields), table, entity)
    if confirmed is not None:
        decisions = _keep_confirmed(decisions, confirmed)
    chosen = decisions.chosen
    counts = records.group_by("key").agg(pl.len().cast(pl.Int64).alias("sources"))
    provenance = (
        chosen.sort("key", "field")
        .group_by("key", maintain_order=True)
        .agg(
            pl.format(
                '"{}": {}',
                "field",
                pl.struct(
                    "source",
                    pl.col("record_id").alias("record"),
                    pl.col("as_of").dt.strftime("%Y-%m-%d").alias("as_of"),
                ).struct.json_encode(),
            )
            .str.join(", ")
            .alias("_prov")
        )
    )
    updates = counts.join(provenance, on="key", how="left").select(
        pl.col("key").alias("id"),
        pl.concat_str(pl.lit("{"), pl.col("_prov").fill_null(""), pl.lit("}")).alias("provenance"),
        "sources",
        pl.lit(now).cast(_UTC).alias("updated_at"),
    )
    if not chosen.is_empty():
        wide = chosen.pivot(on="field", index="key", values="value")
        typed = [
            pl.col(c).str.to_date("%Y-%m-%d", strict=False)
            if c in DATE_FIELDS
            else (pl.col(c) == "1")
            if c == "hazardous"
            else pl.col(c)
            for c in wide.columns
            if c != "key"
        ]
        wide = wide.select(pl.col("key").alias("id"), *typed)
        updates = updates.join(wide, on="id", how="left")
    if grids_from_checks:
        # Grid: the latest field check that placed the person (address placement refines this);
        # equal times to the later record.
        grids = (
            records.filter((pl.col("kind") == "check") & pl.col("grid_code").is_not_null())
            .select(
                "key",
                "record_id",
                pl.coalesce("as_of", "loaded_at").alias("_when"),
                pl.col("grid_code").cast(pl.String),
            )
            .sort("_when", "record_id")
            .group_by("key")
            .last()
            .select(pl.col("key").alias("id"), "grid_code")
        )
        updates = updates.join(grids, on="id", how="left")
    candidates = pl.col("candidates").list.eval(
        pl.struct(
            pl.element().struct.field("value"),
            pl.element().struct.field("source"),
            pl.element().struct.field("record_id").alias("record"),
            _iso(pl.element().struct.field("as_of")).alias("as_of"),
        ).struct.json_encode()
    )
    tasks = decisions.conflicts.select(
        "key",
        "field",
        "kind",
        pl.format("[{}]", candidates.list.join(", ")).alias("candidates"),
    )
    return _Decided(updates.sort("id"), tasks)


def _update(session: Session, model: Any, updates: pl.DataFrame) -> None:
    """Write decided updates; columns a key has no value for keep the stored one."""
    keep = [c for c in updates.columns if c not in ("id", "provenance", "sources", "updated_at")]
    update_from_frame(session, model.__table__, updates, key="id", keep_null=keep)


@dataclass
class _Fresh:
    """Golden ids reserved for new records but not yet written: ids from `start` on, with the
    identifier each was reserved for (ident, key; empty for records matched without one)."""

    start: int
    idents: pl.DataFrame


def _store(
    session: Session, model: Any, updates: pl.DataFrame, fresh: _Fresh | None, ident: str
) -> None:
    """Write decided rows: the golden records reserved in `fresh` inserted whole (the model's
    defaults where a field has no value, the identifier they were made for), the others updated.

    Inserting a new record complete costs one append; inserting it bare and updating it later
    rewrote every row and moved it in each index (at city scale the longest step)."""
    if fresh is None:
        _update(session, model, updates)
        return
    is_new = pl.col("id") >= fresh.start
    old = updates.filter(~is_new)
    if not old.is_empty():
        _update(session, model, old)
    new = updates.filter(is_new)
    if new.is_empty():
        return
    made = new.join(
        fresh.idents.select(pl.col("key").alias("id"), pl.col("ident").alias("_ident")),
        on="id",
        how="left",
        maintain_order="left",
    )
    made = made.with_columns(
        (pl.coalesce(ident, "_ident") if ident in made.columns else pl.col("_ident")).alias(ident)
    ).drop("_ident")
    rows = _with_defaults(model.__table__, made)
    # Reserved ids for identifiers not stored yet: new by construction, copied straight in.
    written = copy_frame(session, model.__table__, rows, conflict=())
    if written != new.height:
        raise RuntimeError(f"{model.__tablename__}: {new.height - written} reserved ids were taken")


def _grid_leaders(session: Session) -> pl.DataFrame:
    return query_frame(
        session,
        "SELECT grid_code, user_id FROM grid_leaders",
        {"grid_code": pl.String(), "assignee_id": pl.Int64()},
    )


def _open_tasks(
    session: Session, entity: str, tasks: pl.DataFrame, grids: pl.DataFrame, now: datetime
) -> int:
    """Check tasks for the conflicts (key, field, kind, candidates JSON); grids: id, grid_code."""
    if tasks.is_empty():
        return 0
    leaders = _grid_leaders(session)
    rows = (
        tasks.sort("key", "field")
        .join(grids.rename({"id": "key"}), on="key", how="left", maintain_order="left")
        .join(leaders.unique("grid_code"), on="grid_code", how="left", maintain_order="left")
        .select(
            pl.lit(entity).alias("entity"),
            pl.col("key").alias("entity_id"),
            "field",
            "kind",
            "candidates",
            "grid_code",
            "assignee_id",
            pl.lit("open").alias("status"),
            pl.format(f"{entity}:{{}}:{{}}", "key", "field").alias("open_key"),
            pl.lit(now).cast(_UTC).alias("created_at"),
            pl.lit("").alias("note"),
        )
    )
    return copy_frame(session, CheckTask.__table__, rows, conflict=("open_key",))


def _golden_ids(
    session: Session, model: Any, key: str, idents: pl.Series, stats: ResolveStats
) -> tuple[pl.DataFrame, _Fresh | None]:
    """Golden ids by identifier (`model.<key>`): the stored record's, or a new id reserved (in
    identifier order) for a record written whole once its fields are decided (`_store`).
    Returns ident, key, and the reserved ids."""
    table = model.__tablename__
    wanted = idents.unique().sort().rename("ident").to_frame()
    sql = f"SELECT {key}, id FROM {table} WHERE {key} IS NOT NULL"  # noqa: S608 (model names)
    found = query_frame(session, sql, {"ident": pl.String(), "key": pl.Int64()})
    have = wanted.join(found, on="ident", how="inner")
    del found
    new = wanted.join(have, on="ident", how="anti").sort("ident")
    if new.is_empty():
        return have, None
    reserved = _reserve_ids(session, model, new.height)
    made = new.with_columns(reserved)
    stats.created += made.height
    return pl.concat([have, made]), _Fresh(int(reserved[0]), made)


def _with_defaults(table: Any, rows: pl.DataFrame) -> pl.DataFrame:
    """Rows ready to insert: the model's Python-side defaults for the columns the frame leaves
    out or has no value in (as the ORM would fill them; JSON ones as JSON text); text columns
    that may not be null and have no default get ''."""
    fills = []
    for column in table.columns:
        default = column.default
        if column.primary_key:
            continue
        if default is None:
            if (
                column.name in rows.columns
                and not column.nullable
                and rows[column.name].dtype == pl.String
            ):
                fills.append(pl.col(column.name).fill_null(""))
            continue
        value = default.arg if default.is_scalar else default.arg(None)
        if isinstance(value, dict | list):
            value = json.dumps(value)
        if column.name in rows.columns:
            fills.append(pl.col(column.name).fill_null(pl.lit(value)))
        else:
            fills.append(pl.lit(value).alias(column.name))
    return rows.with_columns(fills)


def _link(session: Session, entity: str, key_of: pl.DataFrame, method: str) -> int:
    """Record links (record_id, key) by one method; existing links are kept."""
    rows = key_of.sort("record_id").select(
        pl.col("record_id").alias("source_record_id"),
        pl.lit(entity).alias("entity"),
        pl.col("key").alias("entity_id"),
        pl.lit(method).alias("method"),
        pl.lit(None, pl.Float64()).alias("score"),
    )
    return copy_frame(
        session, RecordLink.__table__, rows, conflict=("source_record_id",), optimistic=True
    )


def _links_of(session: Session, entity: str) -> pl.DataFrame:
    return query_frame(
        session,
        # entity comes from code ("person", "org")
        f"SELECT source_record_id, entity_id FROM record_links WHERE entity = '{entity}'",  # noqa: S608
        {"record_id": pl.Int64(), "key": pl.Int64()},
    )


def _grids(session: Session, table: str) -> pl.DataFrame:
    return query_frame(
        session,
        f"SELECT id, grid_code FROM {table}",  # noqa: S608 (model names)
        {"id": pl.Int64(), "grid_code": pl.String()},
    )


# ------------------------------------------------------------------------------ persons

PERSON_KINDS = ("person", "tag", "check")


def resolve_persons(
    session: Session,
    *,
    now: datetime,
    table: Survivorship | None = None,
    probabilistic: bool = True,
) -> ResolveStats:
    """Golden persons: records linked by valid ID number, the rest matched probabilistically
    (`resolve.matching`); fields by survivorship; tags; field-check grids; check tasks."""
    table = table or shipped_survivorship()
    stats = ResolveStats()
    session.flush()
    fields = (*PERSON_FIELDS, "address", *TAG_FIELDS)
    with _spill_dir() as root, write_cache(session), ExitStack() as deferred:
        spilled = _spill(
            session,
            root,
            PERSON_KINDS,
            fields,
            "citizen_id",
            pl.col("citizen_id").str.len_chars() == 18,
        )
        stats.records = spilled.count
        stats.linked = spilled.idents.height
        # Rooms and grids by actual address, given as the persons are written.
        placement = Placement.maybe(session, now)
        if placement is not None:
            placement.keep_parsed(root / "parsed")
        ids, fresh = _golden_ids(session, Person, "citizen_id", spilled.idents["ident"], stats)
        # A first load builds the persons' and the links' plain indexes once, at the end.
        deferred.enter_context(deferred_indexes(session, "persons", stats.created))
        by_id = spilled.idents.join(ids, on="ident").select("record_id", "key")
        # The links kept from earlier runs, and the new ones (an earlier link stays): the
        # partition's keys without reading back the millions just written.
        before = _links_of(session, "person")
        new_links = by_id.join(before, on="record_id", how="anti")
        deferred.enter_context(deferred_indexes(session, "record_links", new_links.height))
        stats.links = _link(session, "person", new_links, "id")
        top = ids.select(pl.col("key").max().fill_null(0)).item() if not ids.is_empty() else 0
        key_of = pl.concat([before, new_links])
        del by_id, ids, before, new_links
        spilled.idents = spilled.idents.clear()
        dirs, unlinked_dir = _partition(spilled, key_of)
        del key_of

        def store(parts: Iterator[pl.DataFrame]) -> None:
            """Write decided persons. With a placement, the parts are spilled first, the
            addresses they chose matched together, then each part written placed."""
            if placement is None:
                for updates in parts:
                    _store(session, Person, updates, fresh, "citizen_id")
                return
            decided_dir = Path(tempfile.mkdtemp(prefix="decided_", dir=root))
            files = []
            for i, updates in enumerate(parts):
                files.append(decided_dir / f"{i:05d}.parquet")
                updates.write_parquet(files[-1])
            if not files:
                return
            placement.learn(
                session,
                pl.scan_parquet(files)
                .select(pl.col("actual_address").unique())
                .collect()
                .get_column("actual_address"),
            )
            for f in files:
                _store(session, Person, placement.apply(session, pl.read_parquet(f)), fresh,
                       "citizen_id")  # fmt: skip
                f.unlink()

        confirmed = confirmed_answers(session, "person")
        tasks: list[pl.DataFrame] = []
        tags: list[pl.DataFrame] = []
        keys: list[pl.Series] = []

        def first_pass() -> Iterator[pl.DataFrame]:
            for d in dirs:
                records = _read_dir(d)
                if records is None:
                    continue
                decided = _decide(records, PERSON_FIELDS, table, "person", now,
                                  grids_from_checks=True, confirmed=confirmed)  # fmt: skip
                keys.append(decided.updates["id"])
                tasks.append(decided.tasks)
                tags.append(_tag_records(records))
                yield decided.updates

        store(first_pass())
        unlinked_files = unlinked_dir / "*.parquet"
        stats.unlinked = (
            pl.scan_parquet(unlinked_files).select(pl.len()).collect().item()
            if any(unlinked_dir.glob("*.parquet"))
            else 0
        )
        if probabilistic and stats.unlinked:
            # What the placement holds waits on disk while the matcher runs.
            if placement is not None:
                placement.park(root / "placement")
            found, fresh = _match_unlinked(session, unlinked_dir, stats, root, top, root / "parsed")
            if not found.is_empty():
                # The persons that gained records: decided again over all of their records.
                affected = found["key"].unique()
                newly = pl.scan_parquet(unlinked_files).join(found.lazy(), on="record_id").collect()
                stats.unlinked -= newly.height
                own = [
                    pl.scan_parquet(d / "*.parquet").filter(pl.col("key").is_in(affected.implode()))
                    for d in dirs
                    if any(d.glob("*.parquet"))
                ]
                again = pl.concat([*(f.collect() for f in own), newly], how="diagonal_relaxed")
                tasks = [t.filter(~pl.col("key").is_in(affected.implode())) for t in tasks]
                tags.append(_tag_records(newly))
                del newly, own

                # In parts of about PART_RECORDS records (each key whole), as the first pass:
                # at city scale a quarter of a million persons gain records here.
                def second_pass(again: pl.DataFrame) -> Iterator[pl.DataFrame]:
                    for part_keys in _key_chunks(again, PART_RECORDS):
                        decided = _decide(again.filter(pl.col("key").is_in(part_keys.implode())),
                                          PERSON_FIELDS, table, "person", now,
                                          grids_from_checks=True, confirmed=confirmed)  # fmt: skip
                        keys.append(decided.updates["id"])
                        tasks.append(decided.tasks)
                        yield decided.updates

                store(second_pass(again))
                del again
        stats.updated = pl.concat(keys).n_unique() if keys else 0
        grids = _grids(session, "persons")
        if tasks:
            stats.tasks_opened = _open_tasks(session, "person", pl.concat(tasks), grids, now)
        if tags:
            stats.tags = _tags(session, pl.concat(tags, how="vertical_relaxed"), grids, now)
        if placement is not None:
            placement.open_tasks(session, grids)
            placed = placement.stats
            stats.extra.update(
                placed=placed.persons_placed, rooms_made=placed.rooms,
                address_unmatched=placed.unmatched, address_tasks=placed.tasks_opened,
                **{f"address_{m}": n for m, n in sorted(placed.matched.items())},
            )  # fmt: skip
    check_references(session, ["persons"])
    return stats


def _match_unlinked(
    session: Session,
    unlinked_dir: Path,
    stats: ResolveStats,
    spill: Path,
    above: int,
    parsed_dir: Path | None = None,
) -> tuple[pl.DataFrame, _Fresh | None]:
    """Records without a valid ID number (spilled in `unlinked_dir`): linked to a golden person,
    or made new persons (ids reserved after `above`, written by the caller once decided).
    Returns record_id, key of the links made, and the reserved ids.

    Both sides go to the matcher as Parquet files, which DuckDB reads within its memory bound:
    at city scale the golden side alone is a million and a half persons. `parsed_dir`: address
    parses the placement kept (`Placement.keep_parsed`)."""
    from gridgov.registry.address_frames import parsed_addr
    from gridgov.resolve.matching import match_tables, side_frame

    def addresses(frame: pl.DataFrame, cols: Sequence[str]) -> pl.DataFrame:
        """addr (road|door|building|unit|room) and door (road|door) of the first non-empty
        address column, when it parses to a road and a door (the parses the placement kept
        are read, not made again)."""
        text = pl.coalesce(*(pl.when(pl.col(c) != "").then(pl.col(c)) for c in cols))
        texts = frame.select(text.alias("text"))
        parsed = parsed_addr(texts.get_column("text"), parsed_dir).with_columns(
            pl.col("addr").str.split("|").list.slice(0, 2).list.join("|").alias("door")
        )
        return frame.with_columns(texts.get_column("text")).join(
            parsed, on="text", how="left", maintain_order="left"
        )

    flagged = pl.col("bad").list.contains("phone").fill_null(False)
    records = addresses(
        pl.scan_parquet(unlinked_dir / "*.parquet")
        .select(
            pl.col("record_id").cast(pl.String).alias("uid"),
            pl.col("name").fill_null(""),
            pl.col("birth_date").alias("dob"),
            "sex",
            pl.col("citizen_id").alias("cid"),
            pl.when(~flagged).then(pl.col("phone")).alias("phone"),
            "actual_address",
            "address",
            "registered_address",
        )
        .collect(),
        ("actual_address", "address", "registered_address"),
    ).select("uid", "name", "dob", "sex", "cid", "phone", "addr", "door")
    mention = side_frame(records)
    del records
    sides = spill / "sides"
    (sides / "golden").mkdir(parents=True)
    # A slice of golden persons at a time, read from the database by id range (all five million
    # at once would hold about 1.7 GB): the address and pinyin blocks are known only once their
    # addresses are parsed and names read, and only the persons sharing a block are kept (at
    # city scale about a third of five million).
    low, high, count = session.execute(
        text("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), -1), COUNT(*) FROM persons")
    ).one()
    population = int(count) + mention.height
    kept = 0
    for start in range(int(low), int(high) + 1, GOLDEN_SLICE):
        # One address per person (the actual one, else the registered one), as the matcher uses;
        # the bounds are integers.
        where = f"WHERE id >= {int(start)} AND id < {int(start) + GOLDEN_SLICE} ORDER BY id"
        part = query_frame(
            session,
            "SELECT id, name, birth_date, sex, citizen_id, phone, "  # noqa: S608
            "COALESCE(NULLIF(actual_address, ''), NULLIF(registered_address, '')) FROM persons "
            + where,
            {"uid": pl.Int64(), "name": pl.String(), "dob": pl.String(), "sex": pl.String(),
             "cid": pl.String(), "phone": pl.String(), "address": pl.String()},
        )  # fmt: skip
        if part.is_empty():  # a gap in the ids
            continue
        golden = addresses(_sharing_a_block(part, mention), ("address",)).select(
            pl.col("uid").cast(pl.String), "name", "dob", "sex", "cid", "phone", "addr", "door"
        )
        side = side_frame(golden)
        side = side.filter(_any_block(side, mention))
        side.write_parquet(sides / "golden" / f"{start:012d}.parquet")
        kept += side.height
        del part, golden, side
    stats.extra["golden_compared"] = kept
    mention.write_parquet(sides / "mention.parquet")
    del mention
    found = match_tables(
        str(sides / "golden" / "*.parquet") if kept else None,
        str(sides / "mention.parquet"),
        population=population,
        memory_limit=MATCH_MEMORY,
        spill_dir=spill / "duckdb",
    )
    links = pl.DataFrame(
        [(int(rid), int(gid), "splink", round(p, 6)) for rid, (gid, p) in found.to_golden.items()],
        schema={"record_id": pl.Int64(), "key": pl.Int64(), "method": pl.String(),
                "score": pl.Float64()},
        orient="row",
    )  # fmt: skip
    stats.extra["matched"] = links.height
    fresh = None
    if found.new_clusters:
        reserved = _reserve_ids(session, Person, len(found.new_clusters), above)
        new_ids = reserved.to_list()
        fresh = _Fresh(new_ids[0], pl.DataFrame(schema={"ident": pl.String(), "key": pl.Int64()}))
        stats.created += len(new_ids)
        stats.extra["new_without_id"] = len(new_ids)
        links = pl.concat(
            [
                links,
                pl.DataFrame(
                    [
                        (int(rid), pid, "splink-new", None)
                        for pid, members in zip(new_ids, found.new_clusters, strict=True)
                        for rid in members
                    ],
                    schema=links.schema,
                    orient="row",
                ),
            ]
        )
    rows = links.sort("record_id").select(
        pl.col("record_id").alias("source_record_id"),
        pl.lit("person").alias("entity"),
        pl.col("key").alias("entity_id"),
        "method",
        "score",
    )
    stats.links += copy_frame(
        session, RecordLink.__table__, rows, conflict=("source_record_id",), optimistic=True
    )
    return links.select("record_id", "key"), fresh


def _sharing_a_block(golden: pl.DataFrame, mention: pl.DataFrame) -> pl.DataFrame:
    """Golden persons that may share a blocking key with a record, by the keys known before
    pinyin and address parsing: birth date, phone, ID number; or a birth year with the records'
    (for the pinyin block) or an address (for the address block, parsed later)."""
    years = mention.get_column("byear").drop_nulls().unique().implode()
    has_addr = mention.get_column("addr").drop_nulls().len() > 0
    keep = (
        pl.col("dob").is_in(mention.get_column("dob").drop_nulls().unique().implode())
        | pl.col("phone").is_in(mention.get_column("phone").drop_nulls().unique().implode())
        | pl.col("cid").is_in(mention.get_column("cid").drop_nulls().unique().implode())
        | pl.col("dob").str.slice(0, 4).is_in(years)
    )
    if has_addr:
        keep = keep | pl.col("address").is_not_null()
    return golden.filter(keep.fill_null(False))


def _any_block(golden: pl.DataFrame, mention: pl.DataFrame) -> pl.Expr:
    """Whether a golden person shares one of `matching`'s blocking keys with a record."""

    def among(*cols: str) -> pl.Expr:
        keys = mention.select(*cols).drop_nulls().unique()
        if len(cols) == 1:
            return pl.col(cols[0]).is_in(keys.get_column(cols[0]).implode())
        joined = keys.select(pl.concat_str(*cols, separator="\x1f").alias("k"))
        return pl.concat_str(*cols, separator="\x1f").is_in(joined.get_column("k").implode())

    return (
        among("dob", "surname")
        | among("dob", "given")
        | among("phone")
        | among("py", "byear")
        | among("addr", "surname")
        | among("cid")
    ).fill_null(False)


def _tag_records(records: pl.DataFrame) -> pl.DataFrame:
    return records.filter(pl.col("kind") == "tag").select(
        "key", "record_id", "source", "dataset", *TAG_FIELDS
    )


def _tags(session: Session, records: pl.DataFrame, grids: pl.DataFrame, now: datetime) -> int:
    if records.is_empty():
        return 0
    mappings = shipped_mappings()
    sensitive = pl.DataFrame(
        [
            (code, d.name, bool(d.sensitive))
            for code, src in mappings.sources.items()
            for d in src.datasets
        ],
        schema={"source": pl.String(), "dataset": pl.String(), "_sensitive": pl.Boolean()},
        orient="row",
    ).unique(["source", "dataset"], keep="first")
    tag_class = pl.col("tag_class").fill_null("")
    rows = (
        records.with_columns(pl.col("source", "dataset").cast(pl.String))
        .sort("record_id")
        .join(sensitive, on=["source", "dataset"], how="left", maintain_order="left")
        .join(grids.rename({"id": "key"}), on="key", how="left", maintain_order="left")
        .select(
            pl.col("key").alias("person_id"),
            tag_class.alias("tag_class"),
            pl.col("subtype").fill_null("").alias("subtype"),
            pl.coalesce("_sensitive", tag_class == "control").alias("sensitive"),
            pl.when(pl.col("risk_level").fill_null("") != "")
            .then(pl.format("风险等级 {}", "risk_level"))
            .otherwise(pl.lit(""))
            .alias("detail"),
            pl.col("valid_from").str.to_date("%Y-%m-%d", strict=False).alias("valid_from"),
            pl.col("valid_to").str.to_date("%Y-%m-%d", strict=False).alias("valid_to"),
            "source",
            pl.col("record_id").alias("source_record_id"),
            "grid_code",
            pl.lit(now).cast(_UTC).alias("updated_at"),
        )
    )
    if session.connection().dialect.name == "sqlite":
        rows = rows.with_columns(
            pl.col("valid_from", "valid_to").dt.strftime("%Y-%m-%d"),
            pl.col("sensitive").cast(pl.Int8),
        )
    return copy_frame(
        session,
        KeyPersonTag.__table__,
        rows,
        conflict=("person_id", "tag_class", "subtype", "source"),
    )


# ------------------------------------------------------------------------ organizations


def resolve_organizations(
    session: Session, *, now: datetime, table: Survivorship | None = None
) -> ResolveStats:
    """Golden organizations by valid credit code; legal representatives and employees linked."""
    table = table or shipped_survivorship()
    stats = ResolveStats()
    session.flush()
    with _spill_dir() as root, write_cache(session), ExitStack() as deferred:
        spilled = _spill(session, root, ("org",), ORG_FIELDS, "credit_code", pl.lit(True))
        stats.records = spilled.count
        stats.linked = spilled.idents.height
        stats.unlinked = stats.records - stats.linked
        ids, fresh = _golden_ids(
            session, Organization, "credit_code", spilled.idents["ident"], stats
        )
        deferred.enter_context(deferred_indexes(session, "organizations", stats.created))
        key_of = spilled.idents.join(ids, on="ident").select("record_id", "key")
        dirs, _ = _partition(spilled, key_of)
        persons = query_frame(
            session,
            "SELECT citizen_id, id FROM persons WHERE citizen_id IS NOT NULL",
            {"legal_rep_id": pl.String(), "legal_rep_person_id": pl.Int64()},
        )
        tasks: list[pl.DataFrame] = []
        reps: list[pl.DataFrame] = []
        confirmed = confirmed_answers(session, "org")
        for d in dirs:
            records = _read_dir(d)
            if records is None:
                continue
            decided = _decide(records, ORG_FIELDS, table, "organization", now,
                              grids_from_checks=False, confirmed=confirmed)  # fmt: skip
            updates = decided.updates
            if "legal_rep_id" in updates.columns:
                updates = updates.join(
                    persons, on="legal_rep_id", how="left", maintain_order="left"
                ).drop("legal_rep_id")
                reps.append(
                    updates.filter(pl.col("legal_rep_person_id").is_not_null()).select(
                        pl.col("legal_rep_person_id").alias("person_id"),
                        pl.col("id").alias("org_id"),
                    )
                )
            _store(session, Organization, updates, fresh, "credit_code")
            stats.updated += updates.height
            tasks.append(decided.tasks)
        del persons
        if tasks:
            stats.tasks_opened = _open_tasks(
                session, "org", pl.concat(tasks), _grids(session, "organizations"), now
            )
        stats.links = _link(session, "org", key_of, "credit_code")
        rep_links = (
            pl.concat(reps)
            .sort("org_id")
            .with_columns(pl.lit("legal_rep").alias("relation"), pl.lit("SJ").alias("source"))
            if reps
            else None
        )
        if rep_links is not None:
            copy_frame(
                session,
                PersonOrg.__table__,
                rep_links,
                conflict=("person_id", "org_id", "relation"),
                optimistic=True,
            )
        stats.extra["legal_reps"] = rep_links.height if rep_links is not None else 0
        stats.extra["employees"] = _employees(session, ids)
    check_references(session, ["person_orgs"])
    return stats


def _employees(session: Session, orgs: pl.DataFrame) -> int:
    """Person ↔ organization (employee) from the social-insurance records' employer code.

    Only the linked person records that carry an employer code are read, the JSON field taken
    out by the database (a fraction of the city's records, and no JSON decoding here)."""
    if session.connection().dialect.name == "postgresql":
        code = """s."values"->>'employer_credit_code'"""
    else:
        code = """json_extract(s."values", '$.employer_credit_code')"""
    # Only the person datasets whose mapping has the field (at city scale: 2.8 M of 13 M person
    # records), found by the (kind, source) index instead of reading every person record's JSON.
    having = sorted(
        {
            (d.source, d.name)
            for src in shipped_mappings().sources.values()
            for d in src.datasets
            if d.kind == "person" and any(c.field == "employer_credit_code" for c in d.columns)
        }
    )
    if not having:
        return 0
    for source, dataset in having:  # from the shipped mapping files; checked all the same
        if not (source.isidentifier() and dataset.isidentifier()):
            raise ValueError(f"bad dataset name {source}.{dataset}")
    sources = ", ".join(sorted({f"'{src}'" for src, _ in having}))
    datasets = ", ".join(sorted({f"'{ds}'" for _, ds in having}))
    rows = query_frame(
        session,
        f"SELECT l.entity_id, l.source_record_id, s.source, {code} FROM source_records s "  # noqa: S608
        "JOIN record_links l ON l.source_record_id = s.id AND l.entity = 'person' "
        f"WHERE s.kind = 'person' AND s.source IN ({sources}) AND s.dataset IN ({datasets}) "
        f"AND {code} IS NOT NULL",
        {"person_id": pl.Int64(), "id": pl.Int64(), "source": pl.String(),
         "employer_credit_code": pl.String()},
    )  # fmt: skip
    codes = orgs.select(
        pl.col("ident").alias("employer_credit_code"), pl.col("key").alias("org_id")
    )
    data = (
        rows.join(codes, on="employer_credit_code", how="inner")
        .sort("id")
        .group_by("person_id", "org_id", maintain_order=True)
        .agg(pl.col("source").last())
        .select("person_id", "org_id", pl.lit("employee").alias("relation"), "source")
    )
    return copy_frame(
        session,
        PersonOrg.__table__,
        data,
        conflict=("person_id", "org_id", "relation"),
        optimistic=True,
    )


__all__ = [
    "FLAGGED",
    "ORG_FIELDS",
    "PERSON_FIELDS",
    "ResolveStats",
    "resolve_organizations",
    "resolve_persons",
]
