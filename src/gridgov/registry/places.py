"""Standard addresses, buildings and rooms; matching department addresses to them (以房管人).

1. `build_address_library`: the natural-resources department's standard addresses (ZR) become the
   address library: one row per room-level address keyed as DOMAIN.md §4, its building, and the
   grid its point lies in (the locate index, vectorised).
2. `AddressMatcher.match`: a free-text address from any department is parsed, then matched to
   the library: exactly by key; else by the same road, door, building, unit and room in the same
   county (or, with no county written, the city) when that is unique; else by similarity within
   the same road and door number. Below `THRESHOLD` nothing is guessed: the caller queues a
   field check. `match_texts` gives the same answers for many texts at once.
3. `place_rooms` (before the persons step): rooms from the housing department (ZJ), its room
   records and the rental registrations linked to them. `Placement` (in the persons step): each
   golden person's room and grid from the actual address chosen for them, given as they are
   written. `link_residents` (after it): owners, tenants and members of the rooms.
   `place_rooms_and_people` does all three for persons resolved before the address library.

At city scale (millions of records) everything is columnar: source records are read as Polars
frames (`registry.frames`), addresses parsed once per distinct building-level head
(`registry.address_frames`), exact matches found by a join on the key, and rows written by COPY
(PostgreSQL) or executemany (SQLite); Python loops only over distinct heads and over the texts
that do not match exactly. Records are taken in id order, so where several records of one room
disagree the one with the highest id gives its values.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridgov.db.bulk import copy_frame, refresh_statistics
from gridgov.db.bulk_update import deferred_indexes, update_from_frame
from gridgov.geo import service as geo
from gridgov.geo.models import GridLeader
from gridgov.registry.address_frames import (
    in_chunks,
    parse,
    parse_texts,
    query_frame,
    road_door_key,
    text_keys,
)
from gridgov.registry.frames import bad_fields, source_frames
from gridgov.registry.ids import reserve_ids
from gridgov.registry.integrity import check_references
from gridgov.registry.models import (
    Address,
    Building,
    CheckTask,
    Person,
    PersonRoom,
    RecordLink,
    Room,
)
from gridgov.resolve.address import ParsedAddress, address_similarity

THRESHOLD = 0.85  # below this similarity an address is queued for a field check
EXACT, TAIL, FUZZY = "exact", "road", "fuzzy"


__all__ = [
    "AddressMatcher",
    "Placement",
    "build_address_library",
    "link_residents",
    "match_texts",
    "parse",
    "place_rooms",
    "place_rooms_and_people",
]


def _tail(p: ParsedAddress) -> str:
    return "|".join(x or "" for x in (p.road, p.door, p.building, p.unit, p.room))


def _county(p: ParsedAddress) -> str:
    code = p.village_code or p.town_code or p.county_code or ""
    return code[:6]


@dataclass
class PlaceStats:
    addresses: int = 0
    buildings: int = 0
    outside_grids: int = 0
    rooms: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0
    tasks_opened: int = 0
    persons_placed: int = 0
    links: int = 0


# --------------------------------------------------------------------------- the library

_ADDRESS_FIELDS = (
    "address_code", "address", "village_code", "road", "door_no", "compound", "building",
    "lon", "lat",
)  # fmt: skip


def _library_parts(session: Session, root: Path) -> list[Path]:
    """The standard-address records, parsed chunk by chunk and spilled to Parquet by county (the
    first six digits of the village code): an address key, and so a building key, starts with
    its village code, so each county's addresses and buildings are decided apart."""
    written: dict[str, Path] = {}
    # Closed on any error too: the reading thread holds the connection until then.
    with closing(source_frames(session, ["address"], _ADDRESS_FIELDS)) as frames:
        for i, chunk in enumerate(frames):
            rows = _library_chunk(chunk).with_columns(
                pl.col("village_code").str.slice(0, 6).alias("_county")
            )
            for (county,), part in rows.partition_by(
                "_county", as_dict=True, include_key=False
            ).items():
                folder = written.setdefault(str(county), root / f"county_{county}")
                folder.mkdir(exist_ok=True)
                part.write_parquet(folder / f"{i:05d}.parquet")
    return [written[k] for k in sorted(written)]


def _library_rows(folder: Path) -> pl.DataFrame:
    """One county's standard-address records as one row per address key, the newest record
    winning."""
    # File by file, relaxed: a chunk where a column has no value at all may type it as null.
    rows = pl.concat(
        [pl.read_parquet(f) for f in sorted(folder.glob("*.parquet"))], how="vertical_relaxed"
    )
    rows = rows.with_columns(
        # The key is made of the parsed parts (`ParsedAddress.key`), the row of both.
        pl.concat_str(
            "village_code", "_road", "_door", "building", "unit", "room", separator="|"
        ).alias("key")
    ).drop("_road", "_door")
    # The newest record of an address wins.
    rows = rows.sort(["as_of", "_record"], descending=True, nulls_last=True)
    return rows.unique(subset="key", keep="first", maintain_order=True).drop("as_of")


def _library_chunk(chunk: pl.DataFrame) -> pl.DataFrame:
    """One chunk of standard-address records, parsed (chunk by chunk, so the raw text is let go)."""
    records = chunk.select(
        pl.col("id").alias("_record"),
        "source",
        "as_of",
        pl.col("address_code").alias("code"),
        pl.col("address").fill_null("").alias("raw"),
        pl.col("village_code").alias("v_village"),
        pl.col("road").alias("v_road"),
        pl.col("door_no").alias("v_door"),
        pl.col("compound").alias("v_compound"),
        pl.col("lon").cast(pl.Float64, strict=False),
        pl.col("lat").cast(pl.Float64, strict=False),
    )
    parsed = parse_texts(records.get_column("raw"))
    rows = records.join(parsed, left_on="raw", right_on="text", how="left", maintain_order="left")
    empty = pl.lit("")
    return rows.select(
        "_record",
        "source",
        "as_of",
        "code",
        pl.when(pl.col("v_village").fill_null("") != "")
        .then(pl.col("v_village"))
        .otherwise(pl.col("village_code"))
        .alias("village_code"),
        pl.coalesce("road", "v_road", empty).alias("road"),
        pl.coalesce("door", "v_door", empty).alias("door_no"),
        pl.col("road").fill_null("").alias("_road"),
        pl.col("door").fill_null("").alias("_door"),
        pl.coalesce("compound", "v_compound", empty).alias("compound"),
        *(pl.col(c).fill_null("") for c in ("building", "unit", "room")),
        pl.col("normalized").alias("text"),
        "lon",
        "lat",
    ).filter(pl.col("village_code").fill_null("") != "")


def build_address_library(session: Session, *, now: datetime) -> PlaceStats:
    """Addresses and buildings from the standard-address records, placed in grids by point;
    county by county, so memory stays that of the largest county (not the city's 5.6 M)."""
    stats = PlaceStats()
    session.flush()
    root = Path(tempfile.mkdtemp(prefix="gridgov_library_"))
    try:
        with ExitStack() as deferred:
            kept: list[pl.DataFrame] = []
            folders = _library_parts(session, root)
            # A first load builds the plain indexes once, at the end (as many rows as records at
            # most).
            expected = sum(
                pl.scan_parquet(f / "*.parquet").select(pl.len()).collect().item() for f in folders
            )
            for table in ("addresses", "buildings", "record_links"):
                deferred.enter_context(deferred_indexes(session, table, expected))
            for folder in folders:
                kept.append(_library_county(session, _library_rows(folder), now, stats))
            if not kept:
                return stats
            address_ids = _key_ids(session, "addresses")
            for records in kept:
                links = records.join(address_ids, on="key", how="inner").select(
                    pl.col("_record").alias("source_record_id"),
                    pl.lit("address").alias("entity"),
                    pl.col("id").alias("entity_id"),
                    pl.lit("key").alias("method"),
                    pl.lit(None, pl.Float64()).alias("score"),
                )
                stats.links += copy_frame(
                    session, RecordLink.__table__, links.sort("source_record_id"),
                    conflict=("source_record_id",), optimistic=True,
                )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    session.flush()
    # The later steps read the library county by county (a key range): with no statistics the
    # planner took 5.6 M addresses for a few thousand.
    refresh_statistics(session, "addresses", "buildings")
    return stats


def _library_county(
    session: Session, items: pl.DataFrame, now: datetime, stats: PlaceStats
) -> pl.DataFrame:
    """Write one county's buildings and addresses; returns its (key, _record) for the links."""
    if items.is_empty():
        return pl.DataFrame(schema={"key": pl.String(), "_record": pl.Int64()})
    point = pl.col("lon").is_not_null() & pl.col("lat").is_not_null()
    with_point = items.filter(point)
    grids = pl.Series("grid_code", [], dtype=pl.String())
    if not with_point.is_empty():
        grids = pl.Series(
            "grid_code",
            geo.locate_many(
                session,
                with_point.get_column("lon").to_numpy(),
                with_point.get_column("lat").to_numpy(),
            ),
            dtype=pl.String(),
        )
        stats.outside_grids += grids.null_count()
    located = with_point.select("key").with_columns(grids)
    del with_point
    items = items.join(located, on="key", how="left", maintain_order="left")
    items = items.with_columns(
        pl.concat_str("village_code", "road", "door_no", "building", separator="|").alias("_bkey")
    )
    stamp = pl.lit(now).dt.convert_time_zone("UTC").alias("updated_at")
    buildings = items.group_by("_bkey", maintain_order=True).agg(
        pl.col("village_code").first(),
        pl.col("grid_code").first(),
        pl.concat_str("road", "door_no", "compound", "building").first().alias("name"),
        pl.col("lon").first(),
        pl.col("lat").first(),
        pl.len().cast(pl.Int32).alias("rooms"),
    )
    buildings = buildings.rename({"_bkey": "key"}).with_columns(stamp)
    stats.buildings += copy_frame(
        session, Building.__table__, buildings, conflict=("key",), optimistic=True
    )
    building_ids = _key_ids(session, "buildings", buildings.get_column("key"))
    items = items.join(
        building_ids.rename({"key": "_bkey", "id": "building_id"}),
        on="_bkey",
        how="left",
        maintain_order="left",
    )
    columns = [
        "key", "code", "village_code", "road", "door_no", "compound", "building", "unit",
        "room", "text", "lon", "lat", "source", "grid_code", "building_id",
    ]  # fmt: skip
    stats.addresses += copy_frame(
        session, Address.__table__, items.select(*columns, stamp), conflict=("key",),
        optimistic=True,
    )  # fmt: skip
    return items.select("key", "_record")


def _key_ids(session: Session, table: str, keys: pl.Series | None = None) -> pl.DataFrame:
    """(key, id) of the rows of a keyed table (buildings, addresses), all or those of `keys`."""
    assert table in ("buildings", "addresses")  # noqa: S101 (names from code only)
    found = query_frame(
        session,
        f"SELECT key, id FROM {table}",  # noqa: S608
        {"key": pl.String(), "id": pl.Int64()},
    )
    if keys is None:
        return found
    return found.join(keys.rename("key").unique().to_frame(), on="key", how="semi")


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Match:
    address_id: int | None
    method: str  # exact, road, fuzzy, or "" when unmatched
    score: float
    parsed: ParsedAddress


class AddressMatcher:
    """The library in memory, indexed for the three matching steps.

    `rows` (id, key, village_code, road, door_no, compound, building, unit, room) index just
    those addresses instead of the whole library (see `match_texts`).
    """

    def __init__(self, session: Session | None = None, *, rows: Iterable[Any] = ()) -> None:
        if session is not None:
            rows = session.execute(
                select(
                    Address.id, Address.key, Address.village_code, Address.road, Address.door_no,
                    Address.compound, Address.building, Address.unit, Address.room,
                )
            ).all()  # fmt: skip
        self.by_key: dict[str, int] = {}
        self.by_tail: dict[tuple[str, str], list[int]] = {}
        self.by_tail_city: dict[str, list[int]] = {}
        self.by_door: dict[tuple[str, str, str], list[int]] = {}
        self._rows: dict[int, tuple[str, ...]] = {}
        self._parsed: dict[int, ParsedAddress] = {}
        for aid, key, village_code, road, door_no, compound, building, unit, room in rows:
            self.by_key[key] = aid
            county = village_code[:6]
            tail = "|".join((road, door_no, building, unit, room))
            self.by_tail.setdefault((county, tail), []).append(aid)
            self.by_tail_city.setdefault(tail, []).append(aid)
            self.by_door.setdefault((county, road, door_no), []).append(aid)
            self._rows[aid] = (village_code, road, door_no, compound, building, unit, room)

    def parsed(self, aid: int) -> ParsedAddress:
        """A library address as parsed components (made when first compared)."""
        found = self._parsed.get(aid)
        if found is None:
            village_code, road, door_no, compound, building, unit, room = self._rows[aid]
            found = self._parsed[aid] = ParsedAddress(
                source="", village_code=village_code, road=road or None,
                door=door_no or None, compound=compound or None,
                building=building or None, unit=unit or None, room=room or None,
            )  # fmt: skip
        return found

    def match(self, text: str) -> Match:
        p = parse(text)
        found = self.by_key.get(p.key())
        if found is not None:
            return Match(found, EXACT, 1.0, p)
        county = _county(p)
        if county and p.road:
            same = self.by_tail.get((county, _tail(p)), [])
            if len(same) == 1:
                return Match(same[0], TAIL, 0.95, p)
            candidates = self.by_door.get((county, p.road, p.door or ""), [])
            best, best_score = None, 0.0
            for cid in candidates:
                score = address_similarity(p, self.parsed(cid))
                if score > best_score:
                    best, best_score = cid, score
            if best is not None and best_score >= THRESHOLD:
                return Match(best, FUZZY, best_score, p)
            return Match(None, "", best_score, p)
        if p.road and p.door:
            # No county written (common in rental and health records): unique in the city.
            same = self.by_tail_city.get(_tail(p), [])
            if len(same) == 1:
                return Match(same[0], TAIL, 0.9, p)
        return Match(None, "", 0.0, p)


_LIBRARY_SCHEMA = {
    "id": pl.Int64(),
    "key": pl.String(),
    "village_code": pl.String(),
    "road": pl.String(),
    "door_no": pl.String(),
    "compound": pl.String(),
    "building": pl.String(),
    "unit": pl.String(),
    "room": pl.String(),
}
MATCH_SCHEMA = {
    "text": pl.String(),
    "address_id": pl.Int64(),
    "method": pl.String(),
    "score": pl.Float64(),
}


def _strings(*names: str) -> dict[str, pl.DataType]:
    return {n: pl.String() for n in names}


def _distinct_texts(*columns: pl.Series) -> pl.DataFrame:
    """Every distinct text of the columns, sorted, numbered (`text`, `text_id`): the rest of the
    matching carries the number, not the text."""
    texts = pl.concat([c.cast(pl.String).fill_null("").rename("text") for c in columns])
    return texts.unique().sort().to_frame().with_row_index("text_id").cast({"text_id": pl.Int64})


def _with_text_id(frame: pl.DataFrame, column: str, distinct: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its text `column` replaced by that text's number."""
    return (
        frame.with_columns(pl.col(column).cast(pl.String).fill_null(""))
        .join(distinct, left_on=column, right_on="text", how="left", maintain_order="left")
        .drop(column)
    )


def _county_range(county: str) -> str:
    """SQL condition: an address key in the county (keys start with the 12-digit village code)."""
    if not (len(county) == 6 and county.isdigit()):
        raise ValueError(f"not a county code: {county!r}")
    return f"key >= '{county}' AND key < '{int(county) + 1:06d}'"


def match_texts(session: Session, texts: pl.Series) -> pl.DataFrame:
    """`AddressMatcher.match` of every distinct text, as a frame (text, address_id, method, score)."""
    distinct = _distinct_texts(texts)
    found = _match_ids(session, distinct)
    return (
        distinct.join(found, on="text_id", how="left", maintain_order="left")
        .select("text", "address_id", "method", "score")
        .cast(MATCH_SCHEMA)  # type: ignore[arg-type]
    )


def _county_library(session: Session, county: str, cache: Path | None) -> pl.DataFrame:
    """A county's addresses (`_LIBRARY_SCHEMA`) in id order; with a `cache` folder, read from the
    database once and from the folder after (a step that matches twice, the library unchanged)."""
    cached = cache / f"{county}.parquet" if cache is not None else None
    if cached is not None and cached.exists():
        return pl.read_parquet(cached)
    where = _county_range(county)  # six digits, checked
    # In id order, sorted here: on the server, a county's 600,000 rows sorted by id spilled to
    # disk (work_mem), seconds a county.
    sql = f"SELECT {', '.join(_LIBRARY_SCHEMA)} FROM addresses WHERE {where}"  # noqa: S608
    library = query_frame(session, sql, _LIBRARY_SCHEMA).sort("id")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        library.write_parquet(cached)
    return library


def _match_ids(
    session: Session,
    distinct: pl.DataFrame,
    keep_parsed: Path | None = None,
    library_cache: Path | None = None,
) -> pl.DataFrame:
    """`AddressMatcher.match` of numbered texts (`text_id`, `text`), as a frame (text_id,
    address_id, method, score), county by county.

    The texts are parsed slice by slice (sorted, so texts that share a head are neighbours and
    each head is parsed about once) and spilled to Parquet by the county they name; then each
    county's texts meet only that county's part of the library, by joins on the frame-parsed
    parts: the key (exact), then (road … room) unique in the county. Texts with no county but a
    road and door number match a (road … room) unique in the whole city, counted over every
    county's addresses as they pass. Only the texts left in a county with a road are parsed again
    in Python for the similarity step, against the addresses that step can reach (same county,
    road and door). Memory is that of the largest county, not the city's library and texts.

    `keep_parsed`: a folder where each text's matcher address key (`text_keys`, `addr`) is also
    written, so a later step needing the same parse reads it instead (`parsed_addr`).
    `library_cache`: a folder keeping the county libraries read, for a later call in the same
    transaction (`_county_library`).
    """
    tail = pl.concat_str(
        *(pl.col(c).fill_null("") for c in ("road", "door", "building", "unit", "room")),
        separator="|",
    )
    root = Path(tempfile.mkdtemp(prefix="gridgov_match_"))
    try:
        folders: dict[str, Path] = {}
        for i, part in enumerate(distinct.iter_slices(250_000)):
            whole = parse_texts(part.get_column("text"))
            if keep_parsed is not None:
                keep_parsed.mkdir(parents=True, exist_ok=True)
                whole.select(*text_keys(pl.col("text")), road_door_key()).write_parquet(
                    keep_parsed / f"{uuid.uuid4().hex}.parquet"
                )
            parsed = whole.select(
                "text",
                "key",
                # `_county`: the key's place is the village code, or "scope/village", or scope.
                pl.col("place").str.split("/").list.first().str.slice(0, 6).alias("county"),
                pl.col("road").is_not_null().alias("has_road"),
                pl.col("door").is_not_null().alias("has_door"),
                tail.alias("tail"),
            )
            parsed = part.join(parsed, on="text", how="left", maintain_order="left")
            del whole
            for (county,), rows in parsed.partition_by(
                "county", as_dict=True, include_key=False
            ).items():
                folder = folders.setdefault(str(county or ""), root / f"c{len(folders)}")
                folder.mkdir(exist_ok=True)
                rows.write_parquet(folder / f"{i:05d}.parquet")
        library_counties = query_frame(
            session, "SELECT DISTINCT substr(key, 1, 6) FROM addresses", {"county": pl.String()}
        ).get_column("county")
        counties = sorted(
            {c for c in library_counties.to_list() if len(c) == 6 and c.isdigit()}
            | {c for c in folders if c}
        )
        out: list[pl.DataFrame] = []
        # No county written (common in rental and health records): unique in the city.
        cityless = _read_parts(folders.get(""))
        in_city = cityless.filter(pl.col("has_road") & pl.col("has_door"))
        out.append(_unmatched(cityless.filter(~(pl.col("has_road") & pl.col("has_door")))))
        del cityless
        wanted_tails = in_city.select("tail").unique()
        city_tails: list[pl.DataFrame] = []
        for county in counties:
            texts = _read_parts(folders.get(county))
            if texts.is_empty() and wanted_tails.is_empty():
                continue  # nothing to match here, no city-wide tail to count
            if len(county) == 6 and county.isdigit():
                library = _county_library(session, county, library_cache)
            else:
                library = pl.DataFrame(schema=_LIBRARY_SCHEMA)
            lib_tails = library.select(
                "id",
                pl.concat_str("road", "door_no", "building", "unit", "room", separator="|").alias(
                    "tail"
                ),
            )
            if not wanted_tails.is_empty():
                city_tails.append(lib_tails.join(wanted_tails, on="tail", how="semi"))
            if not texts.is_empty():
                out.extend(_match_county(texts, library, lib_tails))
        if not in_city.is_empty():
            counted = (
                pl.concat(city_tails, how="vertical")
                .group_by("tail")
                .agg(pl.len().alias("n"), pl.col("id").first().alias("address_id"))
                if city_tails
                else pl.DataFrame(
                    schema={"tail": pl.String(), "n": pl.UInt32(), "address_id": pl.Int64()}
                )
            )
            in_city = in_city.join(counted, on="tail", how="left", maintain_order="left")
            out.append(
                in_city.filter(pl.col("n") == 1).select(
                    "text_id",
                    "address_id",
                    pl.lit(TAIL).alias("method"),
                    pl.lit(0.9).alias("score"),
                )
            )
            out.append(_unmatched(in_city.filter(pl.col("n").fill_null(0) != 1)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return pl.concat(out, how="vertical_relaxed").cast(ID_MATCH_SCHEMA)  # type: ignore[arg-type]


_PARSED_SPILL = {
    "text_id": pl.Int64(),
    "text": pl.String(),
    "key": pl.String(),
    "has_road": pl.Boolean(),
    "has_door": pl.Boolean(),
    "tail": pl.String(),
}
ID_MATCH_SCHEMA = {
    "text_id": pl.Int64(),
    "address_id": pl.Int64(),
    "method": pl.String(),
    "score": pl.Float64(),
}


def _read_parts(folder: Path | None) -> pl.DataFrame:
    if folder is None:
        return pl.DataFrame(schema=_PARSED_SPILL)
    return pl.concat(
        [pl.read_parquet(f) for f in sorted(folder.glob("*.parquet"))], how="vertical_relaxed"
    ).cast(_PARSED_SPILL)  # type: ignore[arg-type]


def _unmatched(texts: pl.DataFrame) -> pl.DataFrame:
    return texts.select(
        "text_id",
        pl.lit(None, pl.Int64()).alias("address_id"),
        pl.lit("").alias("method"),
        pl.lit(0.0).alias("score"),
    )


def _match_county(
    texts: pl.DataFrame, library: pl.DataFrame, lib_tails: pl.DataFrame
) -> list[pl.DataFrame]:
    """One county's texts against that county's addresses (see `_match_ids`)."""
    joined = texts.join(library.select("key", "id"), on="key", how="left", maintain_order="left")
    out = [
        joined.filter(pl.col("id").is_not_null()).select(
            "text_id",
            pl.col("id").alias("address_id"),
            pl.lit(EXACT).alias("method"),
            pl.lit(1.0).alias("score"),
        )
    ]
    rest = joined.filter(pl.col("id").is_null()).drop("id")
    out.append(_unmatched(rest.filter(~pl.col("has_road"))))
    unique_county = lib_tails.group_by("tail").agg(
        pl.len().alias("n"), pl.col("id").first().alias("address_id")
    )
    in_county = rest.filter("has_road").join(
        unique_county, on="tail", how="left", maintain_order="left"
    )
    out.append(
        in_county.filter(pl.col("n") == 1).select(
            "text_id", "address_id", pl.lit(TAIL).alias("method"), pl.lit(0.95).alias("score")
        )
    )
    similar = in_county.filter(pl.col("n").fill_null(0) != 1).select("text_id", "text")
    if similar.is_empty():
        return out
    parsed = [parse(text) for text in similar.get_column("text").to_list()]
    wanted = pl.DataFrame(
        list({(_county(p), p.road or "", p.door or "") for p in parsed}),
        schema=_strings("county", "road", "door_no"),
        orient="row",
    )
    reach = (
        library.with_columns(pl.col("village_code").str.slice(0, 6).alias("county"))
        .join(wanted, on=["county", "road", "door_no"], how="semi", maintain_order="left")
        .select(*_LIBRARY_SCHEMA)
    )
    if reach.is_empty():
        out.append(_unmatched(similar))
        return out
    matcher = AddressMatcher(rows=reach.iter_rows())
    found = []
    for text_id, raw in similar.iter_rows():
        m = matcher.match(raw)
        found.append((text_id, m.address_id, m.method, m.score))
    out.append(pl.DataFrame(found, schema=ID_MATCH_SCHEMA, orient="row"))
    return out


# ------------------------------------------------------------------- rooms and people


_ROOM_FIELDS = ("address", "use", "area", "cert_no")


def place_rooms(session: Session, *, now: datetime) -> PlaceStats:
    """Rooms from the housing register (ZJ), each room record and rental registration linked to
    its room (`record_links`, entity "room"); runs before the persons step, which places each
    golden person in a room as it writes them (`Placement`)."""
    stats = PlaceStats()
    session.flush()
    stamp = pl.lit(now).dt.convert_time_zone("UTC").alias("updated_at")
    with closing(source_frames(session, ["room", "tenancy"], _ROOM_FIELDS)) as frames:
        parts = [
            chunk.select(
                "id", "source", "kind", pl.col("address").fill_null(""), "use",
                pl.col("area").cast(pl.Float64, strict=False), pl.col("cert_no").fill_null(""),
            )
            for chunk in frames
        ]  # fmt: skip
    if not parts:
        return stats
    records = pl.concat(parts, how="vertical")
    del parts
    # Texts become numbers (the texts themselves are needed only to match them).
    distinct = _distinct_texts(records.get_column("address"))
    records = _with_text_id(records, "address", distinct)
    matches = _match_ids(session, distinct)
    del distinct
    records = records.join(matches, on="text_id", how="left", maintain_order="left").drop("text_id")
    stats.unmatched += records.get_column("address_id").null_count()
    records = records.filter(pl.col("address_id").is_not_null())
    _count(stats, records.get_column("method"))
    addresses = query_frame(
        session,
        "SELECT id, building_id, grid_code FROM addresses",
        {"address_id": pl.Int64(), "building_id": pl.Int64(), "grid_code": pl.String()},
    )
    # One room per address: the last record's values, in the order addresses first appear.
    rooms = (
        records.filter(pl.col("kind") == "room")
        .with_row_index("_pos")
        .group_by("address_id", maintain_order=True)
        .agg(pl.col("_pos").first(), pl.all().exclude("_pos").last())
        .sort("_pos")
        .join(addresses, on="address_id", how="left", maintain_order="left")
        .select(
            "address_id", "building_id", "grid_code", "use",
            pl.col("area").alias("area_m2"), "cert_no",
            pl.concat_str(
                pl.lit('{"use": {"source": "'), "source", pl.lit('", "record": '),
                pl.col("id").cast(pl.String), pl.lit("}}"),
            ).alias("provenance"),
            stamp,
        )
    )  # fmt: skip
    del addresses
    with ExitStack() as deferred:
        deferred.enter_context(deferred_indexes(session, "rooms", rooms.height))
        deferred.enter_context(deferred_indexes(session, "record_links", records.height))
        stats.rooms += copy_frame(
            session, Room.__table__, rooms, conflict=("address_id",), optimistic=True
        )
        del rooms
        room_of = query_frame(
            session,
            "SELECT address_id, id FROM rooms",
            {"address_id": pl.Int64(), "room_id": pl.Int64()},
        )
        links = (
            records.join(room_of, on="address_id", how="inner", maintain_order="left")
            .sort("id")
            .select(
                pl.col("id").alias("source_record_id"),
                pl.lit("room").alias("entity"),
                pl.col("room_id").alias("entity_id"),
                "method",
                "score",
            )
        )
        stats.links += copy_frame(
            session, RecordLink.__table__, links, conflict=("source_record_id",), optimistic=True
        )
    check_references(session, ["rooms"])
    return stats


def _count(stats: PlaceStats, methods: pl.Series) -> None:
    for method, n in methods.value_counts(sort=True).iter_rows():
        stats.matched[method] = stats.matched.get(method, 0) + n


_PLACES = {
    "address_id": pl.Int64(),
    "building_id": pl.Int64(),
    "grid_code": pl.String(),
    "method": pl.String(),
}


class Placement:
    """Golden persons' rooms and grids by their actual address, decided as the persons step
    writes them (each person written once, placed — not written, then updated: at city scale
    that UPDATE of 4.7 million persons was the rooms step's largest part).

    `learn` matches the distinct actual-address texts the decided persons chose, once each
    (`_match_ids`); `apply` then gives a part of decided persons their room and grid by a join:
    the grid of the matched address (else the one the frame has, from field checks), the room at
    that address, made where there is none yet (ids reserved, so the persons can be written with
    them). Persons whose address matches nothing are kept for `open_tasks`: a grid worker checks
    the address on site. Texts are keyed by two 64-bit hashes (no text is held)."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.now = now
        self.stats = PlaceStats()
        self._places = pl.DataFrame(
            schema={"_h1": pl.UInt64(), "_h2": pl.UInt64(), **_PLACES}
        ).with_columns(pl.col("method").cast(pl.Categorical()))
        self._unmatched = pl.DataFrame(schema={"_h1": pl.UInt64(), "_h2": pl.UInt64()})
        self._rooms = query_frame(
            session,
            "SELECT address_id, id FROM rooms",
            {"address_id": pl.Int64(), "room_id": pl.Int64()},
        )
        # id, method (placed), text (matched nothing) of each person decided, in decision order
        self._decisions: list[pl.DataFrame] = []
        self._parked: Path | None = None
        self._keep_parsed: Path | None = None

    _STATE = ("_places", "_unmatched", "_rooms")

    def park(self, folder: Path) -> None:
        """Put what the placement holds (at city scale some hundreds of MB) in Parquet files in
        `folder` while other work needs the memory; it is read back when next used."""
        if self._parked is not None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        for name in self._STATE:
            getattr(self, name).write_parquet(folder / f"{name}.parquet")
            setattr(self, name, None)
        if self._decisions:
            pl.concat(self._decisions).write_parquet(folder / "_decisions.parquet")
        self._decisions = []
        self._parked = folder

    def _unpark(self) -> None:
        folder, self._parked = self._parked, None
        if folder is None:
            return
        for name in self._STATE:
            setattr(self, name, pl.read_parquet(folder / f"{name}.parquet"))
        decisions = folder / "_decisions.parquet"
        if decisions.exists():
            self._decisions = [pl.read_parquet(decisions), *self._decisions]
        shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def maybe(session: Session, now: datetime) -> Placement | None:
        """A placement, or None while the address library is empty (nothing to match against:
        persons are placed once it is built and the step runs again)."""
        if session.execute(text("SELECT 1 FROM addresses LIMIT 1")).first() is None:
            return None
        return Placement(session, now)

    def keep_parsed(self, folder: Path) -> None:
        """Also write each text's matcher address key as it is parsed (`_match_ids`): the persons
        step's matcher reads the golden persons' addresses from there (`parsed_addr`) instead of
        parsing millions of them a second time. The county libraries read for matching are kept
        beside it (`library/`), for the next `learn` (the library does not change meanwhile)."""
        self._keep_parsed = folder

    def learn(self, session: Session, texts: pl.Series) -> None:
        """Match the texts not matched yet."""
        self._unpark()
        distinct = _distinct_texts(texts).filter(pl.col("text") != "")
        distinct = distinct.with_columns(text_keys(pl.col("text")))
        for known in (self._places, self._unmatched):
            distinct = distinct.join(known, on=["_h1", "_h2"], how="anti")
        if distinct.is_empty():
            return
        library = self._keep_parsed.with_name("library") if self._keep_parsed else None
        found = distinct.join(
            _match_ids(session, distinct, self._keep_parsed, library), on="text_id", how="left"
        )
        wanted = found.select(pl.col("address_id").drop_nulls().unique())
        addresses = query_frame(
            session,
            "SELECT id, building_id, grid_code FROM addresses",
            {"address_id": pl.Int64(), "building_id": pl.Int64(), "grid_code": pl.String()},
        ).join(wanted, on="address_id", how="semi")
        # A matched address without a grid places nobody (as the address is not placed either).
        places = (
            found.filter(pl.col("address_id").is_not_null())
            .join(addresses, on="address_id", how="inner")
            .filter(pl.col("grid_code").fill_null("") != "")
            .select("_h1", "_h2", *_PLACES)
            .with_columns(pl.col("method").cast(pl.Categorical()))
        )
        self._places = pl.concat([self._places, places])
        self._unmatched = pl.concat(
            [self._unmatched, found.filter(pl.col("address_id").is_null()).select("_h1", "_h2")]
        )

    def apply(self, session: Session, updates: pl.DataFrame) -> pl.DataFrame:
        """`updates` (decided golden persons: id, actual_address, …) with room_id and grid_code."""
        self._unpark()
        if "actual_address" not in updates.columns or updates.is_empty():
            return updates
        people = updates.select(
            "id",
            pl.col("actual_address").fill_null("").alias("text"),
            *text_keys(pl.col("actual_address").fill_null("")),
        ).filter(pl.col("text") != "")
        placed = people.join(self._places, on=["_h1", "_h2"], how="inner")
        new = (
            placed.select("address_id", "building_id", "grid_code")
            .unique("address_id")
            .join(self._rooms, on="address_id", how="anti")
            .sort("address_id")
        )
        if not new.is_empty():
            ids = reserve_ids(session, Room, new.height)
            rooms = new.with_columns(ids.alias("id")).select(
                "id", "address_id", "building_id", "grid_code",
                pl.lit(None, pl.String()).alias("use"), pl.lit(None, pl.Float64()).alias("area_m2"),
                pl.lit("").alias("cert_no"), pl.lit("{}").alias("provenance"),
                pl.lit(self.now).dt.convert_time_zone("UTC").alias("updated_at"),
            )  # fmt: skip
            # Reserved ids at addresses without a room: new by construction.
            made = copy_frame(session, Room.__table__, rooms, conflict=())
            if made != rooms.height:
                raise RuntimeError(f"rooms: {rooms.height - made} were made meanwhile")
            self.stats.rooms += made
            self._rooms = pl.concat(
                [self._rooms, rooms.select("address_id", pl.col("id").alias("room_id"))]
            )
        placed = placed.join(self._rooms, on="address_id", how="inner")
        nowhere = people.join(self._unmatched, on=["_h1", "_h2"], how="semi").select("id", "text")
        self._decisions.append(
            people.select("id")
            .join(placed.select("id", "method"), on="id", how="left", maintain_order="left")
            .join(nowhere, on="id", how="left", maintain_order="left")
        )
        out = updates.join(
            placed.select("id", "room_id", pl.col("grid_code").alias("_grid")),
            on="id",
            how="left",
            maintain_order="left",
        )
        grid = pl.coalesce("_grid", "grid_code") if "grid_code" in out.columns else pl.col("_grid")
        return out.with_columns(grid.alias("grid_code")).drop("_grid")

    def open_tasks(self, session: Session, grids: pl.DataFrame) -> int:
        """Field checks for the persons whose actual address matched nothing (each person's last
        decision counts; one open task per person however often it is run). Fills `stats`."""
        self._unpark()
        if not self._decisions:
            return 0
        last = pl.concat(self._decisions).unique("id", keep="last", maintain_order=True)
        self._decisions = []
        placed = last.get_column("method").drop_nulls()
        pending = last.filter(pl.col("text").is_not_null())
        del last
        self.stats.persons_placed = placed.len()
        _count(self.stats, placed.cast(pl.String))
        self.stats.unmatched = pending.height
        self.stats.tasks_opened = _address_tasks(
            session,
            pending.select(
                pl.lit("person").alias("entity"), pl.col("id").alias("entity_id"),
                pl.lit("actual_address").alias("field"), "text",
            ),
            self.now,
            grids,
        )  # fmt: skip
        return self.stats.tasks_opened


def link_residents(session: Session, *, now: datetime) -> PlaceStats:
    """Owners (ZJ room records) and tenants (rental registrations) of the rooms their records were
    linked to (`place_rooms`), and every placed person as a member of their room (以房管人)."""
    stats = PlaceStats()
    session.flush()
    # Persons placed in a room: each becomes a member of it (at most as many links as that, and
    # the owners and tenants besides), so a first load builds the links' room index at the end.
    placed = session.execute(
        text("SELECT count(*) FROM persons WHERE room_id IS NOT NULL")
    ).scalar_one()
    with deferred_indexes(session, "person_rooms", int(placed)):
        fields = ("owner_id", "tenant_id", "start_date", "end_date")
        with closing(source_frames(session, ["room", "tenancy"], fields)) as frames:
            parts = [
                chunk.select(
                    "id", "kind",
                    pl.when(bad_fields(pl.col("flags")).list.contains("owner_id").fill_null(False))
                    .then(None).otherwise(pl.col("owner_id")).alias("owner_id"),
                    "tenant_id", "start_date", "end_date",
                )
                for chunk in frames
            ]  # fmt: skip
        if parts:
            records = pl.concat(parts, how="vertical").join(
                query_frame(
                    session,
                    "SELECT source_record_id, entity_id FROM record_links WHERE entity = 'room'",
                    {"id": pl.Int64(), "room_id": pl.Int64()},
                ),
                on="id",
                how="inner",
                maintain_order="left",
            )
            del parts
            owners = records.filter(
                (pl.col("kind") == "room") & (pl.col("owner_id").fill_null("") != "")
            ).select(
                "room_id", pl.col("owner_id").alias("cid"), pl.lit("owner").alias("relation"),
                pl.lit(None, pl.String()).alias("valid_from"), pl.lit(None, pl.String()).alias("valid_to"),
            )  # fmt: skip
            tenants = records.filter(pl.col("kind") != "room").select(
                "room_id", pl.col("tenant_id").fill_null("").alias("cid"),
                pl.lit("tenant").alias("relation"),
                _date("start_date").alias("valid_from"), _date("end_date").alias("valid_to"),
            )  # fmt: skip
            del records
            persons_by_cid = query_frame(
                session,
                "SELECT citizen_id, id FROM persons WHERE citizen_id IS NOT NULL",
                {"cid": pl.String(), "person_id": pl.Int64()},
            )
            links = (
                pl.concat([owners, tenants], how="vertical")
                .join(persons_by_cid, on="cid", how="inner", maintain_order="left")
                .select(
                    "person_id", "room_id", "relation", pl.lit("ZJ").alias("source"),
                    "valid_from", "valid_to",
                )
                # The first record of a person, room and relation gives its dates (as a stored link
                # keeps its own).
                .unique(["person_id", "room_id", "relation"], keep="first", maintain_order=True)
            )  # fmt: skip
            del persons_by_cid
            stats.links += copy_frame(
                session, PersonRoom.__table__, links, conflict=("person_id", "room_id", "relation"),
                optimistic=True,
            )  # fmt: skip
        # Members: in the database, from the persons' rooms (no rows through Python).
        result = session.execute(
            text(
                "INSERT INTO person_rooms (person_id, room_id, relation, source) "
                "SELECT id, room_id, 'member', 'GA' FROM persons WHERE room_id IS NOT NULL "
                "ORDER BY id ON CONFLICT (person_id, room_id, relation) DO NOTHING"
            )
        )
        stats.links += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    stats.persons_placed = int(placed)
    check_references(session, ["person_rooms"])
    return stats


def place_rooms_and_people(session: Session, *, now: datetime) -> PlaceStats:
    """Rooms, golden persons' rooms and grids, and residents, for persons resolved before the
    rooms (`gridgov resolve` places persons as it writes them: rooms, persons, …, residents)."""
    stats = place_rooms(session, now=now)
    people = query_frame(
        session,
        "SELECT id, actual_address, grid_code, room_id FROM persons WHERE actual_address != '' "
        "ORDER BY id",
        {"id": pl.Int64(), "actual_address": pl.String(), "grid_code": pl.String(),
         "room_id": pl.Int64()},
    )  # fmt: skip
    placement = Placement.maybe(session, now)
    if placement is not None:
        placement.learn(session, people.get_column("actual_address"))
        placed = placement.apply(session, people.drop("room_id").rename({"grid_code": "_old"}))
        changed = placed.join(people.select("id", pl.col("room_id").alias("_was")), on="id").filter(
            pl.col("room_id").is_not_null() & (pl.col("room_id") != pl.col("_was")).fill_null(True)
            | (pl.col("grid_code").fill_null("") != pl.col("_old").fill_null(""))
            & pl.col("grid_code").is_not_null()
        )
        if not changed.is_empty():
            _update_persons(session, changed.select("id", "room_id", "grid_code"))
            check_references(session, ["persons"])
        stats.tasks_opened += placement.open_tasks(session, people.select("id", "grid_code"))
        stats.rooms += placement.stats.rooms
        stats.unmatched += placement.stats.unmatched
        for method, n in placement.stats.matched.items():
            stats.matched[method] = stats.matched.get(method, 0) + n
    residents = link_residents(session, now=now)
    stats.links += residents.links
    stats.persons_placed = residents.persons_placed
    return stats


def _update_persons(session: Session, updates: pl.DataFrame) -> None:
    """Set room_id and grid_code of the persons given (id, room_id, grid_code) in one bulk UPDATE."""
    update_from_frame(session, Person.__table__, updates)
    # Persons already loaded in this session would otherwise keep the old values.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Person):
            session.expire(obj, ["room_id", "grid_code"])


def _date(column: str) -> pl.Expr:
    """An ISO date field (standardised on import) as ISO text; null when absent or malformed."""
    return pl.col(column).str.to_date("%Y-%m-%d", strict=False).dt.to_string("%Y-%m-%d")


def _address_tasks(
    session: Session, items: pl.DataFrame, now: datetime, grids: pl.DataFrame
) -> int:
    """Addresses that matched nothing well enough (entity, entity_id, field, text): a grid
    worker checks each on site (the leader of the person's grid: `grids` id, grid_code)."""
    if items.is_empty():
        return 0
    leaders = {g: u for g, u in session.execute(select(GridLeader.grid_code, GridLeader.user_id))}
    grids = grids.select(pl.col("id").alias("entity_id"), pl.col("grid_code").cast(pl.String))
    rows = items.join(grids, on="entity_id", how="left", maintain_order="left")
    candidates = [
        json.dumps([{"value": text, "source": "", "record": None, "as_of": None}])
        for text in rows.get_column("text").to_list()
    ]
    assignees = [leaders.get(g) if g else None for g in rows.get_column("grid_code").to_list()]
    tasks = rows.select(
        "entity", "entity_id", "field", pl.lit("address_unmatched").alias("kind"),
        pl.Series("candidates", candidates, dtype=pl.String()), "grid_code",
        pl.Series("assignee_id", assignees, dtype=pl.Int64()), pl.lit("open").alias("status"),
        pl.concat_str("entity", "entity_id", "field", separator=":").alias("open_key"),
        pl.lit(now).dt.convert_time_zone("UTC").alias("created_at"), pl.lit("").alias("note"),
    )  # fmt: skip
    made = 0
    for part in in_chunks(tasks):
        made += copy_frame(session, CheckTask.__table__, part, conflict=("open_key",))
    return made
