"""Keep the event rollups current in the same transaction as every change of an event.

Every event change, whichever service step makes it (report, self-closure, each workflow action,
the deadline sweep), reaches the database through the ORM flush of the Event row, so the hook
sits there: after an event row is inserted or updated, the rows it leaves lose its old counters
and the rows it enters gain its new ones (rules.deltas), on the flush's own connection. A bucket
whose `reported` falls to zero holds no event and is deleted, so the incremental state equals a
rebuild row for row. The old values are the ones the hook last saw: kept with the instance when
it is loaded, refreshed (after a rollback or an expiry) or flushed. The events service calls
install() once at import.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Table, bindparam, event, inspect, tuple_
from sqlalchemy.orm import Mapper

from gridgov.analytics.rollups import rules
from gridgov.analytics.rollups.models import EventGridDay, EventUnitDay
from gridgov.db.bulk import add_counts
from gridgov.events.models import Event

GRID_KEYS = ("grid_code", "day", "category_code", "channel", "status")
UNIT_KEYS = ("level", "dim", "region_code", "day", "value")
_installed = False
_KEY = "rollup_values"


def _noop(target: Any, value: Any, old: Any, initiator: Any) -> None:
    return None


def install() -> None:
    """Register the hook (idempotent). The attribute listeners ask for active history, so the old
    value of a counted field is known at flush even when it was not loaded before being set."""
    global _installed
    if _installed:
        return
    for name in rules.FIELDS:
        event.listen(getattr(Event, name), "set", _noop, active_history=True)
    event.listen(Event, "load", _on_load)
    event.listen(Event, "refresh", _on_refresh)
    event.listen(Event, "after_insert", _after_insert)
    event.listen(Event, "after_update", _after_update)
    event.listen(Event, "after_delete", _after_delete)
    _installed = True


def _values(target: Event) -> dict[str, Any]:
    return {name: getattr(target, name) for name in rules.FIELDS}


def _remember(target: Event, values: dict[str, Any]) -> None:
    """What the rollups hold for this event: its counted fields as last loaded or flushed."""
    inspect(target).info[_KEY] = values


def _on_load(target: Event, context: Any) -> None:
    _remember(target, _values(target))


def _on_refresh(target: Event, context: Any, attrs: Any) -> None:
    info = inspect(target).info
    known = info.get(_KEY)
    if known is None or attrs is None:
        info[_KEY] = _values(target)
        return
    for name in attrs:
        if name in known:
            known[name] = getattr(target, name)


def _after_insert(mapper: Mapper[Any], conn: Connection, target: Event) -> None:
    new = _values(target)
    apply(conn, None, new)
    _remember(target, new)


def _after_update(mapper: Mapper[Any], conn: Connection, target: Event) -> None:
    new = _values(target)
    old = inspect(target).info.get(_KEY)
    if old is None:
        raise RuntimeError(f"事件 {target.id}: 统计汇总不知道它此前的状态")
    if old != new:
        apply(conn, old, new)
        _remember(target, new)


def _after_delete(mapper: Mapper[Any], conn: Connection, target: Event) -> None:
    # Events are never deleted by the application (the timeline forbids it); if one is, it
    # leaves the rollups with it.
    old = inspect(target).info.get(_KEY) or _values(target)
    apply(conn, old, None)


def apply(conn: Connection, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    """Move one event's counters from its old buckets to its new ones."""
    grid_d, unit_d = rules.deltas(old, new)
    plan: list[tuple[Table, tuple[str, ...], dict[Any, list[int]]]] = [
        (EventGridDay.__table__, GRID_KEYS, grid_d),  # type: ignore[list-item]
        (EventUnitDay.__table__, UNIT_KEYS, unit_d),  # type: ignore[list-item]
    ]
    for table, keys, changes in plan:
        if not changes:
            continue
        # In one order for every transaction (two actions that move events between the same two
        # buckets in opposite directions must not lock those rows in opposite orders: deadlock).
        ordered = sorted(changes.items(), key=lambda kd: tuple(str(x) for x in kd[0]))
        rows: list[dict[str, Any]] = [
            {**dict(zip(keys, key, strict=True)), **dict(zip(rules.COUNTERS, d, strict=True))}
            for key, d in ordered
        ]
        add_counts(conn, table, keys, rows)
        emptied = [tuple(r[k] for k in keys) for r in rows if r["reported"] < 0]
        if emptied:
            conn.execute(_delete_empty(table, keys), {"keys": emptied})


@functools.lru_cache(maxsize=4)
def _delete_empty(table: Table, keys: tuple[str, ...]) -> Any:
    """Delete the named buckets that hold no event any more (one statement, compiled once)."""
    return table.delete().where(
        tuple_(*(table.c[k] for k in keys)).in_(bindparam("keys", expanding=True)),
        table.c.reported == 0,
    )
