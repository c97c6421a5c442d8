"""The tamper-evident timeline: each entry's SHA-256 covers its fields and the previous entry's hash.

The event row keeps the number of entries and the last hash, so deleting or reordering entries is
caught as well as editing one. `verify_chains` recomputes every chain (`gridgov events verify`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridgov.events.models import Event, EventEntry

GENESIS = "0" * 64
HASHED_FIELDS = (
    "event_id",
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "actor_role",
    "actor_unit",
    "action",
    "from_status",
    "to_status",
    "from_unit",
    "to_unit",
    "comment",
    "attachments",
    "data",
)


def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes an entry's hash covers: its fields as sorted, compact JSON (times in UTC)."""
    doc = {}
    for name in HASHED_FIELDS:
        value = fields[name]
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        doc[name] = value
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(canonical(fields))
    return h.hexdigest()


def append_entry(
    session: Session,
    event: Event,
    *,
    at: datetime,
    actor_id: int | None,
    actor_name: str,
    actor_role: str,
    actor_unit: str,
    action: str,
    from_status: str,
    to_status: str,
    from_unit: str,
    to_unit: str,
    comment: str = "",
    attachments: Sequence[str] = (),
    data: dict[str, Any] | None = None,
) -> EventEntry:
    """Add the next entry to the event's chain (the event must have its id: flush first)."""
    fields: dict[str, Any] = {
        "event_id": event.id,
        "seq": event.entry_count + 1,
        "at": at.astimezone(UTC),
        "actor_id": actor_id,
        "actor_name": actor_name,
        "actor_role": actor_role,
        "actor_unit": actor_unit,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "from_unit": from_unit,
        "to_unit": to_unit,
        "comment": comment,
        "attachments": list(attachments),
        "data": dict(data or {}),
    }
    prev = event.chain_head or GENESIS
    digest = entry_hash(prev, fields)
    entry = EventEntry(**fields, prev_hash=prev, hash=digest)
    session.add(entry)
    event.entry_count = fields["seq"]
    event.chain_head = digest
    return entry


@dataclass
class ChainProblem:
    event_id: int
    tracking_no: str
    seq: int | None
    message: str


@dataclass
class VerifyReport:
    events: int = 0
    entries: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _entries(session: Session, batch: int) -> Iterator[EventEntry]:
    stmt = (
        select(EventEntry)
        .order_by(EventEntry.event_id, EventEntry.seq)
        .execution_options(yield_per=batch)
    )
    yield from session.scalars(stmt)


def verify_chains(
    session: Session, *, batch: int = 5000, progress: Any = None, limit_problems: int = 1000
) -> VerifyReport:
    """Recompute every event's chain; report each entry whose hash or link does not match."""
    report = VerifyReport()
    heads = {
        r.id: (r.tracking_no, r.entry_count, r.chain_head)
        for r in session.execute(
            select(Event.id, Event.tracking_no, Event.entry_count, Event.chain_head)
        )
    }
    seen: dict[int, tuple[int, str]] = {}

    def problem(event_id: int, seq: int | None, msg: str) -> None:
        if len(report.problems) < limit_problems:
            no = heads.get(event_id, ("?", 0, ""))[0]
            report.problems.append(ChainProblem(event_id, no, seq, msg))

    for entry in _entries(session, batch):
        report.entries += 1
        if progress is not None and report.entries % batch == 0:
            progress(report.entries)
        count, prev = seen.get(entry.event_id, (0, GENESIS))
        if entry.seq != count + 1:
            problem(entry.event_id, entry.seq, f"第 {count + 1} 条记录缺失或顺序被改动")
        if entry.prev_hash != prev:
            problem(entry.event_id, entry.seq, "前一条记录的哈希不符 (记录被删除、插入或改动)")
        fields = {name: getattr(entry, name) for name in HASHED_FIELDS}
        if entry_hash(entry.prev_hash, fields) != entry.hash:
            problem(entry.event_id, entry.seq, "记录内容与其哈希不符 (记录被改动)")
        seen[entry.event_id] = (entry.seq, entry.hash)
    for event_id, (_no, count, head) in heads.items():
        report.events += 1
        got_count, got_head = seen.get(event_id, (0, GENESIS))
        if got_count != count:
            problem(event_id, None, f"事件记录为 {count} 条, 实有 {got_count} 条")
        elif count and got_head != head:
            problem(event_id, None, "最后一条记录的哈希与事件登记的不符")
    for event_id in seen.keys() - heads.keys():
        problem(event_id, None, "时间线记录所属的事件不存在")
    return report
