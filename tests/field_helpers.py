"""Registry data in a grid for the field-app tests: buildings, rooms, persons, a key person,
a check task; placed around a point inside the grid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import shapely
from sqlalchemy.orm import Session

from gridgov.geo.models import Region
from gridgov.registry.models import (
    Address,
    Building,
    CheckTask,
    KeyPersonTag,
    Organization,
    Person,
    Room,
)

# Buildings every 1e-4° of latitude (≈ 11 m) northwards from the grid's inner point.
STEP = 1e-4


@dataclass
class FieldData:
    grid_code: str
    lon: float
    lat: float
    building_ids: list[int]
    room_ids: list[int]
    person_id: int
    key_person_id: int
    org_id: int
    task_id: int


def grid_point(session: Session, grid_code: str) -> tuple[float, float]:
    p = shapely.from_wkb(session.get_one(Region, grid_code).geometry).representative_point()
    return float(p.x), float(p.y)


def place_field_data(
    session: Session, grid_code: str, now: datetime, *, leader_id: int | None = None
) -> FieldData:
    lon, lat = grid_point(session, grid_code)
    village = grid_code[:12]
    buildings, rooms = [], []
    # Four buildings on the worker's route, and one 500 m east (off the route).
    spots = [(lon, lat + i * STEP * 3) for i in range(4)] + [(lon + 0.0052, lat)]
    for i, (x, y) in enumerate(spots):
        b = Building(key=f"{village}|巡查路|{i + 1}号|1幢", village_code=village, grid_code=grid_code,
                     name=f"巡查路{i + 1}号1幢", lon=x, lat=y, rooms=1, updated_at=now)  # fmt: skip
        session.add(b)
        session.flush()
        a = Address(key=f"{village}|巡查路|{i + 1}号|1幢||101", village_code=village,
                    grid_code=grid_code, road="巡查路", door_no=f"{i + 1}号", building="1幢",
                    room="101", text=f"巡查路{i + 1}号1幢101室", lon=x, lat=y, building_id=b.id,
                    source="ZR", updated_at=now)  # fmt: skip
        session.add(a)
        session.flush()
        r = Room(address_id=a.id, building_id=b.id, grid_code=grid_code, use="own",
                 provenance={"use": {"source": "ZJ", "record": None}}, updated_at=now)  # fmt: skip
        session.add(r)
        session.flush()
        buildings.append(b.id)
        rooms.append(r.id)
    person = Person(citizen_id="330203199001011234", name="张走访", phone="13800000001",
                    actual_address="巡查路1号1幢101室", room_id=rooms[0], residence_status="present",
                    grid_code=grid_code, provenance={}, updated_at=now)  # fmt: skip
    elder = Person(name="李独居", phone="13800000002", room_id=rooms[1], grid_code=grid_code,
                   provenance={}, updated_at=now)  # fmt: skip
    org = Organization(name="巡查路便利店", address="巡查路2号", grid_code=grid_code,
                       provenance={}, updated_at=now)  # fmt: skip
    session.add_all([person, elder, org])
    session.flush()
    session.add(
        KeyPersonTag(
            person_id=elder.id,
            tag_class="service",
            subtype="独居老人",
            source="MZ",
            grid_code=grid_code,
            updated_at=now,
        )
    )
    task = CheckTask(
        entity="person",
        entity_id=person.id,
        field="phone",
        kind="field_vs_department",
        candidates=[
            {"value": "13800000001", "source": "WG", "record": None, "as_of": "2025-01-01"},
            {"value": "13900000009", "source": "RS", "record": None, "as_of": "2026-05-01"},
        ],
        grid_code=grid_code,
        assignee_id=leader_id,
        status="open",
        open_key=f"person:{person.id}:phone",
        created_at=now,
        note="",
    )
    session.add(task)
    session.flush()
    return FieldData(grid_code, lon, lat, buildings, rooms, person.id, elder.id, org.id, task.id)
