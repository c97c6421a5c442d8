"""`gridgov generate`: the synthetic department files read as declared, match the mappings and the
manifest, carry valid identifiers and placed addresses, noise at the configured rates, and the
same seed gives the same bytes."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pytest
import shapely
from tests.helpers import demo_city
from typer.testing import CliRunner

from gridgov.cli.main import app
from gridgov.demo.names import all_vocabulary_text, name_vocab
from gridgov.demo.noise import NoiseRates
from gridgov.demo.population import Manifest, generate_population
from gridgov.geo.divisions import GRID
from gridgov.ingest.mapping import shipped_mappings
from gridgov.resolve.identifiers import check_citizen_id, check_credit_code

SCALE = 0.0005
SEED = 2023


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    out = tmp_path_factory.mktemp("city")
    return out, generate_population(out, scale=SCALE, seed=SEED, city=demo_city())


def datasets() -> dict[str, object]:
    return {d.qualified: d for s in shipped_mappings().sources.values() for d in s.datasets}


def read_rows(path: Path, fmt: str, encoding: str) -> tuple[list[str], list[list[str | None]]]:
    """Header and rows as a department clerk's program would read them."""
    if fmt == "csv":
        text = path.read_bytes().decode(encoding)  # strict: the declared encoding must hold
        rows = list(csv.reader(io.StringIO(text, newline="")))
        return [h.lstrip("\ufeff") for h in rows[0]], [list(r) for r in rows[1:]]
    if fmt == "xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        all_rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        wb.close()
        header = [h for h in all_rows[0] if h is not None]
        return [str(h) for h in header], [[None if v is None else str(v) for v in r] for r in all_rows[1:]]  # fmt: skip
    lines = path.read_text(encoding="utf-8").splitlines()
    header: list[str] = []
    rows: list[list[str | None]] = []
    for line in lines:
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            rows.append([line])
            continue
        header = header or list(doc)
        assert list(doc) == header
        rows.append([doc[k] for k in header])
    return header, rows


def test_every_file_reads_with_its_encoding_and_matches_mapping_and_manifest(
    generated: tuple[Path, Manifest],
) -> None:
    out, manifest = generated
    mapping = datasets()
    on_disk = sorted(p.name for p in out.iterdir() if p.is_file())
    assert on_disk == sorted(manifest.files)
    assert {d.qualified for d in manifest.datasets} == set(mapping)  # all 15 datasets of 11 sources
    doc = json.loads((out / "truth" / "manifest.json").read_text(encoding="utf-8"))
    assert doc["files"] == manifest.files and doc["scale"] == SCALE and doc["seed"] == SEED
    for d in manifest.datasets:
        ds = mapping[d.qualified]
        for name, count in d.files.items():
            assert ds.matches(name), name  # type: ignore[attr-defined]
            path = out / name
            raw = path.read_bytes()
            if d.encoding == "gbk":
                with pytest.raises(UnicodeDecodeError):
                    raw.decode("utf-8")  # really GBK, not UTF-8 that happens to decode
            assert raw.startswith(b"\xef\xbb\xbf") == (d.encoding == "utf-8-sig")
            header, rows = read_rows(path, d.format, d.encoding)
            assert header == [c.name for c in ds.columns], name  # type: ignore[attr-defined]
            assert len(rows) == count, name
    records = pl.read_parquet(out / "truth" / "records.parquet")
    assert records.height == manifest.total_rows
    per_file = dict(records.group_by("file").len().iter_rows())
    assert per_file == manifest.files


def test_vocabulary_is_gbk() -> None:
    """GA hukou and ZJ houses are GBK: every word the generator may write must encode."""
    all_vocabulary_text().encode("gbk")
    "".join(name_vocab().tokens).encode("gbk")


def test_identifiers_are_valid_in_the_truth(generated: tuple[Path, Manifest]) -> None:
    out, _ = generated
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    assert persons["citizen_id"].n_unique() == persons.height
    for cid, sex, birth in persons.select("citizen_id", "sex", "birth_date").iter_rows():
        check = check_citizen_id(cid)
        assert check.valid, (cid, check.problems)
        assert check.sex == sex and check.birth_date == birth
    ningbo = persons["birth_county"].str.starts_with("3302").mean()
    assert ningbo is not None and 0.5 < float(ningbo) < 0.7  # type: ignore[arg-type]
    assert persons["birth_county"].is_in(["330204", "330283"]).any()  # legacy codes before 2016
    orgs = pl.read_parquet(out / "truth" / "organizations.parquet")
    assert orgs["credit_code"].n_unique() == orgs.height
    for code, kind in orgs.select("credit_code", "kind").iter_rows():
        assert check_credit_code(code).valid, code
        assert code[0] == ("5" if kind in ("社会团体", "民办非企业单位", "基金会") else "9")


def test_addresses_lie_in_their_village_grids(generated: tuple[Path, Manifest]) -> None:
    out, manifest = generated
    addresses = pl.read_parquet(out / "truth" / "addresses.parquet")
    assert addresses.height == manifest.entities["addresses"]
    assert addresses["address_code"].n_unique() == addresses.height
    assert addresses["building_id"].n_unique() == manifest.entities["buildings"]
    assert (addresses["grid_code"].str.slice(0, 12) == addresses["village_code"]).all()
    grids = {g.code: g.geometry for g in demo_city().regions if g.level == GRID}
    geoms = np.array([grids[c] for c in addresses["grid_code"]])
    inside = shapely.contains_xy(geoms, addresses["lon"].to_numpy(), addresses["lat"].to_numpy())
    assert inside.all()
    standard = addresses["standard_address"]
    assert standard.str.starts_with("浙江省宁波市").all()
    _, zr = read_rows(out / "zr_addresses.csv", "csv", "utf-8")
    assert [r[0] for r in zr] == addresses["address_code"].to_list()


def _within(applied: int, eligible: int, rate: float) -> bool:
    sigma = math.sqrt(rate * (1 - rate) / max(eligible, 1))
    return abs(applied / max(eligible, 1) - rate) <= 4 * sigma + 0.002


def test_noise_rates_match_the_configuration(generated: tuple[Path, Manifest]) -> None:
    out, manifest = generated
    rates = NoiseRates().as_dict()
    noise = pl.read_parquet(out / "truth" / "noise.parquet")
    logged = dict(noise.group_by("kind").len().iter_rows())
    checked = 0
    for kind, entry in manifest.noise.items():
        if kind not in ("broken_rows", "moved", "twins"):  # counted per row, not per cell
            assert logged.get(kind, 0) == entry["applied"], kind
        if entry["rate"] is None or entry["eligible"] < 100:
            continue
        assert entry["rate"] == rates[kind]
        assert _within(entry["applied"], entry["eligible"], entry["rate"]), (kind, entry)
        checked += 1
    assert checked >= 15
    broken = manifest.noise["broken_rows"]
    assert broken["eligible"] == manifest.total_rows
    assert _within(broken["applied"], broken["eligible"], 0.005)
    for kind in ("broken_columns", "broken_date", "broken_code", "broken_mojibake", "id_typo"):
        assert logged.get(kind, 0) > 0, kind


def test_noisy_cells_are_what_the_truth_says(generated: tuple[Path, Manifest]) -> None:
    """ID typos fail the check, legacy numbers have 15 digits, broken rows do not parse."""
    out, _ = generated
    noise = pl.read_parquet(out / "truth" / "noise.parquet")
    header, rows = read_rows(out / "rs_insured.csv", "csv", "utf-8-sig")
    by_row = {i + 2: r for i, r in enumerate(rows)}
    col = header.index("公民身份号码")
    rs = noise.filter(pl.col("file") == "rs_insured.csv")
    broken = set(rs.filter(pl.col("kind").str.starts_with("broken_"))["row_no"])
    for kind, row_no in rs.select("kind", "row_no").iter_rows():
        if row_no in broken:
            continue
        value = by_row[row_no][col] or ""
        if kind == "id_typo":
            assert not check_citizen_id(value).valid, value
        elif kind == "id_legacy15":
            assert len(value) == 15 and check_citizen_id(value).valid, value
    for row_no in rs.filter(pl.col("kind") == "broken_columns")["row_no"]:
        assert len(by_row[row_no]) == len(header) + 1
    for row_no in rs.filter(pl.col("kind") == "broken_mojibake")["row_no"]:
        assert any("\ufffd" in (c or "") for c in by_row[row_no])
    records = pl.read_parquet(out / "truth" / "records.parquet")
    rs_truth = records.filter(pl.col("file") == "rs_insured.csv").sort("row_no")
    assert rs_truth["record_no"].to_list() == [r[0] for r in rows]
    assert rs_truth["person_id"].null_count() == 0 and rs_truth["org_id"].null_count() == 0


def test_twins_namesakes_and_movers_are_in_the_truth(generated: tuple[Path, Manifest]) -> None:
    out, _ = generated
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    twins = persons.filter(pl.col("twin_group").is_not_null())
    assert twins.height >= 2
    for _, group in twins.group_by("twin_group"):
        assert group.height == 2
        assert group["birth_date"].n_unique() == 1 and group["room_code"].n_unique() == 1
        assert group["name"].str.slice(0, 1).n_unique() == 1  # same surname
        assert group["name"].n_unique() == 2 and group["citizen_id"].n_unique() == 2
    namesakes = persons.filter(pl.col("namesake_group").is_not_null())
    for _, group in namesakes.group_by("namesake_group"):
        assert group.height >= 2 and group["name"].n_unique() == 1
        assert group["birth_date"].dt.year().n_unique() == 1
    moved = persons.filter(pl.col("moved_on").is_not_null())
    assert 0.04 < moved.height / persons.height < 0.12
    assert (moved["previous_room_code"] != moved["room_code"]).all()


def test_same_seed_same_bytes(generated: tuple[Path, Manifest], tmp_path: Path) -> None:
    out, _ = generated
    generate_population(tmp_path, scale=SCALE, seed=SEED, city=demo_city())

    def files(root: Path) -> Iterator[Path]:
        return (p.relative_to(root) for p in sorted(root.rglob("*")) if p.is_file())

    assert list(files(out)) == list(files(tmp_path))
    for rel in files(out):
        assert (out / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_cli_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path), "--scale", "0.001"])
    assert result.exit_code != 0
    assert "不为空" in result.output and "--force" in result.output
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"
    bad = CliRunner().invoke(
        app, ["generate", "--out", str(tmp_path / "new"), "--noise", "name_typo=2"]
    )
    assert bad.exit_code != 0 and "name_typo" in bad.output
