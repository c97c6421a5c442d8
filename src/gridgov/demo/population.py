"""`gridgov generate`: the synthetic records of the city's 11 departments, with their ground truth.

At scale 1 the city has Ningbo's figures (5,000,000 persons, 654,000 organisations, 373,000
buildings, 5,640,000 standard addresses) and the departments hold about 18 million records besides
the standard address library. Files follow the shipped department mappings (`ingest/sources`):
their names, headers, code values and date formats, in the formats and encodings departments use.
Noise is applied at configured rates (`NoiseRates`) and recorded; `truth/` holds Parquet tables of
the true entities, which record is which entity, and every noisy cell, with `manifest.json`.
The same seed gives the same bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from gridgov.demo import departments as D
from gridgov.demo.city import CHILD, CityFigures, build_addresses, build_places, stage_rng
from gridgov.demo.codes import other_counties
from gridgov.demo.noise import NoiseLog, NoiseRates
from gridgov.demo.orgs import build_orgs
from gridgov.demo.people import build_people
from gridgov.demo.writers import write_table
from gridgov.geo.generate import GeneratedCity
from gridgov.ingest.mapping import shipped_mappings

Progress = Callable[[str, int, int], None]
GENERATOR_VERSION = "1.0"
PART_ROWS = 1_000_000
TRUTH = "truth"
STAGE = "生成部门数据"
GEOMETRY_STAGE = "生成网格几何"

# qualified dataset, file format, encoding (as the department sends it), builder
DATASETS: tuple[tuple[str, str, str], ...] = (
    ("ZR.addresses", "csv", "utf-8"),
    ("GA.hukou", "csv", "gbk"),
    ("GA.floating", "csv", "utf-8-sig"),
    ("RS.insured", "csv", "utf-8-sig"),
    ("WJ.health_records", "csv", "utf-8"),
    ("WJ.mental", "csv", "utf-8"),
    ("JY.students", "csv", "utf-8-sig"),
    ("MZ.assistance", "xlsx", ""),
    ("MZ.social_orgs", "xlsx", ""),
    ("SF.correction", "xlsx", ""),
    ("ZJ.houses", "csv", "gbk"),
    ("ZJ.rentals", "csv", "utf-8"),
    ("SJ.enterprises", "csv", "utf-8-sig"),
    ("YJ.enterprises", "xlsx", ""),
    ("WG.checks", "jsonl", "utf-8"),
)
BUILDERS: dict[str, D.Builder] = {
    "ZR.addresses": D.zr_addresses,
    "GA.hukou": D.ga_hukou,
    "GA.floating": D.ga_floating,
    "RS.insured": D.rs_insured,
    "WJ.health_records": D.wj_health,
    "WJ.mental": D.wj_mental,
    "JY.students": D.jy_students,
    "MZ.assistance": D.mz_assistance,
    "MZ.social_orgs": D.mz_social_orgs,
    "SF.correction": D.sf_correction,
    "SJ.enterprises": D.sj_enterprises,
    "YJ.enterprises": D.yj_enterprises,
    "WG.checks": D.wg_checks,
}
REFERENCE_DATASETS = ("ZR.addresses",)  # the standard address library, not department records


@dataclass(slots=True)
class DatasetSummary:
    qualified: str
    title: str
    format: str
    encoding: str
    rows: int
    files: dict[str, int]


@dataclass(slots=True)
class Manifest:
    scale: float
    seed: int
    counties: str
    entities: dict[str, int]
    datasets: list[DatasetSummary]
    noise: dict[str, dict[str, Any]]
    generator_version: str = GENERATOR_VERSION
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, not in the file

    @property
    def files(self) -> dict[str, int]:
        return {name: rows for d in self.datasets for name, rows in d.files.items()}

    @property
    def total_rows(self) -> int:
        return sum(d.rows for d in self.datasets)

    @property
    def department_records(self) -> int:
        return sum(d.rows for d in self.datasets if d.qualified not in REFERENCE_DATASETS)

    def as_dict(self) -> dict[str, Any]:
        return {
            "generator": "gridgov.demo.population",
            "generator_version": self.generator_version,
            "scale": self.scale,
            "seed": self.seed,
            "counties": self.counties,
            "entities": self.entities,
            "department_records": self.department_records,
            "total_rows": self.total_rows,
            "files": self.files,
            "datasets": {
                d.qualified: {
                    "title": d.title,
                    "format": d.format,
                    "encoding": d.encoding,
                    "rows": d.rows,
                    "files": d.files,
                }
                for d in self.datasets
            },
            "noise": self.noise,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=2) + "\n"


def generate_population(
    out: Path,
    *,
    scale: float,
    seed: int = 2023,
    progress: Progress | None = None,
    noise: NoiseRates | None = None,
    city: GeneratedCity | None = None,
    part_rows: int = PART_ROWS,
) -> Manifest:
    """Write every department's files into `out` and the ground truth into `out/truth`.

    `city` reuses generated geometry (it must come from the same seed); otherwise it is generated.
    """
    if not scale > 0:
        raise ValueError(f"scale 须大于 0, 实为 {scale}")
    rates = noise or NoiseRates()
    figures = CityFigures()
    report: Progress = progress or (lambda stage, done, total: None)
    total_steps = 4 + len(DATASETS) + 1
    step = 0
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def done(label: str) -> None:
        nonlocal step, clock
        now = time.perf_counter()
        timings[label] = now - clock
        clock = now
        step += 1
        report(STAGE, step, total_steps)

    out.mkdir(parents=True, exist_ok=True)
    (out / TRUTH).mkdir(exist_ok=True)
    if city is None:
        from gridgov.demo.build import generate_geometry
        from gridgov.geo.divisions import load_divisions

        city = generate_geometry(
            load_divisions(),
            seed=seed,
            progress=lambda _stage, d, t: report(GEOMETRY_STAGE, d, t),
        )
    places = build_places(city)
    done("places")
    addresses = build_addresses(places, figures, scale, stage_rng(seed, "addresses"))
    done("addresses")
    counties = other_counties()
    people = build_people(addresses, figures, rates, counties, scale, stage_rng(seed, "people"))
    done("persons")
    orgs = build_orgs(addresses, people, figures, scale, stage_rng(seed, "orgs"))
    done("organizations")

    log = NoiseLog()
    world = D.World(
        places=places,
        addresses=addresses,
        people=people,
        orgs=orgs,
        mappings=shipped_mappings(),
        rates=rates,
        log=log,
        scale=scale,
        seed=seed,
    )
    summaries: list[DatasetSummary] = []
    # truth rows go to disk dataset by dataset, so scale 1 never holds 23 million of them at once
    records = TruthWriter(out / TRUTH / "records.parquet")
    noisy = TruthWriter(out / TRUTH / "noise.parquet")
    house_of_room = np.zeros(0, dtype=np.int64)
    house_keys = pl.Series([], dtype=pl.String)
    for qualified, fmt, encoding in DATASETS:
        if qualified == "ZJ.houses":
            table, house_of_room = D.zj_houses(world, fmt, encoding)
            house_keys = table.frame["房屋编号"]
        elif qualified == "ZJ.rentals":
            table = D.zj_rentals(world, fmt, encoding, house_of_room, house_keys)
        else:
            table = BUILDERS[qualified](world, fmt, encoding)
        ds = table.dataset
        stem = ds.files[0].rstrip("*")
        written = write_table(
            out,
            stem,
            table.frame,
            fmt=fmt,
            encoding=encoding,
            part_rows=part_rows,
            structural=table.structural,
        )
        rec = _records(world, table, written)
        records.write(rec)
        noisy.write(_noise_rows(log, qualified, rec))
        log.cells.pop(qualified, None)
        summaries.append(
            DatasetSummary(
                qualified=qualified,
                title=ds.title,
                format=fmt,
                encoding=encoding or "xlsx",
                rows=table.frame.height,
                files={f.name: f.rows for f in written},
            )
        )
        del rec, table
        done(qualified)

    records.close()
    noisy.close()
    namesake_persons = _write_truth(out / TRUTH, world)
    _entity_noise(log, people.persons)
    entities = {
        "persons": people.persons.height,
        "households": int(people.persons["household"].n_unique()),
        "migrants": int(people.persons["migrant"].sum()),
        "organizations": orgs.orgs.height,
        "buildings": addresses.n_buildings,
        "addresses": addresses.rooms.height,
        "grids": len(places.grid_codes),
        "villages": places.villages.height,
        "moved_persons": int(people.persons["moved_on"].is_not_null().sum()),
        "twin_persons": int((people.persons["twin_group"] >= 0).sum()),
        "namesake_persons": namesake_persons,
    }
    noise_summary = {
        kind: {
            "rate": getattr(rates, kind, None),
            "eligible": eligible,
            "applied": applied,
        }
        for kind, (eligible, applied) in sorted(log.counts.items())
    }
    manifest = Manifest(
        scale=scale,
        seed=seed,
        counties=counties.source,
        entities=entities,
        datasets=summaries,
        noise=noise_summary,
    )
    (out / TRUTH / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    done("truth")
    manifest.timings = timings
    return manifest


TRUTH_FILES = (
    "records.parquet",
    "noise.parquet",
    "persons.parquet",
    "organizations.parquet",
    "addresses.parquet",
    "manifest.json",
)


def clear_generated(out: Path) -> int:
    """Delete what a previous run wrote into `out` (department files and truth); keep the rest."""
    datasets = [d for s in shipped_mappings().sources.values() for d in s.datasets]
    removed = 0
    for path in sorted(out.iterdir()):
        if path.is_file() and any(d.matches(path.name) for d in datasets):
            path.unlink()
            removed += 1
    truth = out / TRUTH
    if truth.is_dir():
        for name in TRUTH_FILES:
            if (truth / name).is_file():
                (truth / name).unlink()
                removed += 1
    return removed


def _records(world: D.World, table: D.Table, written: list[Any]) -> pl.DataFrame:
    """One truth row per written row: where it is, its record number, the true entity."""
    n = table.frame.height
    file_idx = np.zeros(n, dtype=np.int64)
    row_no = np.zeros(n, dtype=np.int64)
    for i, f in enumerate(written):
        file_idx[f.offset : f.offset + f.rows] = i
        row_no[f.offset : f.offset + f.rows] = np.arange(f.rows) + f.first_row_no
    rooms = world.addresses.rooms
    address = rooms["address_code"].gather(np.maximum(table.room, 0))
    ds = table.dataset
    person = pl.Series(table.person)
    org = pl.Series(table.org)
    entity = {
        D.PERSON: "P" + person.cast(pl.String).str.zfill(8),
        D.ORG: "O" + org.cast(pl.String).str.zfill(7),
    }.get(table.entity_kind, address)
    return pl.DataFrame(
        {
            "source": pl.Series([ds.source] * n, dtype=pl.String),
            "dataset": pl.Series([ds.name] * n, dtype=pl.String),
            "file": pl.Series([f.name for f in written]).gather(file_idx),
            "row_no": row_no,
            "record_no": table.frame[ds.key],
            "entity_kind": pl.Series([table.entity_kind] * n, dtype=pl.String),
            "entity_id": entity,
            "person_id": person.replace(-1, None),
            "org_id": org.replace(-1, None),
            "address_code": pl.select(
                pl.when(pl.lit(pl.Series(table.room >= 0))).then(pl.lit(address))
            ).to_series(),
            "as_of": pl.Series(table.as_of.astype("datetime64[D]")),
        }
    )


def _noise_rows(log: NoiseLog, qualified: str, rec: pl.DataFrame) -> pl.DataFrame:
    cells = log.frame(qualified)
    rows = cells["row"].to_numpy()
    return pl.DataFrame(
        {
            "source": rec["source"].gather(rows),
            "dataset": rec["dataset"].gather(rows),
            "file": rec["file"].gather(rows),
            "row_no": rec["row_no"].gather(rows),
            "record_no": rec["record_no"].gather(rows),
            "kind": cells["kind"],
            "column": cells["column"],
        }
    ).sort(["file", "row_no", "kind", "column"], maintain_order=True)


def _parquet(frame: pl.DataFrame, path: Path) -> None:
    pq.write_table(frame.to_arrow(compat_level=pl.CompatLevel.oldest()), path, compression="zstd")


def _entity_noise(log: NoiseLog, persons: pl.DataFrame) -> None:
    """Entity-level rates: households that moved, households with two or more children and twins."""
    hh = persons["household"].to_numpy()
    n_hh = int(hh.max()) + 1 if len(hh) else 0
    moved = np.zeros(n_hh, dtype=bool)
    moved[hh[persons["moved_on"].is_not_null().to_numpy()]] = True
    log.counts["moved"] = [n_hh, int(moved.sum())]
    children = np.bincount(hh[persons["role"].to_numpy() == CHILD], minlength=n_hh)
    twins = persons.filter(pl.col("twin_group") >= 0)["twin_group"].n_unique()
    log.counts["twins"] = [int((children >= 2).sum()), int(twins)]


class TruthWriter:
    """A Parquet file written one table at a time (one or more row groups per table)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None

    def write(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _write_truth(folder: Path, world: D.World) -> int:
    """Write persons, organisations and addresses; returns the number of persons with namesakes."""
    rooms = world.addresses.rooms
    codes = rooms["address_code"]
    p = world.people.persons
    names = D.noise_free_names(p["surname"].to_numpy(), p["g1"].to_numpy(), p["g2"].to_numpy())

    def code_or_null(idx: np.ndarray[Any, Any]) -> pl.Series:
        return pl.select(
            pl.when(pl.lit(pl.Series(idx >= 0))).then(pl.lit(codes.gather(np.maximum(idx, 0))))
        ).to_series()

    persons = pl.DataFrame(
        {
            "person_id": p["pid"],
            "citizen_id": p["citizen_id"],
            "name": names,
            "sex": p["sex"],
            "birth_date": p["birth"],
            "ethnicity": p["ethnicity"],
            "phone": p.select(
                pl.when(pl.col("phone") > 0).then(pl.col("phone").cast(pl.String))
            ).to_series(),
            "household_no": p["household_no"].replace("", None),
            "household": p["household"],
            "relation": p["relation"],
            "migrant": p["migrant"],
            "room_code": code_or_null(p["room"].to_numpy()),
            "registered_room_code": code_or_null(p["reg_room"].to_numpy()),
            "registered_address": p["registered_address"],
            "previous_room_code": code_or_null(p["prev_room"].to_numpy()),
            "moved_on": p["moved_on"],
            "birth_county": p["county"].cast(pl.String),
            "twin_group": p["twin_group"].replace(-1, None),
            "left_behind": p["left_behind"],
        }
    )
    year = p["birth"].dt.year()
    key = pl.DataFrame({"name": names, "year": year})
    shared = key.select(pl.len().over(["name", "year"]) > 1).to_series()
    group = key.select(
        pl.concat_str([pl.col("name"), pl.col("year").cast(pl.String)], separator="|").rank("dense")
    ).to_series()
    persons = persons.with_columns(
        namesake_group=pl.select(pl.when(pl.lit(shared)).then(pl.lit(group))).to_series()
    )
    _parquet(persons, folder / "persons.parquet")
    namesakes = int(shared.sum())

    o = world.orgs.orgs
    orgs = pl.DataFrame(
        {
            "org_id": o["oid"],
            "credit_code": o["credit_code"],
            "name": o["name"],
            "kind": o["kind_label"],
            "legal_rep_person_id": o["legal_rep"],
            "address_code": codes.gather(o["room"].to_numpy()),
            "industry": o["industry"],
            "status": o["status"],
            "founded_on": o["founded"],
            "phone": o["phone"].cast(pl.String),
            "hazardous": o["hazardous"],
        }
    )
    _parquet(orgs, folder / "organizations.parquet")
    addresses = rooms.select(
        pl.col("address_code"),
        pl.col("standard").alias("standard_address"),
        pl.col("village_code"),
        pl.col("grid_code"),
        pl.col("district"),
        pl.col("town"),
        pl.col("village_label").alias("village"),
        pl.col("road"),
        pl.col("door").alias("door_no"),
        pl.col("compound"),
        pl.col("bno").alias("building_no"),
        pl.col("unit"),
        pl.col("floor"),
        pl.col("room"),
        pl.col("building").alias("building_id"),
        pl.col("lon"),
        pl.col("lat"),
    ).with_columns(use=pl.Series(["own", "rented", "vacant", "commercial"]).gather(world.room_use))
    _parquet(addresses, folder / "addresses.parquet")
    return namesakes
