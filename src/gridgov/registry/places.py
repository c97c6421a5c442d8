"""Standard addresses, buildings and rooms; matching department addresses to them (以房管人).

1. `build_address_library`: the natural-resources department's standard addresses (ZR) become the
   address library: one row per room-level address keyed as DOMAIN.md §4, its building, and the
   grid its point lies in (the locate index, vectorised).
2. `match_addresses`: free-text addresses from any department are parsed, then matched to the
   library: exactly by key; else by the same road, door, building, unit and room in the same
   county (or, with no county written, the city) when that is unique; else by similarity within the same road and door number. Below
   `THRESHOLD` nothing is guessed: the caller queues a field check.
3. `place_rooms_and_people`: rooms from the housing department (ZJ) with owners, tenants from
   rental registrations, and each golden person's room and grid from their actual address.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gridgov.db.bulk import insert_new
from gridgov.geo import service as geo
from gridgov.ingest.models import SourceRecord
from gridgov.registry.golden import _chunks, _grid_leaders, _pairs
from gridgov.registry.models import (
    Address,
    Building,
    CheckTask,
    Person,
    PersonRoom,
    RecordLink,
    Room,
)
from gridgov.resolve.address import (
    ParsedAddress,
    address_similarity,
    default_gazetteer,
    parse_address,
)

THRESHOLD = 0.85  # below this similarity an address is queued for a field check
EXACT, TAIL, FUZZY = "exact", "road", "fuzzy"


@lru_cache(maxsize=200_000)
def parse(text: str) -> ParsedAddress:
    return parse_address(text, gazetteer=default_gazetteer())


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


def build_address_library(session: Session, *, now: datetime) -> PlaceStats:
    """Addresses and buildings from the standard-address records, placed in grids by point."""
    stats = PlaceStats()
    records = list(
        session.scalars(
            select(SourceRecord)
            .where(SourceRecord.kind == "address")
            .order_by(SourceRecord.as_of.desc().nulls_last(), SourceRecord.id.desc())
        )
    )
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        v = r.values
        p = parse(v.get("address", ""))
        village = v.get("village_code") or p.village_code
        if not village:
            continue
        key = "|".join((village, *_tail(p).split("|")))
        if key in rows:  # the newest record of an address wins (sorted above)
            continue
        rows[key] = {
            "key": key,
            "code": v.get("address_code"),
            "village_code": village,
            "road": p.road or v.get("road", ""),
            "door_no": p.door or v.get("door_no", ""),
            "compound": p.compound or v.get("compound", ""),
            "building": p.building or "",
            "unit": p.unit or "",
            "room": p.room or "",
            "text": p.normalized,
            "lon": v.get("lon"),
            "lat": v.get("lat"),
            "source": r.source,
            "updated_at": now,
            "_record": r.id,
        }
    items = list(rows.values())
    with_point = [a for a in items if a["lon"] is not None and a["lat"] is not None]
    if with_point:
        grids = geo.locate_many(
            session,
            np.array([a["lon"] for a in with_point], dtype="f8"),
            np.array([a["lat"] for a in with_point], dtype="f8"),
        )
        for a, g in zip(with_point, grids, strict=True):
            a["grid_code"] = g
            stats.outside_grids += g is None
    buildings: dict[str, dict[str, Any]] = {}
    for a in items:
        bkey = "|".join((a["village_code"], a["road"], a["door_no"], a["building"]))
        a["_bkey"] = bkey
        b = buildings.setdefault(
            bkey,
            {
                "key": bkey,
                "village_code": a["village_code"],
                "grid_code": a.get("grid_code"),
                "name": f"{a['road']}{a['door_no']}{a['compound']}{a['building']}",
                "lon": a["lon"],
                "lat": a["lat"],
                "rooms": 0,
                "updated_at": now,
            },
        )
        b["rooms"] += 1
    for chunk in _chunks(list(buildings.values())):
        stats.buildings += insert_new(session, Building.__table__, chunk, conflict=("key",))
    building_ids = _ids_by_key(session, Building, [b["key"] for b in buildings.values()])
    clean = []
    for a in items:
        row = {k: v for k, v in a.items() if not k.startswith("_")}
        row.setdefault("grid_code", None)
        row["building_id"] = building_ids.get(a["_bkey"])
        clean.append(row)
    for chunk in _chunks(clean):
        stats.addresses += insert_new(session, Address.__table__, chunk, conflict=("key",))
    address_ids = _ids_by_key(session, Address, [a["key"] for a in items])
    links = [
        {"source_record_id": a["_record"], "entity": "address", "entity_id": address_ids[a["key"]],
         "method": "key", "score": None}
        for a in items
        if a["key"] in address_ids
    ]  # fmt: skip
    for chunk in _chunks(links):
        stats.links += insert_new(
            session, RecordLink.__table__, chunk, conflict=("source_record_id",)
        )
    session.flush()
    return stats


def _ids_by_key(session: Session, model: Any, keys: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in _chunks(sorted(set(keys))):
        out.update(_pairs(session, select(model.key, model.id).where(model.key.in_(chunk))))
    return out


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Match:
    address_id: int | None
    method: str  # exact, road, fuzzy, or "" when unmatched
    score: float
    parsed: ParsedAddress


class AddressMatcher:
    """The library in memory, indexed for the three matching steps."""

    def __init__(self, session: Session) -> None:
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
        self.parsed: dict[int, ParsedAddress] = {}
        for r in rows:
            self.by_key[r.key] = r.id
            county = r.village_code[:6]
            tail = "|".join((r.road, r.door_no, r.building, r.unit, r.room))
            self.by_tail.setdefault((county, tail), []).append(r.id)
            self.by_tail_city.setdefault(tail, []).append(r.id)
            self.by_door.setdefault((county, r.road, r.door_no), []).append(r.id)
            self.parsed[r.id] = ParsedAddress(
                source="", village_code=r.village_code, road=r.road or None,
                door=r.door_no or None, compound=r.compound or None,
                building=r.building or None, unit=r.unit or None, room=r.room or None,
            )  # fmt: skip

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
                score = address_similarity(p, self.parsed[cid])
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


# ------------------------------------------------------------------- rooms and people


def place_rooms_and_people(session: Session, *, now: datetime) -> PlaceStats:
    """Rooms (ZJ), owners and tenants, and golden persons' rooms and grids by actual address."""
    stats = PlaceStats()
    matcher = AddressMatcher(session)
    addr_grid = _pairs(session, select(Address.id, Address.grid_code))
    addr_building = _pairs(session, select(Address.id, Address.building_id))
    persons_by_cid = _pairs(
        session, select(Person.citizen_id, Person.id).where(Person.citizen_id.is_not(None))
    )
    unmatched: list[tuple[str, int, str, str]] = []  # entity, id, field, text

    def count(method: str) -> None:
        stats.matched[method] = stats.matched.get(method, 0) + 1

    # Rooms from the housing register, with owners.
    room_rows: dict[int, dict[str, Any]] = {}
    owners: list[tuple[int, str]] = []
    tenants: list[tuple[int, str, Any, Any]] = []
    for r in session.scalars(
        select(SourceRecord).where(SourceRecord.kind.in_(("room", "tenancy")))
    ):
        m = matcher.match(r.values.get("address", ""))
        if m.address_id is None:
            stats.unmatched += 1
            continue
        count(m.method)
        if r.kind == "room":
            room_rows[m.address_id] = {
                "address_id": m.address_id,
                "building_id": addr_building.get(m.address_id),
                "grid_code": addr_grid.get(m.address_id),
                "use": r.values.get("use"),
                "area_m2": r.values.get("area"),
                "cert_no": r.values.get("cert_no", ""),
                "provenance": {"use": {"source": r.source, "record": r.id}},
                "updated_at": now,
            }
            if "owner_id" not in {f.split(":", 1)[0] for f in r.flags or []} and r.values.get(
                "owner_id"
            ):
                owners.append((m.address_id, r.values["owner_id"]))
        else:
            tenants.append(
                (
                    m.address_id,
                    r.values.get("tenant_id", ""),
                    r.values.get("start_date"),
                    r.values.get("end_date"),
                )
            )
    for chunk in _chunks(list(room_rows.values())):
        stats.rooms += insert_new(session, Room.__table__, chunk, conflict=("address_id",))
    room_of = _pairs(session, select(Room.address_id, Room.id))
    links = []
    for address_id, cid in owners:
        if cid in persons_by_cid and address_id in room_of:
            links.append({"person_id": persons_by_cid[cid], "room_id": room_of[address_id],
                          "relation": "owner", "source": "ZJ", "valid_from": None, "valid_to": None})  # fmt: skip
    for address_id, cid, start, end in tenants:
        if cid in persons_by_cid and address_id in room_of:
            links.append({"person_id": persons_by_cid[cid], "room_id": room_of[address_id],
                          "relation": "tenant", "source": "ZJ",
                          "valid_from": _date(start), "valid_to": _date(end)})  # fmt: skip
    for chunk in _chunks(links):
        insert_new(
            session, PersonRoom.__table__, chunk, conflict=("person_id", "room_id", "relation")
        )
    # Each golden person's actual address → their room (created if the register lacks it) and grid.
    people = session.execute(
        select(Person.id, Person.actual_address, Person.grid_code).where(
            Person.actual_address != ""
        )
    ).all()
    new_rooms: dict[int, dict[str, Any]] = {}
    placed: list[tuple[int, int]] = []
    for pid, text, _grid in people:
        m = matcher.match(text)
        if m.address_id is None:
            stats.unmatched += 1
            unmatched.append(("person", pid, "actual_address", text))
            continue
        count(m.method)
        placed.append((pid, m.address_id))
        if m.address_id not in room_of:
            new_rooms[m.address_id] = {
                "address_id": m.address_id, "building_id": addr_building.get(m.address_id),
                "grid_code": addr_grid.get(m.address_id), "use": None, "area_m2": None,
                "cert_no": "", "provenance": {}, "updated_at": now,
            }  # fmt: skip
    for chunk in _chunks(list(new_rooms.values())):
        stats.rooms += insert_new(session, Room.__table__, chunk, conflict=("address_id",))
    room_of = _pairs(session, select(Room.address_id, Room.id))
    updates = [
        {"id": pid, "room_id": room_of[aid], "grid_code": addr_grid.get(aid)}
        for pid, aid in placed
        if addr_grid.get(aid)
    ]
    for chunk in _chunks(updates):
        session.execute(update(Person), list(chunk))
    stats.persons_placed = len(updates)
    members = [{"person_id": u["id"], "room_id": u["room_id"], "relation": "member", "source": "GA",
                "valid_from": None, "valid_to": None} for u in updates]  # fmt: skip
    for chunk in _chunks(members):
        insert_new(
            session, PersonRoom.__table__, chunk, conflict=("person_id", "room_id", "relation")
        )
    stats.tasks_opened = _address_tasks(session, unmatched, now)
    session.flush()
    return stats


def _date(value: Any) -> Any:
    from datetime import date

    return date.fromisoformat(value) if isinstance(value, str) and value else None


def _address_tasks(
    session: Session, items: Iterable[tuple[str, int, str, str]], now: datetime
) -> int:
    """An address that matched nothing well enough: a grid worker checks it on site."""
    leaders = _grid_leaders(session)
    grids = _pairs(session, select(Person.id, Person.grid_code))
    rows = []
    for entity, eid, field_name, text in items:
        grid = grids.get(eid)
        rows.append(
            {
                "entity": entity, "entity_id": eid, "field": field_name, "kind": "address_unmatched",
                "candidates": [{"value": text, "source": "", "record": None, "as_of": None}],
                "grid_code": grid, "assignee_id": leaders.get(grid) if grid else None,
                "status": "open", "open_key": f"{entity}:{eid}:{field_name}", "created_at": now, "note": "",
            }
        )  # fmt: skip
    made = 0
    for chunk in _chunks(rows):
        made += insert_new(session, CheckTask.__table__, chunk, conflict=("open_key",))
    return made
