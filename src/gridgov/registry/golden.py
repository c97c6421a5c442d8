"""Golden records from source records: deterministic links by identifier, survivorship, tasks.

Records that carry a valid citizen ID number (persons) or unified social credit code
(organizations) are linked by it: one golden record per identifier, so ids stay stable across
re-runs. Each field's value is chosen by the survivorship table over every linked record
(`survive_frame`), with its provenance; conflicts open a check task for the leader of the
record's grid, at most one open task per record and field however often the conflict is seen.
Records without a valid identifier are left for probabilistic matching (not linked here).

Everything is set-based: candidates go through Polars, writes are multi-row statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gridgov.db.bulk import insert_new
from gridgov.geo.models import GridLeader
from gridgov.ingest.mapping import shipped_mappings
from gridgov.ingest.models import SourceRecord
from gridgov.registry.models import (
    CheckTask,
    KeyPersonTag,
    Organization,
    Person,
    PersonOrg,
    RecordLink,
)
from gridgov.registry.survive_frame import CANDIDATE_SCHEMA, decide_frame
from gridgov.registry.survivorship import Survivorship, shipped_survivorship

BATCH = 5_000
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
# Identifier fields whose flag (set at import when the check failed) makes a value untrusted.
FLAGGED = ("citizen_id", "phone", "credit_code", "legal_rep_id", "tenant_id", "owner_id")


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


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _bad_fields(flags: Iterable[str]) -> set[str]:
    return {f.split(":", 1)[0] for f in flags}


def _records(session: Session, kinds: Sequence[str]) -> list[SourceRecord]:
    return list(
        session.scalars(
            select(SourceRecord).where(SourceRecord.kind.in_(kinds)).order_by(SourceRecord.id)
        )
    )


def _candidates(
    records: Sequence[SourceRecord], key_of: dict[int, int], fields: Sequence[str]
) -> pl.DataFrame:
    rows = []
    for r in records:
        key = key_of.get(r.id)
        if key is None:
            continue
        bad = _bad_fields(r.flags or [])
        for f in fields:
            value = r.values.get(f)
            if value is None or value == "":
                continue
            rows.append(
                {
                    "key": key,
                    "field": f,
                    "value": str(value),
                    "source": r.source,
                    "as_of": r.as_of,
                    "record_id": r.id,
                    "valid": f not in bad,
                }
            )
    return pl.DataFrame(rows, schema=CANDIDATE_SCHEMA)


def _pairs(session: Session, stmt: Any) -> dict[Any, Any]:
    """A two-column query as a dict (first column → second)."""
    return {a: b for a, b in session.execute(stmt)}


def _grid_leaders(session: Session) -> dict[str, int]:
    return {g: u for g, u in session.execute(select(GridLeader.grid_code, GridLeader.user_id))}


def _open_tasks(
    session: Session,
    entity: str,
    conflicts: pl.DataFrame,
    grids: dict[int, str | None],
    leaders: dict[str, int],
    now: datetime,
) -> int:
    rows = []
    for c in conflicts.iter_rows(named=True):
        grid = grids.get(c["key"])
        rows.append(
            {
                "entity": entity,
                "entity_id": c["key"],
                "field": c["field"],
                "kind": c["kind"],
                "candidates": [
                    {
                        "value": x["value"],
                        "source": x["source"],
                        "record": x["record_id"],
                        "as_of": x["as_of"].isoformat() if x["as_of"] else None,
                    }
                    for x in c["candidates"]
                ],
                "grid_code": grid,
                "assignee_id": leaders.get(grid) if grid else None,
                "status": "open",
                "open_key": f"{entity}:{c['key']}:{c['field']}",
                "created_at": now,
                "note": "",
            }
        )
    opened = 0
    for chunk in _chunks(rows):
        opened += insert_new(session, CheckTask.__table__, chunk, conflict=("open_key",))
    return opened


def _typed(field_name: str, value: str | None) -> Any:
    if value is None:
        return None
    if field_name in ("birth_date", "founded_on"):
        return date.fromisoformat(value)
    if field_name == "hazardous":
        return value == "1"
    return value


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
    records = _records(session, PERSON_KINDS)
    stats.records = len(records)
    cid_of: dict[int, str] = {}
    for r in records:
        cid = r.values.get("citizen_id")
        if cid and "citizen_id" not in _bad_fields(r.flags or []) and len(cid) == 18:
            cid_of[r.id] = cid
    stats.linked = len(cid_of)
    ids = _ids_for(session, Person, "citizen_id", set(cid_of.values()), now, stats)
    stats.links = _link(session, "person", {rid: ids[cid] for rid, cid in cid_of.items()}, "id")
    record_ids = {r.id for r in records}
    if probabilistic:
        # Golden persons need their values before others can be compared with them.
        _survive_persons(session, records, _person_links(session, record_ids), table, now)
        _match_unlinked(session, records, now, stats)
    key_of = _person_links(session, record_ids)
    stats.unlinked = len(records) - len(key_of)
    decisions, updated, known_grids = _survive_persons(session, records, key_of, table, now)
    stats.updated = updated
    stats.tasks_opened = _open_tasks(
        session, "person", decisions.conflicts, known_grids, _grid_leaders(session), now
    )
    stats.tags = _tags(session, records, key_of, known_grids, now)
    session.flush()
    return stats


def _person_links(session: Session, record_ids: set[int]) -> dict[int, int]:
    return {
        rid: pid
        for rid, pid in session.execute(
            select(RecordLink.source_record_id, RecordLink.entity_id).where(
                RecordLink.entity == "person"
            )
        )
        if rid in record_ids
    }


def _survive_persons(
    session: Session,
    records: Sequence[SourceRecord],
    key_of: dict[int, int],
    table: Survivorship,
    now: datetime,
) -> tuple[Any, int, dict[Any, Any]]:
    """Apply survivorship to every person with linked records; return decisions, count, grids."""
    decisions = decide_frame(_candidates(records, key_of, PERSON_FIELDS), table, "person")
    # Grid: the latest field check that placed the person (address placement refines this).
    grids: dict[int, str | None] = {}
    latest_check: dict[int, datetime] = {}
    for r in records:
        key = key_of.get(r.id)
        if key is None or r.kind != "check" or not r.grid_code:
            continue
        when = r.as_of or r.loaded_at
        if key not in latest_check or when >= latest_check[key]:
            latest_check[key], grids[key] = when, r.grid_code
    counts: dict[int, int] = {}
    for key in key_of.values():
        counts[key] = counts.get(key, 0) + 1
    updates: dict[int, dict[str, Any]] = {
        key: {"id": key, "provenance": {}, "sources": n, "updated_at": now}
        for key, n in counts.items()
    }
    for d in decisions.chosen.iter_rows(named=True):
        u = updates[d["key"]]
        u[d["field"]] = _typed(d["field"], d["value"])
        u["provenance"][d["field"]] = {
            "source": d["source"],
            "record": d["record_id"],
            "as_of": d["as_of"].date().isoformat() if d["as_of"] else None,
        }
    for key, grid in grids.items():
        updates[key]["grid_code"] = grid
    for chunk in _chunks(list(updates.values())):
        session.execute(update(Person), list(chunk))
    known_grids = _pairs(
        session,
        select(Person.id, Person.grid_code).where(Person.id.in_(list(updates)))
        if len(updates) < 30_000
        else select(Person.id, Person.grid_code),
    )
    return decisions, len(updates), known_grids


def _match_unlinked(
    session: Session, records: Sequence[SourceRecord], now: datetime, stats: ResolveStats
) -> None:
    """Records without a valid ID number: linked to a golden person, or made new persons."""
    from gridgov.registry.places import parse
    from gridgov.resolve.matching import Person as Side
    from gridgov.resolve.matching import match

    linked = set(
        session.scalars(select(RecordLink.source_record_id).where(RecordLink.entity == "person"))
    )
    todo = [r for r in records if r.id not in linked]
    if not todo:
        return

    def address(text: str | None) -> tuple[str | None, str | None]:
        if not text:
            return None, None
        p = parse(text)
        if not p.road or not p.door:
            return None, None
        return "|".join(x or "" for x in (p.road, p.door, p.building, p.unit, p.room)), (
            f"{p.road}|{p.door}"
        )

    sides = []
    for r in todo:
        v = r.values
        bad = _bad_fields(r.flags or [])
        addr, door = address(
            v.get("actual_address") or v.get("address") or v.get("registered_address")
        )
        sides.append(
            Side(
                uid=str(r.id),
                name=v.get("name", ""),
                dob=v.get("birth_date"),
                sex=v.get("sex"),
                cid=v.get("citizen_id") or None,
                phone=v.get("phone") if "phone" not in bad else None,
                addr=addr,
                door=door,
            )
        )
    golden = []
    for p in session.execute(
        select(
            Person.id, Person.name, Person.birth_date, Person.sex, Person.citizen_id,
            Person.phone, Person.actual_address, Person.registered_address,
        )
    ):  # fmt: skip
        addr, door = address(p.actual_address or p.registered_address)
        golden.append(
            Side(
                uid=str(p.id), name=p.name, dob=p.birth_date.isoformat() if p.birth_date else None,
                sex=p.sex, cid=p.citizen_id, phone=p.phone or None, addr=addr, door=door,
            )
        )  # fmt: skip
    found = match(golden, sides)
    links = [
        {"source_record_id": int(rid), "entity": "person", "entity_id": int(gid),
         "method": "splink", "score": round(prob, 6)}
        for rid, (gid, prob) in found.to_golden.items()
    ]  # fmt: skip
    stats.extra["matched"] = len(links)
    if found.new_clusters:
        from sqlalchemy import insert

        new_ids = session.scalars(
            insert(Person).returning(Person.id, sort_by_parameter_order=True),
            [{"citizen_id": None, "name": "", "updated_at": now} for _ in found.new_clusters],
        ).all()
        stats.created += len(new_ids)
        stats.extra["new_without_id"] = len(new_ids)
        for pid, members in zip(new_ids, found.new_clusters, strict=True):
            links.extend(
                {"source_record_id": int(rid), "entity": "person", "entity_id": pid,
                 "method": "splink-new", "score": None}
                for rid in members
            )  # fmt: skip
    for chunk in _chunks(links):
        stats.links += insert_new(
            session, RecordLink.__table__, chunk, conflict=("source_record_id",)
        )


def _ids_for(
    session: Session, model: Any, key: str, keys: set[str], now: datetime, stats: ResolveStats
) -> dict[str, int]:
    """Golden ids by identifier (`model.<key>`), creating a bare record for each new one."""
    column = getattr(model, key)
    wanted = sorted(keys)
    ids: dict[str, int] = {}

    def lookup(chunk: Sequence[str]) -> None:
        ids.update(_pairs(session, select(column, model.id).where(column.in_(chunk))))

    for chunk in _chunks(wanted):
        lookup(chunk)
    new = [k for k in wanted if k not in ids]
    for chunk in _chunks(new):
        rows = [{key: k, "name": "", "updated_at": now} for k in chunk]
        stats.created += insert_new(session, model.__table__, rows, conflict=(key,))
        lookup(chunk)
    return ids


def _link(session: Session, entity: str, key_of: dict[int, int], method: str) -> int:
    rows = [
        {
            "source_record_id": rid,
            "entity": entity,
            "entity_id": key,
            "method": method,
            "score": None,
        }
        for rid, key in key_of.items()
    ]
    made = 0
    for chunk in _chunks(rows):
        made += insert_new(session, RecordLink.__table__, chunk, conflict=("source_record_id",))
    return made


def _tags(
    session: Session,
    records: Sequence[SourceRecord],
    key_of: dict[int, int],
    grids: dict[int, str | None],
    now: datetime,
) -> int:
    mappings = shipped_mappings()
    rows = []
    for r in records:
        key = key_of.get(r.id)
        if key is None or r.kind != "tag":
            continue
        ds = next(
            (d for d in mappings.sources[r.source].datasets if d.name == r.dataset), None
        ) if r.source in mappings.sources else None  # fmt: skip
        v = r.values
        rows.append(
            {
                "person_id": key,
                "tag_class": v.get("tag_class", ""),
                "subtype": v.get("subtype", ""),
                "sensitive": bool(ds.sensitive) if ds else v.get("tag_class") == "control",
                "detail": f"风险等级 {v['risk_level']}" if v.get("risk_level") else "",
                "valid_from": _typed("birth_date", v.get("valid_from")),
                "valid_to": _typed("birth_date", v.get("valid_to")),
                "source": r.source,
                "source_record_id": r.id,
                "grid_code": grids.get(key),
                "updated_at": now,
            }
        )
    made = 0
    for chunk in _chunks(rows):
        made += insert_new(
            session,
            KeyPersonTag.__table__,
            chunk,
            conflict=("person_id", "tag_class", "subtype", "source"),
        )
    return made


# ------------------------------------------------------------------------ organizations


def resolve_organizations(
    session: Session, *, now: datetime, table: Survivorship | None = None
) -> ResolveStats:
    """Golden organizations by valid credit code; legal representatives and employees linked."""
    table = table or shipped_survivorship()
    stats = ResolveStats()
    records = _records(session, ("org",))
    stats.records = len(records)
    code_of = {
        r.id: r.values["credit_code"]
        for r in records
        if r.values.get("credit_code") and "credit_code" not in _bad_fields(r.flags or [])
    }
    stats.linked, stats.unlinked = len(code_of), len(records) - len(code_of)
    ids = _ids_for(session, Organization, "credit_code", set(code_of.values()), now, stats)
    key_of = {rid: ids[code] for rid, code in code_of.items()}
    decisions = decide_frame(_candidates(records, key_of, ORG_FIELDS), table, "organization")
    counts: dict[int, int] = {}
    for key in key_of.values():
        counts[key] = counts.get(key, 0) + 1
    updates: dict[int, dict[str, Any]] = {
        key: {"id": key, "provenance": {}, "sources": n, "updated_at": now}
        for key, n in counts.items()
    }
    legal_rep_ids: dict[int, str] = {}
    for d in decisions.chosen.iter_rows(named=True):
        u = updates[d["key"]]
        if d["field"] == "legal_rep_id":
            legal_rep_ids[d["key"]] = d["value"]
        else:
            u[d["field"]] = _typed(d["field"], d["value"])
        u["provenance"][d["field"]] = {
            "source": d["source"],
            "record": d["record_id"],
            "as_of": d["as_of"].date().isoformat() if d["as_of"] else None,
        }
    persons = (
        _pairs(
            session,
            select(Person.citizen_id, Person.id).where(
                Person.citizen_id.in_(sorted(set(legal_rep_ids.values())))
            ),
        )
        if legal_rep_ids
        else {}
    )
    for key, cid in legal_rep_ids.items():
        if cid in persons:
            updates[key]["legal_rep_person_id"] = persons[cid]
    for chunk in _chunks(list(updates.values())):
        session.execute(update(Organization), list(chunk))
    stats.updated = len(updates)
    grids = _pairs(session, select(Organization.id, Organization.grid_code))
    stats.tasks_opened = _open_tasks(
        session, "org", decisions.conflicts, grids, _grid_leaders(session), now
    )
    stats.links = _link(session, "org", key_of, "credit_code")
    rep_links = [
        {"person_id": persons[cid], "org_id": key, "relation": "legal_rep", "source": "SJ"}
        for key, cid in legal_rep_ids.items()
        if cid in persons
    ]
    for chunk in _chunks(rep_links):
        insert_new(
            session, PersonOrg.__table__, chunk, conflict=("person_id", "org_id", "relation")
        )
    stats.extra["legal_reps"] = len(rep_links)
    stats.extra["employees"] = _employees(session, ids)
    session.flush()
    return stats


def _employees(session: Session, orgs: dict[str, int]) -> int:
    """Person ↔ organization (employee) from the social-insurance records' employer code."""
    rows = session.execute(
        select(RecordLink.entity_id, SourceRecord.values, SourceRecord.source)
        .join(SourceRecord, SourceRecord.id == RecordLink.source_record_id)
        .where(RecordLink.entity == "person", SourceRecord.kind == "person")
    )
    links = {
        (pid, orgs[v["employer_credit_code"]]): src
        for pid, v, src in rows
        if v.get("employer_credit_code") in orgs
    }
    data = [
        {"person_id": p, "org_id": o, "relation": "employee", "source": s}
        for (p, o), s in links.items()
    ]
    made = 0
    for chunk in _chunks(data):
        made += insert_new(
            session, PersonOrg.__table__, chunk, conflict=("person_id", "org_id", "relation")
        )
    return made
