"""Standard addresses → buildings, rooms and grids; department addresses matched to them."""

from __future__ import annotations

import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import NOW
from tests.integration.test_golden import CID, add, at

from gridgov.accounts.models import User
from gridgov.geo.models import Region
from gridgov.registry.golden import resolve_persons
from gridgov.registry.models import Address, Building, CheckTask, Person, PersonRoom, Room
from gridgov.registry.places import (
    AddressMatcher,
    build_address_library,
    link_residents,
    place_rooms,
    place_rooms_and_people,
)

OWNER = "330203198001010016"


def library(session: Session) -> tuple[str, str]:
    grid = session.scalar(select(User.region_code).where(User.username == "grid_worker"))
    assert grid is not None
    village = session.get(Region, grid[:12])
    region = session.get(Region, grid)
    assert village is not None and region is not None and region.geometry is not None
    p = shapely.from_wkb(region.geometry).representative_point()
    for i, room in enumerate(("501室", "502室", "601室")):
        add(session, "ZR", "addresses", "address", f"ZR{i}", at(2023),
            {"address_code": f"A{i}", "address": f"中山西路88号天一家园3幢2单元{room}",
             "village_code": village.code, "lon": p.x, "lat": p.y})  # fmt: skip
    return grid, village.name


def test_library_rooms_people_and_grids(session: Session) -> None:
    grid, village = library(session)
    stats = build_address_library(session, now=NOW)
    assert (stats.addresses, stats.buildings, stats.outside_grids) == (3, 1, 0)
    addresses = session.scalars(select(Address).order_by(Address.room)).all()
    assert [a.room for a in addresses] == ["501室", "502室", "601室"]
    assert {a.grid_code for a in addresses} == {grid}
    building = session.scalars(select(Building)).one()
    assert building.rooms == 3 and building.grid_code == grid
    # Department records write the same places their own way.
    add(session, "GA", "hukou", "person", "GA1", at(2020),
        {"citizen_id": CID, "name": "张伟", "registered_address": "宁波市海曙区中山西路88号"})  # fmt: skip
    add(session, "WJ", "health_records", "person", "WJ1", at(2024),
        {"citizen_id": CID, "name": "张伟", "actual_address": "海曙区中山西路８８号天一家园三栋二单元五〇一室"})  # fmt: skip
    add(
        session,
        "GA",
        "hukou",
        "person",
        "GA2",
        at(2020),
        {"citizen_id": OWNER, "name": "王五", "actual_address": "海曙区解放南路1号"},
    )
    add(session, "ZJ", "houses", "room", "H1", at(2019),
        {"house_no": "H1", "address": f"{village}中山西路88号3幢2单元502室", "use": "rented",
         "area": 89.5, "owner_id": OWNER, "owner_name": "王五"})  # fmt: skip
    add(session, "ZJ", "rentals", "tenancy", "R1", at(2024),
        {"address": "中山西路88号3幢2单元502", "tenant_id": CID, "tenant_name": "张伟",
         "start_date": "2024-01-01"})  # fmt: skip
    # As `gridgov resolve` runs them: rooms, then persons (placed as they are written), residents.
    rooms = place_rooms(session, now=NOW)
    assert (rooms.rooms, rooms.links, rooms.unmatched) == (1, 2, 0)
    persons = resolve_persons(session, now=NOW)
    assert persons.extra["placed"] == 1 and persons.extra["rooms_made"] == 1
    assert (persons.extra["address_unmatched"], persons.extra["address_tasks"]) == (1, 1)
    placed = link_residents(session, now=NOW)
    person = session.scalars(select(Person).where(Person.citizen_id == CID)).one()
    room = session.get(Room, person.room_id)
    assert room is not None and person.grid_code == grid
    assert session.get(Address, room.address_id).room == "501室"  # type: ignore[union-attr]
    rented = session.scalars(select(Room).where(Room.use == "rented")).one()
    assert rented.area_m2 == 89.5
    links = {(x.relation, x.room_id) for x in session.scalars(select(PersonRoom))}
    assert ("tenant", rented.id) in links and ("owner", rented.id) in links
    assert ("member", room.id) in links
    assert placed.persons_placed == 1 and placed.links == 3
    # 解放南路1号 is not in the library: a field check, not a guess.
    task = session.scalars(select(CheckTask).where(CheckTask.kind == "address_unmatched")).one()
    assert task.candidates[0]["value"].endswith("解放南路1号")
    # Run again: nothing new (the open task is not opened twice).
    assert (place_rooms(session, now=NOW).rooms, place_rooms(session, now=NOW).links) == (0, 0)
    persons = resolve_persons(session, now=NOW)
    assert persons.extra["rooms_made"] == 0 and persons.extra["address_tasks"] == 0
    assert link_residents(session, now=NOW).links == 0
    again = place_rooms_and_people(session, now=NOW)
    assert again.rooms == 0 and again.tasks_opened == 0 and again.links == 0
    assert build_address_library(session, now=NOW).addresses == 0
    assert session.scalar(select(func.count()).select_from(Room)) == 2


def test_matching_steps(session: Session) -> None:
    _, village = library(session)
    build_address_library(session, now=NOW)
    m = AddressMatcher(session)
    exact = m.match(f"宁波市海曙区{village}中山西路88号天一家园3幢2单元501室")
    assert exact.method in ("exact", "road") and exact.address_id is not None
    road = m.match("宁波市海曙区中山西路88号3栋2单元601室")  # no village: unique in the county
    assert road.method == "road"
    fuzzy = m.match("海曙区中山西路88号3幢501室")  # the unit is missing
    assert fuzzy.method == "fuzzy" and fuzzy.score >= 0.85
    assert m.match("海曙区中山西路90号1幢101室").address_id is None
    assert m.match("不知道在哪").address_id is None


def test_a_parked_placement_places_as_one_never_parked(session: Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`Placement.park` (the persons step parks it while the matcher runs) keeps everything it
    learned and decided: the parked one places, makes rooms and opens tasks as the other."""
    import polars as pl

    from gridgov.registry.places import Placement

    library(session)
    build_address_library(session, now=NOW)
    texts = [
        "中山西路88号天一家园3幢2单元501室",
        "中山西路88号天一家园3幢2单元601室",
        "解放南路1号",
    ]
    first = pl.DataFrame({"id": [1, 2], "actual_address": texts[:2], "grid_code": [None, None]})
    second = pl.DataFrame({"id": [3], "actual_address": [texts[2]], "grid_code": [None]})
    grids = pl.DataFrame({"id": [1, 2, 3], "grid_code": [None, None, None]},
                         schema={"id": pl.Int64(), "grid_code": pl.String()})  # fmt: skip
    results = []
    for parked in (False, True):
        placement = Placement(session, NOW)
        placement.learn(session, pl.Series(texts))
        out = [placement.apply(session, first)]
        if parked:
            placement.park(tmp_path / "parked")
            assert placement._places is None and placement._decisions == []  # type: ignore[comparison-overlap]
            assert sorted(p.name for p in (tmp_path / "parked").iterdir()) == [
                "_decisions.parquet", "_places.parquet", "_rooms.parquet", "_unmatched.parquet"
            ]  # fmt: skip
        out.append(placement.apply(session, second))
        placement.open_tasks(session, grids)
        stats = placement.stats
        results.append(
            (
                [f.select("id", pl.col("room_id").is_not_null(), "grid_code").rows() for f in out],
                stats.persons_placed, stats.unmatched, dict(stats.matched),
            )
        )  # fmt: skip
        assert not (tmp_path / "parked").exists()  # read back and removed
    assert results[0] == results[1]
    placed, persons_placed, unmatched, _ = results[1]
    assert persons_placed == 2 and unmatched == 1
    assert [row[1] for row in placed[0]] == [True, True] and placed[1][0][1] is False


def test_kept_parses_serve_the_matcher_as_a_fresh_parse(session: Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The persons step's placement keeps each address text's parse (`Placement.keep_parsed`);
    the matcher reads those (`parsed_addr`) and parses only the texts not among them: the same
    `addr` as parsing every text afresh."""
    import polars as pl

    from gridgov.registry.address_frames import parsed_addr
    from gridgov.registry.places import Placement

    library(session)
    build_address_library(session, now=NOW)
    learned = [
        "中山西路88号天一家园3幢2单元501室",
        "宁波市海曙区中山西路88号3栋2单元601室",
        "解放南路1号",
        "不知道在哪",
    ]
    placement = Placement(session, NOW)
    placement.keep_parsed(tmp_path / "parsed")
    placement.learn(session, pl.Series(learned))
    kept = pl.read_parquet(tmp_path / "parsed" / "*.parquet")
    assert kept.height == len(learned) and kept.columns == ["_h1", "_h2", "addr"]
    asked = pl.Series([*learned[:3], "海曙区中山西路90号1幢101室", None, learned[0]])
    from_kept = parsed_addr(asked, tmp_path / "parsed").sort("text")
    afresh = parsed_addr(asked).sort("text")
    assert from_kept.equals(afresh)
    assert from_kept.height == 4  # distinct, non-null texts
    addr = dict(afresh.iter_rows())
    assert addr["解放南路1号"] == "解放南路|1号|||"
    assert addr["中山西路88号天一家园3幢2单元501室"] == "中山西路|88号|3幢|2单元|501室"
    # A text only in the kept parses is not parsed again: its kept value is what is given.
    fake = kept.with_columns(pl.lit("假路|1号|||").alias("addr"))
    (tmp_path / "fake").mkdir()
    fake.write_parquet(tmp_path / "fake" / "all.parquet")
    assert set(parsed_addr(pl.Series(learned[:2]), tmp_path / "fake")["addr"]) == {"假路|1号|||"}


def test_a_second_learn_reads_the_kept_county_libraries(session: Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The persons step's placement learns twice (the first pass, then the persons the matcher
    extended); the second time it reads the county libraries it kept, and places as a placement
    that read them from the database."""
    import polars as pl

    from gridgov.registry.places import Placement

    library(session)
    build_address_library(session, now=NOW)
    first = ["中山西路88号天一家园3幢2单元501室"]
    second = ["宁波市海曙区中山西路88号3栋2单元601室", "海曙区中山西路88号3幢502室"]
    kept = Placement(session, NOW)
    kept.keep_parsed(tmp_path / "parsed")
    kept.learn(session, pl.Series(first))
    files = sorted(p.name for p in (tmp_path / "library").glob("*.parquet"))
    assert files == ["330203.parquet"]  # the county the text named
    written = (tmp_path / "library" / "330203.parquet").stat().st_mtime_ns
    kept.learn(session, pl.Series(second))
    assert (tmp_path / "library" / "330203.parquet").stat().st_mtime_ns == written  # read, kept
    people = pl.DataFrame({"id": [1, 2, 3], "actual_address": first + second})
    placed = [kept.apply(session, people).select("id", "room_id", "grid_code").sort("id")]
    # Made after the rooms the first one made, so both give the same rooms.
    fresh = Placement(session, NOW)
    fresh.learn(session, pl.Series(first + second))
    placed.append(fresh.apply(session, people).select("id", "room_id", "grid_code").sort("id"))
    assert placed[0].equals(placed[1])
    assert placed[0]["room_id"].null_count() == 0
