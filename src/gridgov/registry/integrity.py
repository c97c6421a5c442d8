"""Set-wise checks of the references the bulk steps write without a foreign key (migration 0008).

A foreign key checks each row as it is written and locks the row it points at; at city scale
those checks cost more than the writes. The bulk steps check what they wrote once, at their end,
with one anti-join per reference (a hash join over the two tables, seconds at city scale): a
dangling reference fails the step, and its transaction rolls back, so none is ever committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

# (table, column, referenced table): the referenced table's key is `id`.
REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("source_records", "batch_id", "ingest_batches"),
    ("rooms", "address_id", "addresses"),
    ("rooms", "building_id", "buildings"),
    ("persons", "room_id", "rooms"),
    ("person_rooms", "person_id", "persons"),
    ("person_rooms", "room_id", "rooms"),
    ("person_orgs", "person_id", "persons"),
    ("person_orgs", "org_id", "organizations"),
)


class DanglingReference(RuntimeError):
    """Rows that point at a row that does not exist."""


def dangling(session: Session, table: str, column: str, target: str, limit: int = 5) -> list[int]:
    """Up to `limit` values of `table.column` with no `target` row of that id."""
    if (table, column, target) not in REFERENCES:  # names come from code; checked all the same
        raise ValueError(f"unknown reference {table}.{column} → {target}")
    sql = (
        f"SELECT t.{column} FROM {table} t WHERE t.{column} IS NOT NULL "  # noqa: S608
        f"AND NOT EXISTS (SELECT 1 FROM {target} r WHERE r.id = t.{column}) LIMIT {int(limit)}"
    )
    with _hash_join(session):
        return sorted({int(v) for v in session.execute(text(sql)).scalars()})


@contextmanager
def _hash_join(session: Session) -> Iterator[None]:
    """On PostgreSQL, the anti-join as one hash join over the two tables (seconds at city
    scale). Just after a bulk step the planner, without statistics of the new rows, picks a merge
    join over both indexes, which visits the heap for every row (16 s for the persons' rooms)."""
    if session.connection().dialect.name != "postgresql":
        yield
        return
    names = ("jit", "enable_mergejoin", "enable_nestloop")
    before = {
        n: session.execute(text(f"SELECT current_setting('{n}')")).scalar_one() for n in names
    }
    for n in names:
        session.execute(text(f"SELECT set_config('{n}', 'off', true)"))
    yield  # on an error the transaction rolls back, and the local settings with it
    for n, value in before.items():
        session.execute(text(f"SELECT set_config('{n}', :v, true)"), {"v": value})


def check_references(session: Session, tables: Iterable[str]) -> None:
    """Raise `DanglingReference` (naming the table, column and some of the ids) when a reference
    held by one of `tables` points nowhere."""
    wanted = set(tables)
    session.flush()
    problems = []
    for table, column, target in REFERENCES:
        if table not in wanted:
            continue
        ids = dangling(session, table, column, target)
        if ids:
            shown = ", ".join(map(str, ids))
            problems.append(f"{table}.{column} 指向不存在的 {target} 记录 (id: {shown} …)")
    if problems:
        raise DanglingReference("数据引用不完整, 本步骤已回滚: " + "; ".join(problems))
