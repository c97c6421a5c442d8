"""The columnar address paths give what the per-row parser and matcher give, on generated addresses."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import NOW
from tests.integration.test_golden import add, at

from gridgov.demo.population import generate_population
from gridgov.registry.address_frames import normalized, parse_texts
from gridgov.registry.models import Address, CheckTask, Person
from gridgov.registry.places import (
    AddressMatcher,
    _tail,
    build_address_library,
    match_texts,
    parse,
    place_rooms_and_people,
)
from gridgov.resolve.address import (
    default_gazetteer,
    normalize_text,
    parse_address,
    parse_normal_address,
)

# Texts where the head/tail split must fall back to a whole parse, or normalisation is needed.
EDGE = [
    "海曙区中山西路88号天一家园3幢2单元501室",
    "中山西路88号3幢2单元502",
    "中山西路88号5楼501室",
    "中山西路88号3楼2单元501室",
    "江东北路3-2-501室",
    "后街路101室",
    "天一家园A101室",
    "天一家园12A101室",
    "泰园大厦1204室",
    "启明路92号安绣商城1204室",
    "海曙区中山西路８８号天一家园三栋二单元五〇一室",
    "中山西路88號3棟2單元501室",
    "宁波市鄞州区首南街道2单元301室",
    "中山西路88号3幢5层501室",
    "中山西路88号3幢2单1室",
    "天一家园12号楼2单元501户",
    "四明路小区3幢1单元101室",
    "xx村3组12号101室",
    "第一医院5号2单元301室",
    "浙江省宁波市海曙区古林镇仲一村观海街33号",
    "后街路33号",
    "宁波市鄞州区沧海西路23号",
    "中山西路88-90号",
    "天一家园12号",
    "中山西路88号天一家园3幢2单1202室",
    "四明路2号月香商务楼407室",
    "中山西路88号3A楼501室",
    "3单元501室",
    "501室",
    "",
    "不知道在哪",
]


def _read(path: Path) -> list[dict[str, str]]:
    for encoding in ("utf-8", "gbk"):
        try:
            with path.open(encoding=encoding, newline="") as fh:
                return list(csv.DictReader(fh))
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"{path} is neither UTF-8 nor GBK")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    out = tmp_path_factory.mktemp("city")
    generate_population(out, scale=0.001, seed=7)
    return {p.stem: _read(p) for p in sorted(out.glob("*.csv"))}


def _addresses(rows: list[dict[str, str]]) -> list[str]:
    return [v for r in rows for k, v in r.items() if k and ("址" in k or "坐落" in k) and v]


def _expected(text: str) -> tuple[object, ...]:
    p = parse(text)
    return (p.village_code, p.road, p.door, p.compound, p.building, p.unit, p.room,
            p.normalized, p.key())  # fmt: skip


def _got(row: dict[str, object]) -> tuple[object, ...]:
    return tuple(row[c] for c in ("village_code", "road", "door", "compound", "building",
                                  "unit", "room", "normalized", "key"))  # fmt: skip


def test_frame_parse_equals_parser_on_generated_addresses(
    city: dict[str, list[dict[str, str]]],
) -> None:
    texts = [r["标准地址"] for r in city["zr_addresses"]]
    for name, rows in city.items():
        if name != "zr_addresses":
            texts += _addresses(rows)
    texts += EDGE
    assert len(texts) > 5_000
    out = parse_texts(pl.Series(texts))
    assert out.height == len(set(texts))
    for row in out.iter_rows(named=True):
        assert _got(row) == _expected(row["text"]), row["text"]


def test_frame_parse_keeps_the_edge_cases_apart() -> None:
    out = {r["text"]: r for r in parse_texts(pl.Series(EDGE)).iter_rows(named=True)}
    assert out["中山西路88号5楼501室"]["room"] == "501室"
    assert out["中山西路88号5楼501室"]["building"] is None  # floor 5, not building 5
    assert out["中山西路88号3幢2单元502"]["room"] == "502室"
    assert out["中山西路88號3棟2單元501室"]["unit"] == "2单元"
    for text in EDGE:
        assert _got(out[text]) == _expected(text), text


def test_parse_normal_address_equals_parse_address(city: dict[str, list[dict[str, str]]]) -> None:
    gazetteer = default_gazetteer()
    texts = [normalize_text(t) for t in _addresses(city["wj_health"])[:2_000] + EDGE]
    for text in texts:
        assert parse_normal_address(text, gazetteer=gazetteer) == parse_address(
            text, gazetteer=gazetteer
        ), text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet="中山西路号幢栋单元室户楼层第一二三十〇號棟-—－ /#８８Aa0123456789．·、",
            max_size=20,
        ),
        min_size=1,
        max_size=20,
    )
)
def test_normalized_equals_normalize_text(texts: list[str]) -> None:
    assert normalized(pl.Series(texts, dtype=pl.String())).to_list() == [
        normalize_text(t) for t in texts
    ]


def test_library_and_matching_equal_the_parser_and_matcher(
    session: Session, city: dict[str, list[dict[str, str]]]
) -> None:
    zr = city["zr_addresses"]
    rng = random.Random(3)
    # Whole buildings, so that many person addresses find their room exactly.
    buildings = sorted({(r["村社区代码"], r["道路"], r["门牌号"], r["幢号"]) for r in zr})
    chosen = set(rng.sample(buildings, min(len(buildings), 12)))
    library = [r for r in zr if (r["村社区代码"], r["道路"], r["门牌号"], r["幢号"]) in chosen]
    for i, r in enumerate(library):
        values = {"address_code": r["地址编码"], "address": normalize_text(r["标准地址"]),
                  "village_code": r["村社区代码"], "road": r["道路"], "door_no": r["门牌号"],
                  "compound": r["小区"], "building": r["幢号"], "lon": float(r["经度"]),
                  "lat": float(r["纬度"])}  # fmt: skip
        add(session, "ZR", "addresses", "address", f"ZR{i}", at(2023),
            {k: v for k, v in values.items() if v != ""})  # fmt: skip
    stats = build_address_library(session, now=NOW)
    expected = {}
    for r in library:
        p = parse(normalize_text(r["标准地址"]))
        village = r["村社区代码"] or p.village_code
        expected.setdefault("|".join((village, _tail(p))), p.normalized)
    got = {k: t for k, t in session.execute(select(Address.key, Address.text))}
    assert got == expected and stats.addresses == len(expected)
    # Department addresses: some of the chosen buildings, the rest of the city, the edge cases.
    texts = sorted(
        set(_addresses(city["wj_health"]) + _addresses(city["zj_rentals"]) + EDGE)
        | {r["标准地址"].replace("社区", "") for r in library[:50]}
        | {re.sub("[0-9]+单元", "", r["标准地址"]) for r in library[:50]}  # the unit missing
    )
    matched = {r[0]: r[1:] for r in match_texts(session, pl.Series(texts)).iter_rows()}
    matcher = AddressMatcher(session)
    methods = set()
    for text in texts:
        m = matcher.match(text)
        assert matched[text] == (m.address_id, m.method, m.score), text
        methods.add(m.method)
    assert methods == {"exact", "road", "fuzzy", ""}


def test_placement_by_frames_updates_loaded_persons(session: Session) -> None:
    """Persons resolved before the address library are placed by a bulk update, which persons
    already in the session see; running it again changes nothing."""
    from tests.integration.test_places import library

    from gridgov.registry.golden import resolve_persons

    add(session, "GA", "hukou", "person", "GA9", at(2020),
        {"citizen_id": "330203198001010016", "name": "王五",
         "actual_address": "中山西路88号天一家园3幢2单元601室"})  # fmt: skip
    resolve_persons(session, now=NOW)  # no library yet: nobody placed, no address task
    person = session.scalars(select(Person).where(Person.name == "王五")).one()
    assert person.room_id is None
    assert session.scalar(select(func.count()).select_from(CheckTask)) == 0
    grid, _ = library(session)
    build_address_library(session, now=NOW)
    stats = place_rooms_and_people(session, now=NOW)
    assert (stats.persons_placed, stats.rooms, sum(stats.matched.values())) == (1, 1, 1)
    assert person.room_id is not None and person.grid_code == grid
    again = place_rooms_and_people(session, now=NOW)
    assert (again.rooms, again.links, again.tasks_opened) == (0, 0, 0)


def test_frame_parse_in_worker_processes_equals_the_parse_here(
    city: dict[str, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many heads are parsed by worker processes beside this one (`GRIDGOV_PARSE_WORKERS`): the
    same rows in the same order as parsing them all here; a broken pool falls back to here."""
    from gridgov.registry import address_frames

    texts = [r["标准地址"] for r in city["zr_addresses"]] + _addresses(city["wj_health"]) + EDGE
    here = parse_texts(pl.Series(texts))
    monkeypatch.setattr(address_frames, "PARALLEL_MIN", 10)
    monkeypatch.setenv("GRIDGOV_PARSE_WORKERS", "3")
    monkeypatch.setattr(address_frames, "_pool", None)
    try:
        parallel = parse_texts(pl.Series(texts))
        pool, size = address_frames._parse_pool()
        assert pool is not None and size == 3  # the runs went to three workers besides this one
        assert parallel.equals(here)
        # A pool whose workers die: the runs are parsed here instead, the same rows (each of the
        # three runs sent finds the pool broken).
        for process in list(pool._processes.values()):  # type: ignore[attr-defined]
            process.kill()
            process.join()
        again = parse_texts(pl.Series(texts))
        assert again.equals(here)
        assert address_frames._parse_pool() == (None, 0)  # no workers from then on
    finally:
        if address_frames._pool not in (None, address_frames._NO_POOL):
            address_frames._pool.shutdown()  # type: ignore[union-attr]
        address_frames._pool = None
        address_frames._pool_size = 0


def _parse_with_workers_here() -> int:
    """In a spawned process, as a resolution step: parse with the workers, then return."""
    from gridgov.registry import address_frames

    address_frames.PARALLEL_MIN = 1
    out = parse_texts(pl.Series(EDGE))
    assert address_frames._pool not in (None, address_frames._NO_POOL)  # the workers were used
    return out.height


def test_a_step_process_that_parsed_with_workers_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process started by multiprocessing runs no atexit hooks and waits for its children when
    it ends: the parser's workers must be shut down first, or the step never ends (as seen at
    S = 1 after the rooms step)."""
    import multiprocessing as mp
    import threading
    from concurrent.futures import ProcessPoolExecutor

    monkeypatch.setenv("GRIDGOV_PARSE_WORKERS", "1")
    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
    try:
        assert pool.submit(_parse_with_workers_here).result(timeout=300) == len(set(EDGE))
        ending = threading.Thread(target=pool.shutdown, kwargs={"wait": True}, daemon=True)
        ending.start()
        ending.join(120)
        assert not ending.is_alive(), "the step's process did not end"
    finally:
        for process in list((pool._processes or {}).values()):  # type: ignore[attr-defined]
            if process.is_alive():
                for child in mp.active_children():
                    child.kill()
                process.kill()
